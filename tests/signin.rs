//! Sign-in in a browser, black box: the real `devgem serve` against loopback stand-ins for
//! github.com and Google's OAuth endpoints (only they can answer for real). A browser's
//! steps are followed by hand (no redirects followed, cookies carried explicitly), so each
//! hop is checked: the state cookie, the provider's consent, the callback, the session
//! cookie's flags, the account behind `/api/me`, and where GitHub's token ends up.

mod support;

use devgem_testing::standin::Standin;
use devgem_testing::standin::oauth::{GithubOAuthStandin, GoogleOidcStandin, Person};
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Home, Server};

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn ada() -> Person {
    Person {
        id: 4242,
        login: "ada".into(),
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
    }
}

struct World {
    home: Home,
    server: Server,
    github: Arc<GithubOAuthStandin>,
    _standin: Standin,
}

fn world() -> World {
    let github = Arc::new(GithubOAuthStandin::new("gh-client", "gh-secret", ada()));
    let google = Arc::new(GoogleOidcStandin::new("g-client", "g-secret", ada()));
    let standin = Standin::start(None, vec![github.clone(), google]);
    let home = Home::new();
    let token_url = format!("{}/token", standin.base_url);
    let server = home.serve(&[
        ("GITHUB_CLIENT_ID", "gh-client"),
        ("GITHUB_CLIENT_SECRET", "gh-secret"),
        ("GOOGLE_CLIENT_ID", "g-client"),
        ("GOOGLE_CLIENT_SECRET", "g-secret"),
        ("DEVGEM_GITHUB_URL", &standin.base_url),
        ("DEVGEM_GITHUB_API_URL", &standin.base_url),
        ("DEVGEM_GOOGLE_ACCOUNTS_URL", &standin.base_url),
        ("DEVGEM_GOOGLE_TOKEN_URL", &token_url),
    ]);
    World {
        home,
        server,
        github,
        _standin: standin,
    }
}

