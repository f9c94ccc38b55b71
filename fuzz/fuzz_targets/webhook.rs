//! The GitHub webhook's decoder: the signature check over hostile headers, and the push and
//! pull_request payloads behind a valid signature (the fuzzer cannot forge an HMAC, so half
//! the inputs are signed with the secret to reach the parser).

#![no_main]

#[path = "refusal.rs"]
mod refusal;

use devgem_fn_chat::github::{WebhookEvent, decode_webhook};
use hmac::{KeyInit, Mac};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let event = ["push", "pull_request", "ping", "issues"][usize::from(selector & 3)];
    let (signature, body) = if selector & 4 == 0 {
        (Some(sign(rest)), rest)
    } else {
        // The header is the input up to the first newline, the body the rest.
        let cut = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let header = String::from_utf8_lossy(&rest[..cut]).into_owned();
        (Some(header), rest.get(cut + 1..).unwrap_or_default())
    };
    match decode_webhook(SECRET, event, signature.as_deref(), body) {
        Ok(WebhookEvent::Push(_) | WebhookEvent::PullRequest(_)) => {
            assert!(selector & 4 == 0 || signature.as_deref() == Some(sign(body).as_str()));
        }
        Ok(_) => {}
        Err(res) => refusal::assert_refusal(res),
    }
});
