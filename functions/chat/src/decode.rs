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
}

impl ApiBody {
    pub const ALL: [ApiBody; 5] = [
        ApiBody::Create,
        ApiBody::Rollback,
        ApiBody::Env,
        ApiBody::Domain,
        ApiBody::Chat,
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
    }
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
