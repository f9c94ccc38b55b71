//! Push authentication: tokens signed with test-only keys (tests/keys) play Google's.

use devgem_gcp::{KeySource, OidcError, PushAuth};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const GOOGLE_KEY: &[u8] = include_bytes!("keys/test-google.pem");
const OTHER_KEY: &[u8] = include_bytes!("keys/test-other.pem");
const JWKS: &str = include_str!("keys/test-jwks.json");
const KID: &str = "test-google-key";
const AUDIENCE: &str = "https://devgem-build.example.run.app/pubsub/build";
const ACCOUNT: &str = "pubsub-push@devgem-test.iam.gserviceaccount.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> serde_json::Value {
    json!({
        "aud": AUDIENCE,
        "azp": "113774264463038321964",
        "email": ACCOUNT,
        "email_verified": true,
        "exp": now() + 3600,
        "iat": now(),
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    })
}

fn sign(claims: &serde_json::Value, key: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_der(&pem_to_der(key)),
    )
    .unwrap()
}

/// PKCS#1 PEM to DER (jsonwebtoken's PEM parsing sits behind a feature we do not need).
fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64: String = std::str::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn static_auth() -> PushAuth {
    let keys: JwkSet = serde_json::from_str(JWKS).unwrap();
    PushAuth::new(AUDIENCE, ACCOUNT, KeySource::Static(keys))
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut c = claims();
    c[field] = value;
    c
}

#[tokio::test]
async fn a_valid_google_token_is_accepted_with_either_issuer_spelling() {
    let auth = static_auth();
    let token = sign(&claims(), GOOGLE_KEY, KID);
    let got = auth
        .verify_header(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(got.email.as_deref(), Some(ACCOUNT));
    let token = sign(&with("iss", json!("accounts.google.com")), GOOGLE_KEY, KID);
    auth.verify(&token).await.unwrap();
}

#[tokio::test]
async fn tokens_that_are_not_exactly_right_are_rejected() {
    let auth = static_auth();
    type Case = (&'static str, String, fn(&OidcError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "wrong audience",
            sign(
                &with("aud", json!("https://evil.example/pubsub/build")),
                GOOGLE_KEY,
                KID,
            ),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "wrong issuer",
            sign(&with("iss", json!("https://evil.example")), GOOGLE_KEY, KID),
            |e| matches!(e, OidcError::WrongIssuer),
        ),
        (
            "expired beyond the leeway",
            sign(&with("exp", json!(now() - 3600)), GOOGLE_KEY, KID),
            |e| matches!(e, OidcError::Expired),
        ),
        (
            "signed by another key under Google's kid",
            sign(&claims(), OTHER_KEY, KID),
            |e| matches!(e, OidcError::BadSignature),
        ),
        (
            "unknown key id",
            sign(&claims(), OTHER_KEY, "someone-else"),
            |e| matches!(e, OidcError::UnknownKey(_)),
        ),
        (
            "wrong email",
            sign(
                &with("email", json!("mallory@evil.iam.gserviceaccount.com")),
                GOOGLE_KEY,
                KID,
            ),
            |e| matches!(e, OidcError::WrongEmail(_)),
        ),
        (
            "unverified email",
            sign(&with("email_verified", json!(false)), GOOGLE_KEY, KID),
            |e| matches!(e, OidcError::EmailNotVerified),
        ),
        (
            "Cloud Run's stripped signature",
            {
                let t = sign(&claims(), GOOGLE_KEY, KID);
                let (head, _) = t.rsplit_once('.').unwrap();
                format!("{head}.SIGNATURE_REMOVED_BY_GOOGLE")
            },
            |e| {
                matches!(
                    e,
                    OidcError::BadSignature | OidcError::Invalid(_) | OidcError::Malformed(_)
                )
            },
        ),
    ];
    for (name, token, expected) in cases {
        let err = auth.verify(&token).await.expect_err(name);
        assert!(expected(&err), "{name}: got {err:?}");
        assert!(!err.is_unavailable(), "{name}");
    }
}

#[tokio::test]
async fn an_hs256_token_is_rejected_before_any_key_lookup() {
    let auth = static_auth();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.into());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"guess")).unwrap();
    assert!(matches!(
        auth.verify(&token).await,
        Err(OidcError::WrongAlgorithm(_))
    ));
}

/// Serves the JWKS over HTTP and counts fetches.
async fn serve_jwks(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/v3/certs", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("cache-control", "public, max-age=20000")
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(body.as_bytes())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn keys_from_a_url_are_fetched_once_and_cached() {
    let (url, hits) = serve_jwks(JWKS).await;
    let auth = PushAuth::new(AUDIENCE, ACCOUNT, KeySource::Url(url));
    for _ in 0..3 {
        auth.verify(&sign(&claims(), GOOGLE_KEY, KID))
            .await
            .unwrap();
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // An unknown kid right after a fetch does not hammer the endpoint.
    let err = auth
        .verify(&sign(&claims(), OTHER_KEY, "rotated"))
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::UnknownKey(_)), "{err:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_key_endpoint_is_our_fault_not_the_callers() {
    let auth = PushAuth::new(
        AUDIENCE,
        ACCOUNT,
        KeySource::Url("http://127.0.0.1:9/certs".into()),
    );
    let err = auth
        .verify(&sign(&claims(), GOOGLE_KEY, KID))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}
