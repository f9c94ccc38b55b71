//! What every target asserts of a refusal: a 4xx whose body is a JSON error with a code and a
//! message (never a 5xx, never a panic).

use http_body_util::BodyExt;

pub fn assert_refusal(res: devgem_http::Response) {
    let status = res.status();
    assert!(status.is_client_error(), "a decoder answered {status}");
    let body = futures::executor::block_on(res.into_body().collect())
        .expect("the body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error body");
    assert!(json["error"]["code"].is_string(), "{json}");
    assert!(json["error"]["message"].is_string(), "{json}");
}
