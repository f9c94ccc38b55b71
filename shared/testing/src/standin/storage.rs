//! A stand-in for the Cloud Storage JSON API's uploads (contracts §10): multipart and media
//! uploads into buckets that exist, the object resource with its `generation` (a string),
//! `ifGenerationMatch=0` honoured, and reads of what was stored.

use super::{Api, Request, Response};
use bytes::Bytes;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The objects stored, by bucket and name.
pub struct StorageStandin {
    buckets: BTreeSet<String>,
    objects: Mutex<BTreeMap<(String, String), Stored>>,
    next_generation: Mutex<i64>,
}

#[derive(Clone)]
struct Stored {
    generation: i64,
    content_type: String,
    bytes: Bytes,
}

impl StorageStandin {
    /// Buckets that exist; an upload to any other is answered 404, as Google does.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(buckets: I) -> Self {
        Self {
            buckets: buckets.into_iter().map(Into::into).collect(),
            objects: Mutex::new(BTreeMap::new()),
            next_generation: Mutex::new(1_714_557_601_234_567),
        }
    }

    /// The bytes and generation of an object, if it was uploaded.
    pub fn object(&self, bucket: &str, name: &str) -> Option<(i64, Bytes)> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), name.to_string()))
            .map(|o| (o.generation, o.bytes.clone()))
    }

    /// Every object as `(bucket, name, generation)`.
    pub fn objects(&self) -> Vec<(String, String, i64)> {
        self.objects
            .lock()
            .unwrap()
            .iter()
            .map(|((b, n), o)| (b.clone(), n.clone(), o.generation))
            .collect()
    }

    fn upload(&self, request: &Request, bucket: &str) -> Response {
        if !self.buckets.contains(bucket) {
            return Response::google_error(
                404,
                "NOT_FOUND",
                "The specified bucket does not exist.",
            );
        }
        let upload_type = request.query.get("uploadType").map(String::as_str);
        let (metadata, bytes) = match upload_type {
            Some("multipart") => match multipart(request) {
                Ok(parts) => parts,
                Err(problem) => return invalid(&format!("multipart upload: {problem}")),
            },
            Some("media") => (json!({}), request.body.clone()),
            other => return invalid(&format!("uploadType {other:?} is not served here")),
        };
        let name = match (request.query.get("name"), metadata["name"].as_str()) {
            (Some(q), Some(m)) if q != m => {
                return invalid(&format!(
                    "name {q:?} in the query but {m:?} in the metadata"
                ));
            }
            (Some(q), _) => q.clone(),
            (None, Some(m)) => m.to_string(),
            (None, None) => return invalid("the object has no name"),
        };
        let crc = crc32c(&bytes);
        if let Some(sent) = metadata["crc32c"].as_str()
            && sent != base64(&crc.to_be_bytes())
        {
            return Response::google_error(
                400,
                "INVALID_ARGUMENT",
                &format!("Provided CRC32C \"{sent}\" doesn't match calculated CRC32C"),
            );
        }
        let key = (bucket.to_string(), name.clone());
        let mut objects = self.objects.lock().unwrap();
        if request.query.get("ifGenerationMatch").map(String::as_str) == Some("0")
            && objects.contains_key(&key)
        {
            return Response::google_error(
                412,
                "FAILED_PRECONDITION",
                "At least one of the pre-conditions you specified did not hold.",
            );
        }
        let generation = {
            let mut next = self.next_generation.lock().unwrap();
            *next += 1;
            *next
        };
        let content_type = metadata["contentType"]
            .as_str()
            .or_else(|| {
                request
                    .header("content-type")
                    .filter(|_| upload_type == Some("media"))
            })
            .unwrap_or("application/octet-stream")
            .to_string();
        let stored = Stored {
            generation,
            content_type,
            bytes,
        };
        let resource = object_resource(bucket, &name, &stored);
        objects.insert(key, stored);
        Response::json(200, resource)
    }
}

impl Api for StorageStandin {
    fn handle(&self, request: &Request) -> Option<Response> {
        let segments = request.segments();
        match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["upload", "storage", "v1", "b", bucket, "o"]) => {
                Some(self.upload(request, bucket))
            }
            ("GET", ["storage", "v1", "b", bucket, "o", name @ ..]) if !name.is_empty() => {
                let name = name.join("/");
                let objects = self.objects.lock().unwrap();
                let Some(stored) = objects.get(&(bucket.to_string(), name.clone())) else {
                    return Some(Response::google_error(404, "NOT_FOUND", "No such object"));
                };
                if request.query.get("alt").map(String::as_str) == Some("media") {
                    let mut response = Response::text(200, "");
                    response.headers = vec![("content-type".into(), stored.content_type.clone())];
                    response.body = stored.bytes.clone();
                    return Some(response);
                }
                Some(Response::json(200, object_resource(bucket, &name, stored)))
            }
            _ => None,
        }
    }
}

fn invalid(problem: &str) -> Response {
    Response::google_error(400, "INVALID_ARGUMENT", &format!("stand-in: {problem}"))
}

/// The object resource every upload answers with (contracts §10): int64s as strings.
fn object_resource(bucket: &str, name: &str, stored: &Stored) -> serde_json::Value {
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/{}", stored.generation),
        "name": name,
        "bucket": bucket,
        "generation": stored.generation.to_string(),
        "metageneration": "1",
        "contentType": stored.content_type,
        "size": stored.bytes.len().to_string(),
        "crc32c": base64(&crc32c(&stored.bytes).to_be_bytes()),
        "storageClass": "STANDARD",
        "timeCreated": "2025-05-01T12:00:01.234Z",
        "updated": "2025-05-01T12:00:01.234Z",
    })
}

/// The metadata (JSON) and media parts of a `multipart/related` body (RFC 2387).
fn multipart(request: &Request) -> Result<(serde_json::Value, Bytes), String> {
    let content_type = request.header("content-type").unwrap_or_default();
    if !content_type.starts_with("multipart/related") {
        return Err(format!(
            "Content-Type is {content_type:?}, not multipart/related"
        ));
    }
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .ok_or("no boundary")?;
    let delimiter = format!("--{boundary}");
    let body = &request.body[..];
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&body[at..], delimiter.as_bytes()) {
        starts.push(at + found);
        at += found + delimiter.len();
    }
    let mut parts = Vec::new();
    for pair in starts.windows(2) {
        let part = &body[pair[0] + delimiter.len()..pair[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n").ok_or("a part without headers")?;
        parts.push(Bytes::copy_from_slice(&part[split + 4..]));
    }
    if parts.len() < 2 {
        return Err(format!("{} parts, not metadata and media", parts.len()));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&parts[0]).map_err(|e| format!("the metadata part: {e}"))?;
    Ok((metadata, parts[1].clone()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CRC32C (Castagnoli), as Cloud Storage reports it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Standard base64 with padding (Google's JSON `bytes`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_and_base64_match_known_values() {
        // RFC 3720's test vector: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
        assert_eq!(base64(b"h"), "aA==");
    }
}
