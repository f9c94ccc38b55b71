//! The offline engine on how people actually ask: each phrasing maps to one tool and its
//! arguments (or to a reply asking for what is missing). Written from the way people talk,
//! then the engine was made to follow.

use devgem_domain::{DeploymentId, Status};
use devgem_tools::{Context, ToolCall, Understanding, understand};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Session {
    /// No deployment yet.
    Fresh,
    /// The current deployment is live.
    Live,
    /// The current deployment is still building.
    Building,
    /// The current deployment failed.
    Failed,
}

fn context(session: Session) -> Context {
    let id = DeploymentId::parse("d-0193aaaabbbb").unwrap();
    let with = |status| Context::with_current(id.clone(), status, Some("shop".to_string()));
    match session {
        Session::Fresh => Context::empty(),
        Session::Live => with(Status::Live),
        Session::Building => with(Status::Building),
        Session::Failed => with(Status::Failed),
    }
}

enum Expect {
    /// The tool and its arguments exactly (as `to_json` writes them).
    Call(&'static str, Value),
    /// A reply (no call) holding this text.
    Reply(&'static str),
}

use Expect::{Call, Reply};
use Session::{Building, Failed, Fresh, Live};

fn none() -> Value {
    json!({})
}

fn table() -> Vec<(&'static str, Session, Expect)> {
    vec![
        // --- deploying -----------------------------------------------------------------------
        (
            "deploy github.com/acme/shop from the staging branch, set DEBUG=false and STRIPE_KEY as a secret",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "staging", "env": {"DEBUG": "false"}, "secret": ["STRIPE_KEY"]}),
            ),
        ),
        (
            "ship https://github.com/a/b",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://github.com/a/b"}),
            ),
        ),
        (
            "put acme/shop on cloud run",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "deploy ./my-app",
            Fresh,
            Call("deploy_repository", json!({"source": "./my-app"})),
        ),
        (
            "Deploy github.com/acme/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "can you deploy github.com/acme/shop for me?",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "please deploy https://github.com/acme/shop.git",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://github.com/acme/shop.git"}),
            ),
        ),
        (
            "deplyo github.com/acme/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "depoly acme/shop pls",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "DEPLOY ACME/SHOP",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/ACME/SHOP"}),
            ),
        ),
        (
            "I'd like to deploy github.com/acme/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "could you get github.com/acme/shop running on cloud run",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "launch github.com/acme/blog",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/blog"}),
            ),
        ),
        (
            "publish gitlab.com/team/api",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "gitlab.com/team/api"}),
            ),
        ),
        (
            "host https://gitlab.com/team/api for me",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://gitlab.com/team/api"}),
            ),
        ),
        (
            "https://github.com/acme/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://github.com/acme/shop"}),
            ),
        ),
        (
            "deploy acme/shop branch dev",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "dev"}),
            ),
        ),
        (
            "deploy acme/shop on staging",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "staging"}),
            ),
        ),
        (
            "deploy the dev branch of github.com/acme/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "dev"}),
            ),
        ),
        (
            "deploy github.com/acme/shop from feature/login",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "feature/login"}),
            ),
        ),
        (
            "ship github.com/acme/shop, branch: release-2.1",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "release-2.1"}),
            ),
        ),
        (
            "deploy https://github.com/acme/shop/tree/next",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://github.com/acme/shop", "branch": "next"}),
            ),
        ),
        (
            "deploy acme/monorepo in apps/web",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/monorepo", "subdir": "apps/web"}),
            ),
        ),
        (
            "deploy github.com/acme/monorepo, subdir services/api",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/monorepo", "subdir": "services/api"}),
            ),
        ),
        (
            "deploy the web folder of github.com/acme/monorepo",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/monorepo", "subdir": "web"}),
            ),
        ),
        (
            "deploy github.com/acme/monorepo from the apps/api directory",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/monorepo", "subdir": "apps/api"}),
            ),
        ),
        (
            "deploy github.com/acme/shop as storefront",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "service_name": "storefront"}),
            ),
        ),
        (
            "deploy acme/shop and call it shop-prod",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "service_name": "shop-prod"}),
            ),
        ),
        (
            "deploy acme/shop, name it Shop2",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "service_name": "shop2"}),
            ),
        ),
        (
            "deploy github.com/acme/shop named web-shop on the main branch",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "service_name": "web-shop", "branch": "main"}),
            ),
        ),
        (
            "deploy github.com/acme/shop with NODE_ENV=production",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "env": {"NODE_ENV": "production"}}),
            ),
        ),
        (
            "deploy acme/shop with DATABASE_URL=postgres://u:p@db/shop",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "env": {"DATABASE_URL": "postgres://u:p@db/shop"}, "secret": ["DATABASE_URL"]}),
            ),
        ),
        (
            "deploy acme/shop with API_TOKEN=abc123 and LOG_LEVEL=info",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "env": {"API_TOKEN": "abc123", "LOG_LEVEL": "info"}, "secret": ["API_TOKEN"]}),
            ),
        ),
        (
            "deploy acme/shop with GREETING=\"hello world\"",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "env": {"GREETING": "hello world"}}),
            ),
        ),
        (
            "ship acme/api from develop with SENTRY_DSN as a secret",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/api", "branch": "develop", "secret": ["SENTRY_DSN"]}),
            ),
        ),
        (
            "deploy this folder",
            Fresh,
            Call("deploy_repository", json!({"source": "."})),
        ),
        (
            "deploy .",
            Fresh,
            Call("deploy_repository", json!({"source": "."})),
        ),
        (
            "deploy ../services/billing",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "../services/billing"}),
            ),
        ),
        (
            "deploy /home/me/code/site",
            Fresh,
            Call("deploy_repository", json!({"source": "/home/me/code/site"})),
        ),
        (
            "push bitbucket.org/team/site live",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "bitbucket.org/team/site"}),
            ),
        ),
        (
            "git@github.com:acme/shop.git deploy that",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "git@github.com:acme/shop.git"}),
            ),
        ),
        ("deploy", Fresh, Reply("Which repository should I deploy?")),
        (
            "deploy my app",
            Fresh,
            Reply("Which repository should I deploy?"),
        ),
        (
            "i want to ship something",
            Fresh,
            Reply("Which repository should I deploy?"),
        ),
        ("deploy it", Live, Call("redeploy", none())),
        // --- status --------------------------------------------------------------------------
        (
            "is it up yet?",
            Building,
            Call("get_deployment_status", none()),
        ),
        ("status", Live, Call("get_deployment_status", none())),
        ("Status?", Live, Call("get_deployment_status", none())),
        ("stauts", Live, Call("get_deployment_status", none())),
        (
            "what's the status",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "how's it going?",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "is it live",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "is it done yet",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "any update?",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "where's it at",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "what's the url",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "give me the link",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "did it work?",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "is it ready",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "how far along is it",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "status of d-0193abcdef12",
            Fresh,
            Call(
                "get_deployment_status",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "d-0193abcdef12?",
            Fresh,
            Call(
                "get_deployment_status",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "how is d-0193abcdef12 doing",
            Fresh,
            Call(
                "get_deployment_status",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "is it still building?",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "check on my deploy",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "is the app healthy",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "whats going on",
            Building,
            Call("get_deployment_status", none()),
        ),
        // --- listing -------------------------------------------------------------------------
        ("what's running", Fresh, Call("list_deployments", none())),
        (
            "list my deployments",
            Fresh,
            Call("list_deployments", none()),
        ),
        ("list deployments", Fresh, Call("list_deployments", none())),
        (
            "show me all my apps",
            Fresh,
            Call("list_deployments", none()),
        ),
        (
            "what have I deployed?",
            Fresh,
            Call("list_deployments", none()),
        ),
        (
            "which services do i have",
            Fresh,
            Call("list_deployments", none()),
        ),
        ("show deployments", Live, Call("list_deployments", none())),
        ("my deploymnets", Live, Call("list_deployments", none())),
        (
            "what's live right now",
            Live,
            Call("list_deployments", none()),
        ),
        ("ls", Live, Call("list_deployments", none())),
        // --- diagnosis -----------------------------------------------------------------------
        ("why did it fail?", Failed, Call("diagnose_failure", none())),
        ("what went wrong", Failed, Call("diagnose_failure", none())),
        ("Why did it fail", Failed, Call("diagnose_failure", none())),
        ("why???", Failed, Call("diagnose_failure", none())),
        ("it crashed", Failed, Call("diagnose_failure", none())),
        (
            "the build failed, what happened?",
            Failed,
            Call("diagnose_failure", none()),
        ),
        (
            "what's wrong with it",
            Failed,
            Call("diagnose_failure", none()),
        ),
        ("diagnose", Failed, Call("diagnose_failure", none())),
        (
            "diagnose d-0193abcdef12",
            Fresh,
            Call(
                "diagnose_failure",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "explain the failure",
            Failed,
            Call("diagnose_failure", none()),
        ),
        ("why is it broken", Failed, Call("diagnose_failure", none())),
        ("it's not working", Live, Call("diagnose_failure", none())),
        ("how do I fix it?", Failed, Call("diagnose_failure", none())),
        ("what's the error", Failed, Call("diagnose_failure", none())),
        ("I'm getting a 502", Live, Call("diagnose_failure", none())),
        ("y did it fail", Failed, Call("diagnose_failure", none())),
        // --- logs ----------------------------------------------------------------------------
        ("show me the logs", Live, Call("get_logs", none())),
        ("tail logs", Live, Call("get_logs", none())),
        ("logs", Live, Call("get_logs", none())),
        ("lgos", Live, Call("get_logs", none())),
        (
            "can I see the build output",
            Building,
            Call("get_logs", none()),
        ),
        (
            "logs for d-0193abcdef12",
            Fresh,
            Call("get_logs", json!({"deployment_id": "d-0193abcdef12"})),
        ),
        ("what did it print", Live, Call("get_logs", none())),
        ("show the error logs", Failed, Call("get_logs", none())),
        (
            "let me see the stack trace",
            Failed,
            Call("get_logs", none()),
        ),
        ("give me the last log lines", Live, Call("get_logs", none())),
        ("Show Me The Logs Please!", Live, Call("get_logs", none())),
        // --- environment ---------------------------------------------------------------------
        (
            "set LOG_LEVEL to debug",
            Live,
            Call("set_env_vars", json!({"env": {"LOG_LEVEL": "debug"}})),
        ),
        (
            "set LOG_LEVEL=debug and API_KEY=xyz as secret",
            Live,
            Call(
                "set_env_vars",
                json!({"env": {"LOG_LEVEL": "debug", "API_KEY": "xyz"}, "secret": ["API_KEY"]}),
            ),
        ),
        (
            "set DEBUG=true",
            Live,
            Call("set_env_vars", json!({"env": {"DEBUG": "true"}})),
        ),
        (
            "DEBUG=1",
            Live,
            Call("set_env_vars", json!({"env": {"DEBUG": "1"}})),
        ),
        (
            "change LOG_LEVEL to warn",
            Live,
            Call("set_env_vars", json!({"env": {"LOG_LEVEL": "warn"}})),
        ),
        (
            "set log_level to info",
            Live,
            Call("set_env_vars", json!({"env": {"LOG_LEVEL": "info"}})),
        ),
        (
            "add FEATURE_X=on",
            Live,
            Call("set_env_vars", json!({"env": {"FEATURE_X": "on"}})),
        ),
        (
            "update WORKERS to 4 please",
            Live,
            Call("set_env_vars", json!({"env": {"WORKERS": "4"}})),
        ),
        (
            "please set STRIPE_KEY=sk_test_123",
            Live,
            Call(
                "set_env_vars",
                json!({"env": {"STRIPE_KEY": "sk_test_123"}, "secret": ["STRIPE_KEY"]}),
            ),
        ),
        (
            "set MAX_ITEMS = 50",
            Live,
            Call("set_env_vars", json!({"env": {"MAX_ITEMS": "50"}})),
        ),
        (
            "set A=1, B=2 and C=3",
            Live,
            Call(
                "set_env_vars",
                json!({"env": {"A": "1", "B": "2", "C": "3"}}),
            ),
        ),
        (
            "add a secret WEBHOOK_SIGNING=whsec_1",
            Live,
            Call(
                "set_env_vars",
                json!({"env": {"WEBHOOK_SIGNING": "whsec_1"}, "secret": ["WEBHOOK_SIGNING"]}),
            ),
        ),
        (
            "set PAYPAL_ID=abc as a secret and MODE=live",
            Live,
            Call(
                "set_env_vars",
                json!({"env": {"PAYPAL_ID": "abc", "MODE": "live"}, "secret": ["PAYPAL_ID"]}),
            ),
        ),
        (
            "set GREETING to 'hi there'",
            Live,
            Call("set_env_vars", json!({"env": {"GREETING": "hi there"}})),
        ),
        (
            "LOG_LEVEL should be debug",
            Live,
            Call("set_env_vars", json!({"env": {"LOG_LEVEL": "debug"}})),
        ),
        (
            "set TIMEOUT=30 on d-0193abcdef12",
            Fresh,
            Call(
                "set_env_vars",
                json!({"deployment_id": "d-0193abcdef12", "env": {"TIMEOUT": "30"}}),
            ),
        ),
        (
            "set LOG_LEVEL",
            Live,
            Reply("What value should LOG_LEVEL have?"),
        ),
        (
            "remove DEBUG",
            Live,
            Call("unset_env_vars", json!({"names": ["DEBUG"]})),
        ),
        (
            "unset FOO and BAR",
            Live,
            Call("unset_env_vars", json!({"names": ["FOO", "BAR"]})),
        ),
        (
            "delete the DEBUG variable",
            Live,
            Call("unset_env_vars", json!({"names": ["DEBUG"]})),
        ),
        (
            "get rid of FEATURE_X",
            Live,
            Call("unset_env_vars", json!({"names": ["FEATURE_X"]})),
        ),
        (
            "drop LOG_LEVEL, TIMEOUT",
            Live,
            Call("unset_env_vars", json!({"names": ["LOG_LEVEL", "TIMEOUT"]})),
        ),
        (
            "unset api_key",
            Live,
            Call("unset_env_vars", json!({"names": ["API_KEY"]})),
        ),
        (
            "remove the env var OLD_FLAG please",
            Live,
            Call("unset_env_vars", json!({"names": ["OLD_FLAG"]})),
        ),
        (
            "remove an env variable",
            Live,
            Reply("Which variables should I remove?"),
        ),
        // --- rollback ------------------------------------------------------------------------
        ("roll back", Live, Call("rollback", none())),
        ("rollback", Live, Call("rollback", none())),
        (
            "rollback to shop-0003",
            Live,
            Call("rollback", json!({"revision": "shop-0003"})),
        ),
        (
            "go back to the previous version",
            Live,
            Call("rollback", none()),
        ),
        ("roll it back!", Live, Call("rollback", none())),
        ("rollbak", Live, Call("rollback", none())),
        (
            "revert to shop-00002-xyz",
            Live,
            Call("rollback", json!({"revision": "shop-00002-xyz"})),
        ),
        ("undo the last deploy", Live, Call("rollback", none())),
        (
            "please roll back d-0193abcdef12",
            Fresh,
            Call("rollback", json!({"deployment_id": "d-0193abcdef12"})),
        ),
        (
            "the new version is bad, switch back",
            Live,
            Call("rollback", none()),
        ),
        (
            "can we go back to revision shop-00007-abc",
            Live,
            Call("rollback", json!({"revision": "shop-00007-abc"})),
        ),
        (
            "Roll Back To The Last Version",
            Live,
            Call("rollback", none()),
        ),
        // --- abort ---------------------------------------------------------------------------
        ("cancel that", Building, Call("abort_deployment", none())),
        ("abort", Building, Call("abort_deployment", none())),
        ("ABORT!", Building, Call("abort_deployment", none())),
        (
            "cancel the deployment",
            Building,
            Call("abort_deployment", none()),
        ),
        (
            "never mind, cancel it",
            Building,
            Call("abort_deployment", none()),
        ),
        ("stop the build", Building, Call("abort_deployment", none())),
        ("stop it", Building, Call("abort_deployment", none())),
        ("cancle", Building, Call("abort_deployment", none())),
        (
            "abort d-0193abcdef12",
            Fresh,
            Call(
                "abort_deployment",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "forget it, don't finish that deploy",
            Building,
            Call("abort_deployment", none()),
        ),
        // --- stop ----------------------------------------------------------------------------
        ("stop the app", Live, Call("stop_deployment", none())),
        ("take it down", Live, Call("stop_deployment", none())),
        ("shut it down", Live, Call("stop_deployment", none())),
        (
            "turn off the service",
            Live,
            Call("stop_deployment", none()),
        ),
        (
            "stop d-0193abcdef12",
            Fresh,
            Call(
                "stop_deployment",
                json!({"deployment_id": "d-0193abcdef12"}),
            ),
        ),
        (
            "please take the site offline",
            Live,
            Call("stop_deployment", none()),
        ),
        ("Stop it.", Live, Call("stop_deployment", none())),
        ("kill it", Live, Call("stop_deployment", none())),
        (
            "tear it down, we're done",
            Live,
            Call("stop_deployment", none()),
        ),
        // --- redeploy ------------------------------------------------------------------------
        ("redeploy", Live, Call("redeploy", none())),
        ("deploy again", Live, Call("redeploy", none())),
        ("re-deploy please", Live, Call("redeploy", none())),
        ("redploy", Live, Call("redeploy", none())),
        ("try again", Failed, Call("redeploy", none())),
        ("retry", Failed, Call("redeploy", none())),
        ("restart it", Live, Call("redeploy", none())),
        (
            "rebuild and deploy it again",
            Live,
            Call("redeploy", none()),
        ),
        (
            "redeploy d-0193abcdef12",
            Fresh,
            Call("redeploy", json!({"deployment_id": "d-0193abcdef12"})),
        ),
        ("ship it again", Live, Call("redeploy", none())),
        ("one more time", Failed, Call("redeploy", none())),
        // --- analysis ------------------------------------------------------------------------
        (
            "analyze github.com/x/y",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        (
            "what framework is github.com/x/y",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        (
            "analyse acme/shop",
            Fresh,
            Call(
                "analyze_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "anaylze https://github.com/x/y",
            Fresh,
            Call(
                "analyze_repository",
                json!({"source": "https://github.com/x/y"}),
            ),
        ),
        (
            "what language is acme/shop written in?",
            Fresh,
            Call(
                "analyze_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "take a look at github.com/x/y before deploying",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        (
            "inspect gitlab.com/team/api on the develop branch",
            Fresh,
            Call(
                "analyze_repository",
                json!({"source": "gitlab.com/team/api", "branch": "develop"}),
            ),
        ),
        (
            "what kind of app is github.com/x/y",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        (
            "scan ./my-app",
            Fresh,
            Call("analyze_repository", json!({"source": "./my-app"})),
        ),
        (
            "can you analyze my repo",
            Fresh,
            Reply("Which repository should I analyze?"),
        ),
        // --- fixes ---------------------------------------------------------------------------
        ("fix it", Failed, Call("apply_fix", none())),
        ("apply the fix", Failed, Call("apply_fix", none())),
        ("yes, apply it", Failed, Call("apply_fix", none())),
        ("go ahead", Failed, Call("apply_fix", none())),
        (
            "can you fix that for me?",
            Failed,
            Call("apply_fix", none()),
        ),
        (
            "apply fix 2",
            Failed,
            Call("apply_fix", json!({"fix": "2"})),
        ),
        ("Fix It!", Failed, Call("apply_fix", none())),
        (
            "fix d-0193abcdef12",
            Fresh,
            Call("apply_fix", json!({"deployment_id": "d-0193abcdef12"})),
        ),
        ("sure, do it", Failed, Call("apply_fix", none())),
        // --- talk ----------------------------------------------------------------------------
        ("hi", Fresh, Reply("Hi!")),
        ("Hello there", Fresh, Reply("Hi!")),
        ("hey!", Fresh, Reply("Hi!")),
        ("help", Fresh, Reply("I can deploy a repository")),
        (
            "what can you do?",
            Fresh,
            Reply("I can deploy a repository"),
        ),
        ("thanks!", Live, Reply("You're welcome")),
        ("", Fresh, Reply("I can deploy a repository")),
        ("asdfgh", Fresh, Reply("What would you like?")),
        (
            "don't deploy anything yet",
            Fresh,
            Reply("I won't do anything"),
        ),
        // --- a second batch, written after the engine, to check it generalises ------------
        (
            "yo can u deploy github.com/jo/portfolio real quick",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/jo/portfolio"}),
            ),
        ),
        (
            "I need github.com/acme/shop deployed on the release branch asap",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "branch": "release"}),
            ),
        ),
        (
            "lets get acme/shop online",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        (
            "spin up github.com/acme/api",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/api"}),
            ),
        ),
        (
            "deploy github.com/acme/shop, and set PORT_OFFSET=2",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "env": {"PORT_OFFSET": "2"}}),
            ),
        ),
        (
            "Deploy https://github.com/acme/shop with the secret JWT_SECRET=s3cr3t",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "https://github.com/acme/shop", "env": {"JWT_SECRET": "s3cr3t"}, "secret": ["JWT_SECRET"]}),
            ),
        ),
        (
            "is my site up?",
            Live,
            Call("get_deployment_status", none()),
        ),
        ("done?", Building, Call("get_deployment_status", none())),
        (
            "hows the deployment coming along",
            Building,
            Call("get_deployment_status", none()),
        ),
        (
            "where can I see it",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "show everything I've got running",
            Live,
            Call("list_deployments", none()),
        ),
        (
            "what apps do I have?",
            Fresh,
            Call("list_deployments", none()),
        ),
        (
            "ugh it failed again, why",
            Failed,
            Call("diagnose_failure", none()),
        ),
        ("what broke?", Failed, Call("diagnose_failure", none())),
        (
            "can you tell me why the deploy failed",
            Failed,
            Call("diagnose_failure", none()),
        ),
        ("print the logs", Live, Call("get_logs", none())),
        ("let me see the output", Live, Call("get_logs", none())),
        ("any errors in the logs?", Failed, Call("get_logs", none())),
        (
            "make LOG_LEVEL debug",
            Live,
            Call("set_env_vars", json!({"env": {"LOG_LEVEL": "debug"}})),
        ),
        (
            "switch NODE_ENV to staging",
            Live,
            Call("set_env_vars", json!({"env": {"NODE_ENV": "staging"}})),
        ),
        (
            "use REGION=eu-west1",
            Live,
            Call("set_env_vars", json!({"env": {"REGION": "eu-west1"}})),
        ),
        (
            "I don't need FEATURE_FLAG anymore, remove it",
            Live,
            Call("unset_env_vars", json!({"names": ["FEATURE_FLAG"]})),
        ),
        (
            "clear OLD_KEY",
            Live,
            Call("unset_env_vars", json!({"names": ["OLD_KEY"]})),
        ),
        (
            "that release is broken, roll back please",
            Live,
            Call("rollback", none()),
        ),
        ("revert", Live, Call("rollback", none())),
        (
            "restore the previous revision",
            Live,
            Call("rollback", none()),
        ),
        (
            "stop stop stop, cancel",
            Building,
            Call("abort_deployment", none()),
        ),
        ("kill the build", Building, Call("abort_deployment", none())),
        (
            "shut down the service please",
            Live,
            Call("stop_deployment", none()),
        ),
        (
            "bring it down for now",
            Live,
            Call("stop_deployment", none()),
        ),
        ("give it another go", Failed, Call("redeploy", none())),
        (
            "redeploy with the latest code",
            Live,
            Call("redeploy", none()),
        ),
        (
            "is github.com/x/y a django app?",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        (
            "check github.com/x/y for me, what stack does it use",
            Fresh,
            Call("analyze_repository", json!({"source": "github.com/x/y"})),
        ),
        ("ok fix it then", Failed, Call("apply_fix", none())),
        ("please apply that fix", Failed, Call("apply_fix", none())),
        // --- deploying on every push (links) ----------------------------------------------
        (
            "auto-deploy acme/shop from main",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "main"}),
            ),
        ),
        (
            "deploy on every push to staging for github.com/acme/shop",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "staging"}),
            ),
        ),
        (
            "link acme/shop",
            Fresh,
            Call("link_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "Link https://github.com/acme/shop.git branch dev",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "dev"}),
            ),
        ),
        (
            "can you autodeploy github.com/acme/shop?",
            Fresh,
            Call("link_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "redeploy acme/shop whenever I push to main",
            Live,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "main"}),
            ),
        ),
        (
            "every time I push to develop, deploy acme/api",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/api", "branch": "develop"}),
            ),
        ),
        (
            "hook up https://github.com/acme/shop so pushes to main go live",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "main"}),
            ),
        ),
        (
            "set up continuous deployment for acme/shop from the release branch",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "release"}),
            ),
        ),
        (
            "connect acme/shop to a service called storefront",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "service_name": "storefront"}),
            ),
        ),
        (
            "auto deploy github.com/acme/shop/tree/staging",
            Fresh,
            Call(
                "link_repository",
                json!({"repository": "acme/shop", "branch": "staging"}),
            ),
        ),
        (
            "set up auto-deploys please",
            Live,
            Reply("Which GitHub repository should deploy on every push?"),
        ),
        (
            "auto-deploy gitlab.com/acme/shop",
            Fresh,
            Reply("GitHub repositories only"),
        ),
        ("what repos are linked?", Fresh, Call("list_links", none())),
        ("show my links", Live, Call("list_links", none())),
        (
            "which repositories auto-deploy?",
            Fresh,
            Call("list_links", none()),
        ),
        (
            "list linked repositories",
            Fresh,
            Call("list_links", none()),
        ),
        (
            "do I have any auto-deploys set up?",
            Fresh,
            Call("list_links", none()),
        ),
        (
            "stop auto-deploying acme/shop",
            Live,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        ("unlink that", Fresh, Call("unlink_repository", none())),
        (
            "unlink github.com/acme/shop",
            Fresh,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "disconnect acme/shop please",
            Fresh,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "remove the link l-0193abcd",
            Fresh,
            Call("unlink_repository", json!({"link_id": "l-0193abcd"})),
        ),
        (
            "turn off auto deploy for acme/shop",
            Live,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "stop deploying acme/shop on every push",
            Live,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        (
            "no more automatic deploys for github.com/acme/shop",
            Fresh,
            Call("unlink_repository", json!({"repository": "acme/shop"})),
        ),
        // --- overriding a security-scan stop -------------------------------------------------
        (
            "deploy anyway",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "ignore the security findings and deploy",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "I accept the risk, go ahead",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "it's a false positive, ship it anyway",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "that key is a dummy key, deploy it regardless",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "override the security scan",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "allow the findings and redeploy",
            Failed,
            Call("redeploy", json!({"allow_findings": true})),
        ),
        (
            "deploy d-0193ccccdddd anyway",
            Fresh,
            Call(
                "redeploy",
                json!({"deployment_id": "d-0193ccccdddd", "allow_findings": true}),
            ),
        ),
        (
            "deploy github.com/acme/shop and ignore the security warnings",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop", "allow_findings": true}),
            ),
        ),
        // --- and what must not be read as links or overrides ----------------------------------
        (
            "what's the link to my app?",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "send me the link",
            Live,
            Call("get_deployment_status", none()),
        ),
        (
            "push acme/shop to cloud run",
            Fresh,
            Call(
                "deploy_repository",
                json!({"source": "github.com/acme/shop"}),
            ),
        ),
        ("redeploy", Failed, Call("redeploy", none())),
        ("stop deploying", Building, Call("abort_deployment", none())),
        ("stop the app", Live, Call("stop_deployment", none())),
        ("yes go ahead", Failed, Call("apply_fix", none())),
        ("thanks anyway", Live, Reply("You're welcome")),
        (
            "why did the security scan fail?",
            Failed,
            Call("diagnose_failure", none()),
        ),
        (
            "list my deployments",
            Fresh,
            Call("list_deployments", none()),
        ),
        ("good morning!", Fresh, Reply("Hi!")),
        ("thank you so much", Live, Reply("You're welcome")),
    ]
}

