//! The API's JSON body decoders (create, rollback, env, domain, chat, link, `/api/me` and the
//! WebSocket's messages): the first byte picks the body, the rest is what the client sent.

#![no_main]

#[path = "refusal.rs"]
mod refusal;

use devgem_fn_chat::decode::{ApiBody, decode_api_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = ApiBody::ALL[usize::from(selector) % ApiBody::ALL.len()];
    if let Err(res) = decode_api_body(kind, body) {
        refusal::assert_refusal(res);
    }
});