fn location(res: &Response) -> String {
    assert_eq!(res.status(), 302, "expected a redirect");
    res.headers()["location"].to_str().unwrap().to_string()
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// `name=value` of cookie `name` among `Set-Cookie` headers.
fn cookie_pair(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Login, consent at the provider, back at the callback: the callback's response.
/// `session` is a cookie the browser already has.
fn sign_in(w: &World, provider: &str, session: Option<&str>) -> Response {
    let b = browser();
    let login = b
        .get(format!("{}/auth/{provider}/login", w.server.url))
        .send()
        .unwrap();
    let to_provider = location(&login);
    let flow = cookie_pair(&set_cookies(&login), "devgem_signin").expect("a flow cookie");
    let consent = b.get(&to_provider).send().unwrap();
    let back = location(&consent);
    let path = back.split_once("/auth/").map(|(_, p)| p).unwrap();
    let cookies = match session {
        Some(s) => format!("{flow}; {s}"),
        None => flow,
    };
    b.get(format!("{}/auth/{path}", w.server.url))
        .header("cookie", cookies)
        .send()
        .unwrap()
}

fn me(w: &World, session: &str) -> Value {
    let res = browser()
        .get(format!("{}/api/me", w.server.url))
        .header("cookie", session)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().unwrap()
}

#[test]
fn github_sign_in_makes_an_account_and_a_session_cookie_on_the_standin() {
    let w = world();
    let done = sign_in(&w, "github", None);
    assert_eq!(location(&done), "/api/me");
    let cookies = set_cookies(&done);
    let session_header = cookies
        .iter()
        .find(|c| c.starts_with("devgem_session="))
        .expect("a session cookie");
    assert!(session_header.contains("HttpOnly"), "{session_header}");
    assert!(session_header.contains("SameSite=Lax"), "{session_header}");
    assert!(
        !session_header.contains("Secure"),
        "loopback has no TLS, so no Secure: {session_header}"
    );
    let session = cookie_pair(&cookies, "devgem_session").unwrap();

    let profile = me(&w, &session);
    assert_eq!(profile["user"], "github-4242", "{profile}");
    assert_eq!(profile["github"]["login"], "ada", "{profile}");
    assert_eq!(profile["name"], "Ada Lovelace", "{profile}");

    // The session works on the API, and is the user's own.
    let list = browser()
        .get(format!("{}/api/deployments", w.server.url))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(list.status(), 200);

    // GitHub's token is in the secrets port and nowhere else under DEVGEM_HOME.
    let token = w
        .github
        .issued_tokens()
        .pop()
        .expect("GitHub issued a token");
    let mut holders = Vec::new();
    for entry in walk(w.home.path()) {
        if std::fs::read(&entry)
            .map(|b| String::from_utf8_lossy(&b).contains(&token))
            .unwrap_or(false)
        {
            holders.push(entry);
        }
    }
    assert_eq!(holders.len(), 1, "the token is in {holders:?}");
    assert!(
        holders[0].to_string_lossy().contains("secrets"),
        "{holders:?}"
    );

    // Signing out ends the session.
    let out = browser()
        .post(format!("{}/auth/logout", w.server.url))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(out.status(), 200);
    let after = browser()
        .get(format!("{}/api/me", w.server.url))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[test]
fn a_callback_whose_state_is_not_this_browsers_is_refused() {
    let w = world();
    let b = browser();
    let login = b
        .get(format!("{}/auth/github/login", w.server.url))
        .send()
        .unwrap();
    let consent = b.get(location(&login)).send().unwrap();
    let back = location(&consent);
    let path = back.split_once("/auth/").map(|(_, p)| p).unwrap();
    // An attacker's callback (their code, their state) in a browser that never started it,
    // and one carrying another sign-in's flow cookie.
    for cookie in [None, Some("devgem_signin=github.someone-elses-state.n")] {
        let mut req = b.get(format!("{}/auth/{path}", w.server.url));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().unwrap();
        assert_eq!(res.status(), 400, "{cookie:?}");
        assert!(
            cookie_pair(&set_cookies(&res), "devgem_session").is_none(),
            "no session for a forged callback"
        );
        let body: Value = res.json().unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("state does not match"),
            "{body}"
        );
    }
    // The provider never saw a code exchange.
    assert!(w.github.issued_tokens().is_empty());
}

#[test]
fn google_then_github_is_one_account_whose_preferences_new_deployments_use() {
    let w = world();
    let google = sign_in(&w, "google", None);
    let session = cookie_pair(&set_cookies(&google), "devgem_session").unwrap();
    assert_eq!(me(&w, &session)["user"], "google-4242");

    // Signing in with GitHub while signed in links it to the same account.
    let linked = sign_in(&w, "github", Some(&session));
    let session2 = cookie_pair(&set_cookies(&linked), "devgem_session").unwrap();
    let profile = me(&w, &session2);
    assert_eq!(profile["user"], "google-4242", "{profile}");
    assert_eq!(profile["github"]["login"], "ada", "{profile}");
    assert_eq!(profile["identities"].as_array().unwrap().len(), 2);

    // Preferences: a secret is refused, plain defaults are kept.
    let patch = |body: Value| {
        browser()
            .patch(format!("{}/api/me", w.server.url))
            .header("cookie", &session2)
            .json(&body)
            .send()
            .unwrap()
    };
    let refused = patch(json!({"preferences": {"default_env": {"API_SECRET": "x"}}}));
    assert_eq!(refused.status(), 400);
    let bad_region = patch(json!({"preferences": {"default_region": "Europe West"}}));
    assert_eq!(bad_region.status(), 400);
    let message = bad_region.json::<Value>().unwrap()["error"]["message"].clone();
    let text = message.as_str().unwrap();
    assert!(
        text.contains("default_region") && text.contains("europe-west1"),
        "{message}"
    );
    let set = patch(
        json!({"preferences": {"default_public": false, "default_region": "europe-west1",
                                           "default_env": {"GREETING": "hi"}}}),
    );
    assert_eq!(set.status(), 200);
    assert_eq!(
        me(&w, &session2)["preferences"]["default_region"],
        "europe-west1"
    );

    // A PATCH changes the fields it names and keeps the others; `null` resets one.
    let region_only = patch(json!({"preferences": {"default_region": "europe-west4"}}));
    assert_eq!(region_only.status(), 200);
    let kept = me(&w, &session2)["preferences"].clone();
    assert_eq!(
        kept,
        json!({"default_region": "europe-west4", "default_public": false,
               "default_env": {"GREETING": "hi"}}),
    );
    let reset = patch(json!({"preferences": {"default_region": null}}));
    assert_eq!(reset.status(), 200);
    let kept = me(&w, &session2)["preferences"].clone();
    assert_eq!(
        kept,
        json!({"default_public": false, "default_env": {"GREETING": "hi"}})
    );
    let back = patch(json!({"preferences": {"default_region": "europe-west1"}}));
    assert_eq!(back.status(), 200);

    // A deployment that says nothing about visibility or GREETING gets the defaults.
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("README.md"), "nothing to run\n").unwrap();
    let created: Value = browser()
        .post(format!("{}/api/deployments", w.server.url))
        .header("cookie", &session2)
        .json(&json!({"source": app.path()}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(created["private"], true, "{created}");
    assert_eq!(created["region"], "europe-west1", "{created}");
    let names: Vec<&str> = created["env_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"GREETING"), "{created}");

    // A region the request names wins over the default; a malformed one is refused before
    // anything is stored, naming the field and the fix.
    let create = |body: Value| {
        browser()
            .post(format!("{}/api/deployments", w.server.url))
            .header("cookie", &session2)
            .json(&body)
            .send()
            .unwrap()
    };
    let explicit: Value = create(json!({"source": app.path(), "region": "asia-northeast1"}))
        .json()
        .unwrap();
    assert_eq!(explicit["region"], "asia-northeast1", "{explicit}");
    let refused = create(json!({"source": app.path(), "region": "us central"}));
    assert_eq!(refused.status(), 400);
    let error = refused.json::<Value>().unwrap()["error"].clone();
    assert_eq!(error["code"], "invalid_region", "{error}");
    assert!(
        error["message"].as_str().unwrap().starts_with("region:"),
        "{error}"
    );
    assert!(
        error["hint"].as_str().unwrap().contains("europe-west1"),
        "{error}"
    );

    // The chat's deploy honours the same preferences as the API's.
    let chat: Value = browser()
        .post(format!("{}/chat", w.server.url))
        .header("cookie", &session2)
        .json(&json!({"message": format!("deploy {}", app.path().display())}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let chat_id = chat["deployment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{chat}"));
    let by_chat: Value = browser()
        .get(format!("{}/api/deployments/{chat_id}", w.server.url))
        .header("cookie", &session2)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(by_chat["region"], "europe-west1", "{by_chat}");
    assert_eq!(by_chat["private"], true, "{by_chat}");
    assert!(
        by_chat["env_names"]
            .as_array()
            .unwrap()
            .contains(&json!("GREETING")),
        "{by_chat}"
    );

    let listed: Value = browser()
        .get(format!("{}/api/deployments", w.server.url))
        .header("cookie", &session2)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        listed["deployments"].as_array().unwrap().len(),
        3,
        "{listed}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_symlink() {
            continue;
        } else if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The HTTP status that refused a WebSocket handshake to `url` with `headers`, or `None`
/// when the socket opened.
async fn ws_refusal(url: &str, headers: &[(&str, &str)]) -> Option<u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Some(res.status().as_u16()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn the_session_cookie_opens_the_websocket_and_changes_things_only_from_devgems_own_origin() {
    let w = world();
    let done = sign_in(&w, "github", None);
    let session = cookie_pair(&set_cookies(&done), "devgem_session").unwrap();
    let token = session.split_once('=').unwrap().1.to_string();
    let ours = w.server.url.clone();
    let evil = "https://evil.example";

    // Another site's page can make the browser open the socket with the cookie: refused
    // before the upgrade. DevGem's own page, and a client with a bearer token, are served.
    let ws = w.server.url.replacen("http", "ws", 1) + "/ws/chat";
    let bearer = format!("Bearer {token}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cookie = ("cookie", session.as_str());
        assert_eq!(ws_refusal(&ws, &[cookie, ("origin", &ours)]).await, None);
        assert_eq!(
            ws_refusal(&ws, &[cookie, ("origin", evil)]).await,
            Some(403)
        );
        assert_eq!(ws_refusal(&ws, &[("authorization", &bearer)]).await, None);
        let by_query = format!("{ws}?token={token}");
        assert_eq!(ws_refusal(&by_query, &[("origin", evil)]).await, None);
    });

    // A change made with the cookie from another site (a form posts without a preflight)
    // is refused; reads, DevGem's own pages and bearer tokens are not.
    let patch = |headers: &[(&str, &str)]| {
        let mut req = browser()
            .patch(format!("{}/api/me", w.server.url))
            .json(&json!({"preferences": {"default_public": false}}));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().unwrap()
    };
    let refused = patch(&[("cookie", &session), ("origin", evil)]);
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], "foreign_origin", "{body}");
    assert!(
        me(&w, &session)["preferences"]
            .get("default_public")
            .is_none()
    );
    assert_eq!(
        patch(&[("cookie", &session), ("origin", &ours)]).status(),
        200
    );
    assert_eq!(
        patch(&[("authorization", &bearer), ("origin", evil)]).status(),
        200
    );
    let read = browser()
        .get(format!("{}/api/me", w.server.url))
        .header("cookie", &session)
        .header("origin", evil)
        .send()
        .unwrap();
    assert_eq!(read.status(), 200);
}