fn describe(u: &Understanding) -> String {
    match u {
        Understanding::Calls { calls, .. } => calls
            .iter()
            .map(|c| format!("{} {}", c.name(), c.to_json()))
            .collect::<Vec<_>>()
            .join("; "),
        Understanding::Reply(r) => format!("reply {r:?}"),
    }
}

fn check(message: &str, session: Session, expect: &Expect) -> Result<(), String> {
    let got = understand(message, &context(session));
    let ok = match (expect, &got) {
        (Call(tool, args), Understanding::Calls { calls, .. }) => {
            calls.len() == 1 && calls[0].name().as_str() == *tool && calls[0].to_json() == *args
        }
        (Reply(text), Understanding::Reply(reply)) => reply.contains(text),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let want = match expect {
        Call(tool, args) => format!("{tool} {args}"),
        Reply(text) => format!("a reply with {text:?}"),
    };
    Err(format!(
        "{message:?} ({session:?}): want {want}, got {}",
        describe(&got)
    ))
}

#[test]
fn every_phrasing_maps_to_its_tool_and_arguments() {
    let table = table();
    assert!(table.len() >= 150, "only {} phrasings", table.len());
    let failures: Vec<String> = table
        .iter()
        .filter_map(|(m, s, e)| check(m, *s, e).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} phrasings failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

/// Messages that share words with linking and overriding findings and are neither.
#[test]
fn no_link_or_override_is_read_into_other_requests() {
    let messages = [
        ("what's the link for acme/shop?", Fresh),
        ("send me the link to github.com/acme/shop", Fresh),
        ("push to production", Live),
        ("push it to production", Live),
        ("thanks anyway", Live),
        (
            "connect to the database with DATABASE_URL=postgres://db",
            Live,
        ),
        ("is the security scan done?", Building),
        ("stop", Live),
        ("stop the deploy", Building),
        ("cancel that", Building),
        ("deploy github.com/acme/shop", Fresh),
        ("deploy it again", Failed),
        ("what went wrong with the security scan?", Failed),
        ("why was it blocked?", Failed),
        ("fix it", Failed),
        ("show me the logs", Failed),
        ("deploy acme/shop from main", Fresh),
        ("who pushed this?", Live),
    ];
    for (message, session) in messages {
        if let Understanding::Calls { calls, .. } = understand(message, &context(session)) {
            for call in calls {
                let json = call.to_json();
                assert!(
                    !matches!(
                        call.name().as_str(),
                        "link_repository" | "list_links" | "unlink_repository"
                    ) && json.get("allow_findings").is_none(),
                    "{message:?} ({session:?}) became {} {json}",
                    call.name()
                );
            }
        }
    }
}

#[test]
fn calls_the_engine_makes_are_calls_the_registry_accepts() {
    for (message, session, _) in table() {
        if let Understanding::Calls { calls, .. } = understand(message, &context(session)) {
            for call in calls {
                let back = ToolCall::from_json(call.name().as_str(), &call.to_json());
                assert_eq!(back.as_ref(), Ok(&call), "{message:?}");
            }
        }
    }
}

#[test]
fn lead_ins_name_variables_but_never_their_values() {
    let u = understand(
        "deploy github.com/acme/shop with STRIPE_KEY=sk_live_abc and DEBUG=false",
        &Context::empty(),
    );
    let Understanding::Calls {
        lead_in: Some(lead),
        ..
    } = u
    else {
        panic!("{u:?}")
    };
    assert!(
        lead.contains("STRIPE_KEY (secret)") && lead.contains("DEBUG"),
        "{lead}"
    );
    assert!(
        !lead.contains("sk_live_abc") && !lead.contains("false"),
        "{lead}"
    );
    let u = understand("set API_KEY=xyz123 as secret", &context(Live));
    let Understanding::Calls {
        lead_in: Some(lead),
        ..
    } = u
    else {
        panic!("{u:?}")
    };
    assert!(!lead.contains("xyz123"), "{lead}");
}

#[test]
fn the_same_message_gives_the_same_answer() {
    for (message, session, _) in table() {
        let ctx = context(session);
        assert_eq!(
            understand(message, &ctx),
            understand(message, &ctx),
            "{message:?}"
        );
    }
}
