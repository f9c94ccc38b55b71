//! The API's request decoders as functions of the bytes a client sent, for the cargo-fuzz
//! targets in `fuzz/` and their regression tests: whatever the input, a decoder gives a value
//! or a 4xx with a JSON error, never a panic or a 5xx. They decode into the same types, with
//! the same checks, as the handlers in the crate root.

use crate::{CreateBody, DomainBody, RollbackBody, app_error, bad_upload, parse_upload};
use devgem_app::release;
use devgem_http::{Response, error};
use http::StatusCode;
use serde::de::DeserializeOwned;

/// The JSON bodies of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiBody {
    /// `POST /api/deployments`.
    Create,
    /// `POST /api/deployments/{id}/rollback` (an empty body is the default).
    Rollback,
    /// `POST /api/deployments/{id}/env`.
    Env,
    /// `POST /api/deployments/{id}/domains`.
    Domain,
    /// `POST /chat`.
    Chat,
    /// `POST /api/links`.
    Link,
    /// `PATCH /api/me`.
    Me,
    /// A text message a client sends on `/ws/chat` (the socket answers a bad one with an
    /// error message rather than a status; here it is the same 400 as the bodies').
    WsMessage,
}

impl ApiBody {
    pub const ALL: [ApiBody; 8] = [
        ApiBody::Create,
        ApiBody::Rollback,
        ApiBody::Env,
        ApiBody::Domain,
        ApiBody::Chat,
        ApiBody::Link,
        ApiBody::Me,
        ApiBody::WsMessage,
    ];
}

/// What `devgem_http::read_json` answers for a body that is not the request's JSON.
fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON for this request: {e}"),
            None,
        )
    })
}

fn check_env_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), Response> {
    for name in names {
        release::check_env_name(name).map_err(app_error)?;
    }
    Ok(())
}

/// Decodes `bytes` as the body `kind`, with the checks that need no stored state (variable
/// names).
pub fn decode_api_body(kind: ApiBody, bytes: &[u8]) -> Result<(), Response> {
    match kind {
        ApiBody::Create => {
            let body: CreateBody = from_json(bytes)?;
            check_env_names(body.env.keys())
        }
        ApiBody::Rollback => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            from_json::<RollbackBody>(bytes).map(drop)
        }
        ApiBody::Env => {
            let change: release::EnvChange = from_json(bytes)?;
            check_env_names(change.set.keys().chain(&change.unset).chain(&change.secret))
        }
        ApiBody::Domain => from_json::<DomainBody>(bytes).map(drop),
        ApiBody::Chat => from_json::<crate::ChatBody>(bytes).map(drop),
        ApiBody::Link => decode_link(bytes),
        ApiBody::Me => {
            let body: crate::signin::MeBody = from_json(bytes)?;
            let mut preferences = devgem_domain::Preferences::default();
            body.preferences.apply(&mut preferences);
            crate::signin::check_preferences(&preferences)
        }
        ApiBody::WsMessage => from_json::<crate::ws::ClientMessage>(bytes).map(drop),
    }
}

/// `POST /api/links`'s body, field for field as the handler's `LinkBody` in github.rs reads
/// it, with the checks `links::create_link` makes before it stores anything.
fn decode_link(bytes: &[u8]) -> Result<(), Response> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only to be checked
    struct LinkBody {
        repository: String,
        branch: String,
        #[serde(default)]
        service_name: Option<String>,
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
    }
    let body: LinkBody = from_json(bytes)?;
    let invalid = |e: devgem_domain::InvalidName| {
        error(StatusCode::BAD_REQUEST, "invalid_link", e.to_string(), None)
    };
    devgem_domain::RepositoryName::parse(&body.repository).map_err(invalid)?;
    if let Some(name) = &body.service_name {
        devgem_domain::ServiceName::parse(name).map_err(invalid)?;
    }
    for name in body.env.keys() {
        devgem_domain::EnvVarName::parse(name).map_err(invalid)?;
    }
    Ok(())
}

