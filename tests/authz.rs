//! The authorization matrix, black-box: a real `devgem serve` with the operator's token and
//! two users' tokens (made by `devgem token create`), real HTTP, a real WebSocket client and
//! real MCP requests. Every route the server lists at `GET /` has a row here (a new route
//! without one fails the test); each row is tried without a token, with a wrong one, and by
//! the other user on the owner's ids, which must answer exactly as a missing id does.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Home, http, wait_for};

const ADMIN: &str = "admin-token-for-authz";
/// An id of each kind that nobody has.
const MISSING_DEPLOYMENT: &str = "d-00000000000000000000000000000000";
const MISSING_LINK: &str = "l-00000000000000000000000000000000";
const MISSING_SESSION: &str = "s-00000000000000000000000000000000";

/// `devgem token create USER`: the token is alone on the last line.
fn token_for(home: &Home, user: &str) -> String {
    let out = home.run(&["token", "create", user]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("dg_") && token.len() > 40, "{stdout}");
    token
}

/// How a request proves who it is.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Nobody,
    Bearer(&'a str),
}

struct Call {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

fn call(base: &str, method: &str, path: &str, body: Option<&str>, caller: Caller) -> Call {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http().request(method, format!("{base}{path}"));
    if let Caller::Bearer(token) = caller {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if path.ends_with("/events") {
        req = req.timeout(Duration::from_secs(5));
    }
    let res = req.send().expect("the server answers");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = if status == 200 && path.ends_with("/events") {
        // A stream: its headers are the answer; the body does not end.
        json!({"stream": true})
    } else {
        let text = res.text().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(json!({ "text": text }))
    };
    Call {
        status,
        body,
        retry_after,
    }
}

/// One route of `GET /`'s list: how to call it on an id, and with what body.
struct Route {
    /// As `GET /` lists it: `POST /api/deployments/{id}/env`.
    listed: &'static str,
    /// Which id `{id}` stands for.
    id: IdKind,
    /// A body that would be valid for the owner (the others' attempts get a broken one).
    body: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq)]
enum IdKind {
    None,
    Deployment,
    Link,
}

/// Every route `GET /` lists except `/health`, the WebSocket (tried with its own client) and
/// the sign-in routes.
const ROUTES: &[Route] = &[
    route(
        "POST /api/deployments",
        IdKind::None,
        Some(r#"{"source": "x"}"#),
    ),
    route("GET /api/deployments", IdKind::None, None),
    route("GET /api/deployments/{id}", IdKind::Deployment, None),
    route("GET /api/deployments/{id}/logs", IdKind::Deployment, None),
    route("GET /api/deployments/{id}/events", IdKind::Deployment, None),
    route("POST /api/deployments/{id}/abort", IdKind::Deployment, None),
    route("POST /api/deployments/{id}/stop", IdKind::Deployment, None),
    route(
        "GET /api/deployments/{id}/revisions",
        IdKind::Deployment,
        None,
    ),
    route(
        "POST /api/deployments/{id}/rollback",
        IdKind::Deployment,
        Some("{}"),
    ),
    route("GET /api/deployments/{id}/env", IdKind::Deployment, None),
    route(
        "POST /api/deployments/{id}/env",
        IdKind::Deployment,
        Some(r#"{"set": {"STOLEN": "1"}}"#),
    ),
    route(
        "GET /api/deployments/{id}/domains",
        IdKind::Deployment,
        None,
    ),
    route(
        "POST /api/deployments/{id}/domains",
        IdKind::Deployment,
        Some(r#"{"domain": "stolen.example.com"}"#),
    ),
    route(
        "POST /api/links",
        IdKind::None,
        Some(r#"{"repository": "acme/other", "branch": "main"}"#),
    ),
    route("GET /api/links", IdKind::None, None),
    route("DELETE /api/links/{id}", IdKind::Link, None),
    route(
        "POST /chat",
        IdKind::None,
        Some(r#"{"message": "list my deployments"}"#),
    ),
    route(
        "POST /mcp",
        IdKind::None,
        Some(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#),
    ),
    route("GET /stats", IdKind::None, None),
    route("GET /api/me", IdKind::None, None),
    route(
        "PATCH /api/me",
        IdKind::None,
        Some(r#"{"preferences": {}}"#),
    ),
];

const fn route(listed: &'static str, id: IdKind, body: Option<&'static str>) -> Route {
    Route { listed, id, body }
}

impl Route {
    fn method(&self) -> &'static str {
        self.listed.split_once(' ').unwrap().0
    }

    fn path(&self, id: &str) -> String {
        self.listed.split_once(' ').unwrap().1.replace("{id}", id)
    }
}

/// What one user owns.
struct Owned {
    deployment: String,
    link: String,
    session: String,
}

fn make_things(base: &str, token: &str, app: &std::path::Path) -> Owned {
    let who = Caller::Bearer(token);
    let body = json!({"source": app.display().to_string()}).to_string();
    let d = call(base, "POST", "/api/deployments", Some(&body), who);
    assert_eq!(d.status, 202, "{}", d.body);
    let deployment = d.body["id"].as_str().unwrap().to_string();
    let body = r#"{"repository": "acme/shop", "branch": "main"}"#;
    let l = call(base, "POST", "/api/links", Some(body), who);
    assert_eq!(l.status, 201, "{}", l.body);
    let link = l.body["id"].as_str().unwrap().to_string();
    let c = call(
        base,
        "POST",
        "/chat",
        Some(r#"{"message": "list my deployments"}"#),
        who,
    );
    assert_eq!(c.status, 200, "{}", c.body);
    let session = c.body["session_id"].as_str().unwrap().to_string();
    Owned {
        deployment,
        link,
        session,
    }
}

fn listed_routes(base: &str) -> Vec<String> {
    let index = call(base, "GET", "/", None, Caller::Nobody);
    assert_eq!(index.status, 200);
    index.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_route_refuses_strangers_and_answers_the_other_users_ids_as_missing() {
    let home = Home::new();
    let ann_token = token_for(&home, "ann");
    let bob_token = token_for(&home, "bob");
    let server = home.serve(&[("DEVGEM_API_TOKEN", ADMIN)]);
    let base = server.url.as_str();
    let (ann, bob) = (Caller::Bearer(&ann_token), Caller::Bearer(&bob_token));

    // The table covers every route the server lists.
    let unlisted: Vec<String> = listed_routes(base)
        .into_iter()
        .filter(|r| r != "GET /health" && r != "GET /ws/chat")
        // Signing in is how a stranger becomes a user: those routes are open by design
        // (tests/signin.rs covers them).
        .filter(|r| !r.contains(" /auth/"))
        .filter(|r| !ROUTES.iter().any(|row| row.listed == r))
        .collect();
    assert!(
        unlisted.is_empty(),
        "routes without a row in the authorization matrix: {unlisted:?}"
    );

    // An app whose analysis fails at once: a deployment of Ann's that costs no build.
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("README.md"), "nothing to run\n").unwrap();
    let anns = make_things(base, &ann_token, app.path());
    wait_for(
        "ann's deployment to finish",
        Duration::from_secs(60),
        || {
            let d = call(
                base,
                "GET",
                &format!("/api/deployments/{}", anns.deployment),
                None,
                ann,
            );
            let status = d.body["status"].as_str().unwrap_or_default().to_string();
            (status == "failed" || status == "live").then_some(())
        },
    );
    let before = call(
        base,
        "GET",
        &format!("/api/deployments/{}", anns.deployment),
        None,
        ann,
    );

    for row in ROUTES {
        let (method, listed) = (row.method(), row.listed);
        let owned_id = match row.id {
            IdKind::None => String::new(),
            IdKind::Deployment => anns.deployment.clone(),
            IdKind::Link => anns.link.clone(),
        };
        let path = row.path(&owned_id);
        // Nobody, and a wrong token: 401 before anything else is looked at.
        for stranger in [
            Caller::Nobody,
            Caller::Bearer("dg_not-a-token"),
            Caller::Bearer(""),
        ] {
            let got = call(base, method, &path, row.body, stranger);
            assert_eq!(got.status, 401, "{listed} by a stranger: {}", got.body);
            assert_eq!(got.body["error"]["code"], "unauthorized", "{listed}");
        }
        if row.id == IdKind::None {
            continue;
        }
        // Bob on Ann's id, with a broken body: exactly what a missing id gets.
        let broken = row.body.map(|_| "{not json");
        let theirs = call(base, method, &path, broken, bob);
        let missing_id = match row.id {
            IdKind::Link => MISSING_LINK,
            _ => MISSING_DEPLOYMENT,
        };
        let missing = call(base, method, &row.path(missing_id), broken, bob);
        assert_eq!(
            missing.status, 404,
            "{listed} on a missing id: {}",
            missing.body
        );
        assert_eq!(
            theirs.status, 404,
            "{listed} on ann's id by bob: {}",
            theirs.body
        );
        assert_eq!(
            theirs.body["error"]["code"], missing.body["error"]["code"],
            "{listed}: ann's id and a missing one answer alike"
        );
        // The admin is the local user: Ann's ids are not theirs either.
        let admin = call(base, method, &path, broken, Caller::Bearer(ADMIN));
        assert_eq!(
            admin.status, 404,
            "{listed} on ann's id by the admin: {}",
            admin.body
        );
    }

    // Ann's deployment and link are as they were; she still reads them.
    let after = call(
        base,
        "GET",
        &format!("/api/deployments/{}", anns.deployment),
        None,
        ann,
    );
    assert_eq!(after.status, 200);
    assert_eq!(
        after.body["status"], before.body["status"],
        "{}",
        after.body
    );
    assert_eq!(
        after.body["version"], before.body["version"],
        "nobody else wrote it"
    );
    let env = call(
        base,
        "GET",
        &format!("/api/deployments/{}/env", anns.deployment),
        None,
        ann,
    );
    assert_eq!(env.status, 200, "{}", env.body);
    assert!(!env.body.to_string().contains("STOLEN"), "{}", env.body);
    let links = call(base, "GET", "/api/links", None, ann);
    assert!(
        links.body.to_string().contains(&anns.link),
        "{}",
        links.body
    );
    let events = call(
        base,
        "GET",
        &format!("/api/deployments/{}/events", anns.deployment),
        None,
        ann,
    );
    assert_eq!(events.status, 200, "ann reads her own stream");

    // Lists are the caller's own.
    let bobs = make_things(base, &bob_token, app.path());
    for (list, key) in [("/api/deployments", "deployments"), ("/api/links", "links")] {
        let got = call(base, "GET", list, None, bob);
        assert_eq!(got.status, 200, "{}", got.body);
        let text = got.body[key].to_string();
        assert!(
            !text.contains(&anns.deployment) && !text.contains(&anns.link),
            "{text}"
        );
        assert!(
            text.contains(&bobs.deployment) || text.contains(&bobs.link),
            "{text}"
        );
    }

    // The chat: Ann's session is missing for Bob, as a session nobody has.
    let chat_in = |session: &str| {
        let body = json!({"message": "status", "session_id": session}).to_string();
        call(base, "POST", "/chat", Some(&body), bob)
    };
    let (theirs, missing) = (chat_in(&anns.session), chat_in(MISSING_SESSION));
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    assert_eq!(theirs.body["error"]["code"], missing.body["error"]["code"]);
    // A chat message naming Ann's deployment gets the answer a missing one gets.
    let ask = |id: &str| {
        let body = json!({"message": format!("status of {id}")}).to_string();
        let got = call(base, "POST", "/chat", Some(&body), bob);
        assert_eq!(got.status, 200, "{}", got.body);
        let action = got.body["actions"][0].clone();
        (action["ok"].clone(), action["error"]["code"].clone())
    };
    let (theirs, missing) = (ask(&anns.deployment), ask(MISSING_DEPLOYMENT));
    assert_eq!(
        theirs.0, false,
        "bob cannot read ann's deployment over chat"
    );
    assert_eq!(theirs, missing);

    // MCP: Ann's deployment as a tool argument and as a resource, for Bob.
    let (theirs, missing) = (
        mcp_status(base, &bob_token, &anns.deployment),
        mcp_status(base, &bob_token, MISSING_DEPLOYMENT),
    );
    assert_eq!(theirs, missing, "MCP answers ann's id as a missing one");
    assert!(theirs.0.to_string().contains("error") || theirs.0["isError"] == true);
    let mine = mcp_status(base, &ann_token, &anns.deployment);
    assert_ne!(mine, theirs, "ann reads her own over MCP");

    // Ann's link cannot be unlinked by Bob, over chat or MCP: the answer a missing link gets.
    let unlink_over_chat = |id: &str| {
        let body = json!({"message": format!("unlink {id}")}).to_string();
        let got = call(base, "POST", "/chat", Some(&body), bob);
        assert_eq!(got.status, 200, "{}", got.body);
        let action = &got.body["actions"][0];
        assert_eq!(action["tool"], "unlink_repository", "{}", got.body);
        let reply = got.body["reply"].as_str().unwrap().replace(id, "ID");
        (action["ok"].clone(), action["error"]["code"].clone(), reply)
    };
    let (theirs, missing) = (unlink_over_chat(&anns.link), unlink_over_chat(MISSING_LINK));
    assert_eq!(
        theirs.0, false,
        "bob unlinked ann's link over chat: {theirs:?}"
    );
    assert_eq!(theirs, missing);
    let unlink_over_mcp = |id: &str| {
        let res = http()
            .post(format!("{base}/mcp"))
            .bearer_auth(&bob_token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "unlink_repository", "arguments": {"link_id": id}},
            }))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.text().unwrap().replace(id, "ID")
    };
    let (theirs, missing) = (unlink_over_mcp(&anns.link), unlink_over_mcp(MISSING_LINK));
    assert!(theirs.contains("isError"), "{theirs}");
    assert_eq!(theirs, missing, "MCP answers ann's link as a missing one");
    let links = call(base, "GET", "/api/links", None, ann);
    assert!(
        links.body.to_string().contains(&anns.link),
        "ann's link is still there: {}",
        links.body
    );

    // The WebSocket: 401 before the upgrade without a valid token; Ann's session is missing
    // for Bob before the upgrade too; a valid token opens a socket.
    let ws = server.url.replacen("http", "ws", 1) + "/ws/chat";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for url in [ws.clone(), format!("{ws}?token=dg_wrong")] {
            assert_eq!(ws_refusal(&url, None).await, Some(401), "{url}");
        }
        assert_eq!(ws_refusal(&ws, Some("dg_wrong")).await, Some(401));
        let theirs = format!("{ws}?session_id={}", anns.session);
        let missing = format!("{ws}?session_id={MISSING_SESSION}");
        assert_eq!(ws_refusal(&theirs, Some(&bob_token)).await, Some(404));
        assert_eq!(ws_refusal(&missing, Some(&bob_token)).await, Some(404));
        assert_eq!(
            ws_refusal(&ws, Some(&bob_token)).await,
            None,
            "bob's own socket"
        );
        let own = format!("{ws}?token={ann_token}&session_id={}", anns.session);
        assert_eq!(
            ws_refusal(&own, None).await,
            None,
            "ann's session, ?token= as browsers"
        );
    });

    // Stats: each user sees their own row; the admin sees everyone's.
    let rows = |caller| {
        let got = call(base, "GET", "/stats", None, caller);
        assert_eq!(got.status, 200, "{}", got.body);
        got.body
    };
    let bob_stats = rows(bob);
    assert_eq!(bob_stats["scope"], "user");
    let users: Vec<&str> = bob_stats["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["bob"], "{bob_stats}");
    assert_eq!(bob_stats["users"][0]["deployments"], 1, "{bob_stats}");
    let all = rows(Caller::Bearer(ADMIN));
    assert_eq!(all["scope"], "all", "{all}");
    let ann_row = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "ann")
        .cloned()
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(ann_row["deployments"], 1, "{all}");
    assert_eq!(ann_row["failed_deployments"], 1, "{all}");
    assert!(ann_row["chat_messages"].as_u64().unwrap() >= 1, "{all}");
    assert_eq!(all["total"]["deployments"], 2, "{all}");
    assert!(
        all["total"]["error_responses"].as_u64().unwrap() > 10,
        "bob's refused attempts count: {all}"
    );

    // `devgem token list` shows who and when, never a token; a revoked token is refused.
    let out = home.run(&["token", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listing.contains("ann") && listing.contains("bob"),
        "{listing}"
    );
    assert!(
        !listing.contains(&ann_token) && !listing.contains("dg_"),
        "{listing}"
    );
    let bob_id = listing
        .lines()
        .find(|l| l.contains(" bob "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(home.run(&["token", "revoke", &bob_id]).status.success());
    let got = call(base, "GET", "/api/deployments", None, bob);
    assert_eq!(got.status, 401, "a revoked token: {}", got.body);
    assert!(!home.run(&["token", "revoke", &bob_id]).status.success());
}

/// `tools/call get_deployment_status` and `resources/read` of `id` over `POST /mcp`: the
/// results, with the ids taken out so that two ids compare.
fn mcp_status(base: &str, token: &str, id: &str) -> (Value, Value) {
    let post = |body: Value| {
        let res = http()
            .post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let text = res.text().unwrap().replace(id, "ID");
        serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!({ "text": text }))
    };
    let tool = post(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_deployment_status", "arguments": {"deployment_id": id}},
    }));
    let resource = post(json!({
        "jsonrpc": "2.0", "id": 2, "method": "resources/read",
        "params": {"uri": format!("devgem://deployments/{id}")},
    }));
    (tool["result"].clone(), resource)
}

/// The HTTP status that refused a WebSocket handshake, or `None` when it opened.
async fn ws_refusal(url: &str, bearer: Option<&str>) -> Option<u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    if let Some(token) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Some(res.status().as_u16()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn each_user_has_a_rate_limit_answered_with_retry_after() {
    let home = Home::new();
    let ann_token = token_for(&home, "ann");
    let bob_token = token_for(&home, "bob");
    let server = home.serve(&[("DEVGEM_RATE_LIMIT_PER_MINUTE", "3")]);
    let base = server.url.as_str();
    let (ann, bob) = (Caller::Bearer(&ann_token), Caller::Bearer(&bob_token));
    // With tokens made, the open loopback server asks for one.
    assert_eq!(
        call(base, "GET", "/api/deployments", None, Caller::Nobody).status,
        401
    );
    for _ in 0..3 {
        assert_eq!(call(base, "GET", "/api/deployments", None, ann).status, 200);
    }
    let limited = call(base, "GET", "/api/deployments", None, ann);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let wait: u64 = limited.retry_after.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=20).contains(&wait),
        "one request comes back every 20 s: {wait}"
    );
    // Bob's bucket is his own.
    assert_eq!(call(base, "GET", "/api/deployments", None, bob).status, 200);
    // The health check is not limited.
    assert_eq!(
        call(base, "GET", "/health", None, Caller::Nobody).status,
        200
    );
}

#[test]
fn mcp_answers_a_malformed_cut_off_or_oversized_body_with_the_json_error() {
    let home = Home::new();
    let token = token_for(&home, "ann");
    let server = home.serve(&[]);
    let base = server.url.as_str();
    let post = |body: String| {
        let res = http()
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().unwrap();
        let body = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!({ "text": text }));
        (status, body)
    };
    let list = r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#;
    let (status, body) = post(list.to_string());
    assert_eq!(status, 200, "{body}");
    assert!(
        !body["result"]["tools"].as_array().unwrap().is_empty(),
        "{body}"
    );

    let malformed = post(r#"{"jsonrpc": "2.0", "id": 1, "method": tools/list}"#.to_string());
    let truncated = post(list[..list.len() / 2].to_string());
    let oversized = post(format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {{"pad": "{}"}}}}"#,
        "x".repeat(65 * 1024)
    ));
    for ((status, body), wanted) in [(malformed, 400), (truncated, 400), (oversized, 413)] {
        assert_eq!(status, wanted, "{body}");
        assert!(body["error"]["code"].is_string(), "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }

    // A body that ends before its Content-Length: the connection's write side is closed
    // after half of it.
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         content-length: {}\r\n\r\n{}",
        list.len(),
        &list[..list.len() / 2]
    )
    .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.starts_with("HTTP/1.1 400"), "{answer}");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(body["error"]["code"], "incomplete_body", "{answer}");
}
