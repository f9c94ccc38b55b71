//! HTTP plumbing shared by every function: a server on hyper 1 with graceful shutdown, JSON
//! request and response helpers with one error shape, and Server-Sent Event responses.
//!
//! Every error a client sees has the shape
//! `{"error": {"code": "not_found", "message": "...", "hint": "..."}}`.

// Handlers return `Result<_, Response>` so `?` answers the client early; the error is the
// response itself, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use futures::{Stream, StreamExt, future::BoxFuture};
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub type Request = hyper::Request<Incoming>;
pub type Body = UnsyncBoxBody<Bytes, Infallible>;
pub type Response = hyper::Response<Body>;

/// What serves requests: a plain async function of the request.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting and waits
/// (up to `grace`) for requests in flight. Open streams are cut at the deadline.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connections = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let handler = handler.clone();
                let service = hyper::service::service_fn(move |req: Request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    // HTTP/1.1 with upgrades, so WebSocket routes can take the connection over.
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the grace period; closing them");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    let mut res = hyper::Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A plain text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut res = hyper::Response::new(full(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The one error shape every function answers with.
pub fn error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    hint: Option<String>,
) -> Response {
    let mut body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    if let Some(hint) = hint {
        body["error"]["hint"] = serde_json::Value::String(hint);
    }
    json(status, &body)
}

/// Reads a JSON body of at most `limit` bytes into `T`, or answers with a 4xx that says why.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request,
    limit: usize,
) -> Result<T, Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON",
            Some("send Content-Type: application/json".into()),
        ));
    }
    let bytes = read_body(req, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON for this request: {e}"),
            None,
        )
    })
}

/// Reads a body of at most `limit` bytes: 413 when it is larger, 400 when it was cut off.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, Response> {
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
            None,
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "incomplete_body",
            format!("the body was cut off before its end: {e}"),
            Some("send the whole body, as long as its Content-Length says".into()),
        )),
    }
}

/// One Server-Sent Event.
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    fn encode(&self) -> Bytes {
        let mut out = String::new();
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {id}\n"));
        }
        if let Some(event) = &self.event {
            out.push_str(&format!("event: {event}\n"));
        }
        for line in self.data.lines() {
            out.push_str(&format!("data: {line}\n"));
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// A `text/event-stream` response of `events`, with a comment every `heartbeat` so proxies
/// (and Cloud Run) keep the connection open while nothing happens.
pub fn sse<S>(events: S, heartbeat: Duration) -> Response
where
    S: Stream<Item = SseEvent> + Send + 'static,
{
    let pings = futures::stream::unfold((), move |_| async move {
        tokio::time::sleep(heartbeat).await;
        Some((Bytes::from_static(b": ping\n\n"), ()))
    });
    let events = events.map(|e| e.encode());
    // The stream ends when the events end; the heartbeat only fills the gaps.
    let merged = futures::stream::select(
        events
            .map(Some)
            .chain(futures::stream::once(async { None })),
        pings.map(Some),
    )
    .take_while(|item| futures::future::ready(item.is_some()))
    .filter_map(|item| async move { item.map(|b| Ok::<_, Infallible>(Frame::data(b))) });
    let mut res = hyper::Response::new(BodyExt::boxed_unsync(StreamBody::new(merged)));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
