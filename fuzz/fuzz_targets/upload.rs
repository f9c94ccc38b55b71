//! The upload decoder: a multipart body (the `deployment` JSON part and the `source` part)
//! and the gzipped tar in it, unpacked into a scratch folder under small limits. Odd first
//! bytes send the input as the whole multipart body; even ones wrap it, well-formed, as the
//! `source` part, so the fuzzer reaches the archive unpacker directly.

#![no_main]

#[path = "refusal.rs"]
mod refusal;

use devgem_fn_chat::decode::decode_upload;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPE: &str = "multipart/form-data; boundary=FUZZ";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let body = if selector & 1 == 1 {
        rest.to_vec()
    } else {
        let mut body = b"--FUZZ\r\nContent-Disposition: form-data; name=\"deployment\"\r\n\r\n{\"source\": \"app\"}\r\n--FUZZ\r\nContent-Disposition: form-data; name=\"source\"; filename=\"app.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n".to_vec();
        body.extend_from_slice(rest);
        body.extend_from_slice(b"\r\n--FUZZ--\r\n");
        body
    };
    let limits = devgem_archive::Limits {
        max_unpacked_bytes: 1 << 20,
        max_entries: 1000,
    };
    let result = futures::executor::block_on(decode_upload(
        CONTENT_TYPE,
        bytes::Bytes::from(body),
        &limits,
    ));
    if let Err(res) = result {
        refusal::assert_refusal(res);
    }
});
