//! Both providers through their whole flow against loopback stand-ins for github.com and
//! Google (only they can answer for real): the authorize page, its redirect back with a
//! code, the exchange and the profile.

use devgem_signin::{
    Callback, ClientCredentials, GithubOAuth, GoogleOidc, IdentityProvider, ProviderKind,
    SignInError,
};
use devgem_testing::standin::Standin;
use devgem_testing::standin::oauth::{GithubOAuthStandin, GoogleOidcStandin, Person};
use std::sync::Arc;

const REDIRECT: &str = "http://127.0.0.1:8080/auth/github/callback";

fn ada() -> Person {
    Person {
        id: 4242,
        login: "ada".into(),
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
    }
}

fn creds(secret: &str) -> ClientCredentials {
    ClientCredentials {
        client_id: "client-1".into(),
        client_secret: secret.into(),
    }
}

/// Follows the authorize URL as a browser would, up to the redirect back to DevGem.
async fn consent(provider: &dyn IdentityProvider, redirect: &str, state: &str) -> Callback {
    let url = provider.authorize_url(redirect, state, "nonce-1");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 302, "{url}");
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (to, query) = location.split_once('?').unwrap();
    assert_eq!(to, redirect);
    Callback::from_query(provider.kind(), query).unwrap()
}

#[tokio::test]
async fn github_sign_in_reads_the_profile_on_the_standin() {
    let gh = Arc::new(GithubOAuthStandin::new("client-1", "secret-1", ada()));
    let standin = Standin::start(None, vec![gh.clone()]);
    let provider = GithubOAuth::new(creds("secret-1"), &standin.base_url, &standin.base_url);

    let cb = consent(&provider, REDIRECT, "state-1").await;
    assert_eq!(cb.state, "state-1");
    let signed_in = provider.complete(&cb.code, REDIRECT, "").await.unwrap();
    assert_eq!(signed_in.profile.provider, ProviderKind::Github);
    assert_eq!(signed_in.profile.subject, "4242");
    assert_eq!(signed_in.profile.login.as_deref(), Some("ada"));
    assert_eq!(signed_in.access_token, gh.issued_tokens()[0]);
    assert!(signed_in.scopes.contains(&"repo".to_string()));
    assert!(!format!("{signed_in:?}").contains(&signed_in.access_token));

    let exchange = &standin.requests_to("POST", "/login/oauth/access_token")[0];
    assert_eq!(exchange.header("accept"), Some("application/json"));
    let user = &standin.requests_to("GET", "/user")[0];
    assert_eq!(
        user.header("authorization"),
        Some(format!("Bearer {}", signed_in.access_token).as_str())
    );

    // A code is good once.
    let again = provider.complete(&cb.code, REDIRECT, "").await.unwrap_err();
    assert!(
        matches!(&again, SignInError::Refused { reason, .. } if reason.contains("bad_verification_code")),
        "{again}"
    );
}

#[tokio::test]
async fn github_refuses_a_wrong_secret_or_redirect_on_the_standin() {
    let gh = Arc::new(GithubOAuthStandin::new("client-1", "secret-1", ada()));
    let standin = Standin::start(None, vec![gh]);
    let wrong = GithubOAuth::new(creds("not-it"), &standin.base_url, &standin.base_url);
    let cb = consent(&wrong, REDIRECT, "s").await;
    let err = wrong.complete(&cb.code, REDIRECT, "").await.unwrap_err();
    assert!(
        err.to_string().contains("incorrect_client_credentials"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("not-it"),
        "the secret leaked: {err}"
    );

    let right = GithubOAuth::new(creds("secret-1"), &standin.base_url, &standin.base_url);
    let cb = consent(&right, REDIRECT, "s").await;
    let err = right
        .complete(&cb.code, "http://elsewhere/cb", "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect_uri_mismatch"), "{err}");
}

#[tokio::test]
async fn google_sign_in_checks_the_nonce_on_the_standin() {
    let google = Arc::new(GoogleOidcStandin::new("client-1", "secret-1", ada()));
    let standin = Standin::start(None, vec![google]);
    let token_url = format!("{}/token", standin.base_url);
    let provider = GoogleOidc::new(creds("secret-1"), &standin.base_url, &token_url);
    let redirect = "http://127.0.0.1:8080/auth/google/callback";

    let cb = consent(&provider, redirect, "state-g").await;
    let signed_in = provider
        .complete(&cb.code, redirect, "nonce-1")
        .await
        .unwrap();
    assert_eq!(signed_in.profile.provider, ProviderKind::Google);
    assert_eq!(signed_in.profile.subject, "4242");
    assert_eq!(signed_in.profile.email.as_deref(), Some("ada@example.com"));
    let form = String::from_utf8(standin.requests_to("POST", "/token")[0].body.to_vec()).unwrap();
    assert!(form.contains("grant_type=authorization_code"), "{form}");

    // An ID token minted for another sign-in's nonce is refused.
    let cb = consent(&provider, redirect, "state-g").await;
    let err = provider
        .complete(&cb.code, redirect, "nonce-other")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nonce"), "{err}");

    let err = provider
        .complete("4/forged", redirect, "nonce-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SignInError::Refused { reason, .. } if reason.contains("invalid_grant")),
        "{err}"
    );
}