/// Decodes an upload to `POST /api/deployments`: the multipart body with `content_type`'s
/// boundary (a `deployment` JSON part and a `source` gzipped tar), the tar unpacked into a
/// scratch folder under `limits` as the handler's check does. Without a multipart boundary the
/// body is the plain JSON request.
pub async fn decode_upload(
    content_type: &str,
    body: bytes::Bytes,
    limits: &devgem_archive::Limits,
) -> Result<(), Response> {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return decode_api_body(ApiBody::Create, &body);
    };
    let (fields, archive) = parse_upload(body, boundary).await?;
    check_env_names(fields.env.keys())?;
    if archive.is_empty() {
        return Err(bad_upload("the `source` part is empty"));
    }
    devgem_app::check_upload(&archive, limits).map_err(app_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<(), Response>) -> u16 {
        result.err().map_or(200, |r| r.status().as_u16())
    }

    #[test]
    fn well_formed_bodies_decode_and_others_are_a_400() {
        assert_eq!(
            status(decode_api_body(
                ApiBody::Create,
                br#"{"source": "https://github.com/a/b", "env": {"GREETING": "hi"}}"#
            )),
            200
        );
        assert_eq!(status(decode_api_body(ApiBody::Rollback, b"  ")), 200);
        assert_eq!(
            status(decode_api_body(ApiBody::Env, br#"{"set": {"A": "1"}}"#)),
            200
        );
        for kind in ApiBody::ALL {
            for bad in [&b"{"[..], b"7", b"\xff", br#"{"nope": 1}"#] {
                assert_eq!(status(decode_api_body(kind, bad)), 400, "{kind:?} {bad:?}");
            }
        }
        assert_eq!(
            status(decode_api_body(ApiBody::Env, br#"{"set": {"PORT": "1"}}"#)),
            400
        );
    }

    #[test]
    fn link_me_and_websocket_bodies_decode_and_bad_ones_are_a_400() {
        let cases: [(ApiBody, &[u8], u16); 10] = [
            (
                ApiBody::Link,
                br#"{"repository": "acme/shop", "branch": "main"}"#,
                200,
            ),
            (
                ApiBody::Link,
                br#"{"repository": "acme", "branch": "main"}"#,
                400,
            ),
            (
                ApiBody::Link,
                br#"{"repository": "acme/shop", "branch": "main", "env": {"1X": "y"}}"#,
                400,
            ),
            (
                ApiBody::Me,
                br#"{"preferences": {"default_region": "europe-west1"}}"#,
                200,
            ),
            (
                ApiBody::Me,
                br#"{"preferences": {"default_region": null}}"#,
                200,
            ),
            (
                ApiBody::Me,
                br#"{"preferences": {"default_region": "Europe West"}}"#,
                400,
            ),
            (
                ApiBody::Me,
                br#"{"preferences": {"default_env": {"API_SECRET": "x"}}}"#,
                400,
            ),
            (ApiBody::WsMessage, br#"{"type": "ping"}"#, 200),
            (
                ApiBody::WsMessage,
                br#"{"type": "message", "text": "hi", "dry_run": true}"#,
                200,
            ),
            (ApiBody::WsMessage, br#"{"type": "shout"}"#, 400),
        ];
        for (kind, body, wanted) in cases {
            let got = status(decode_api_body(kind, body));
            assert_eq!(got, wanted, "{kind:?} {}", String::from_utf8_lossy(body));
        }
    }

    #[tokio::test]
    async fn uploads_that_are_not_multipart_with_a_gzipped_tar_are_a_400() {
        let limits = devgem_archive::Limits::default();
        let ct = "multipart/form-data; boundary=X";
        let cases: [&[u8]; 4] = [
            b"",
            b"--X\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\nnot a tar\r\n--X--\r\n",
            b"--X\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n1\r\n--X--\r\n",
            b"--X\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\n",
        ];
        for body in cases {
            let res = decode_upload(ct, bytes::Bytes::from_static(body), &limits).await;
            assert_eq!(status(res), 400, "{:?}", String::from_utf8_lossy(body));
        }
    }
}
