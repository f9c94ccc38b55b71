//! A client of a running DevGem server's HTTP API, for the CLI's `--server` mode.

use anyhow::{Context, bail};
use devgem_domain::ProgressEvent;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("the server address {base:?} must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { base, token, http })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request and decodes a JSON answer, turning the server's error shape into a
    /// readable error.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// Posts `fields` (JSON) and a source archive as `multipart/form-data`.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: serde_json::Value,
        archive: Vec<u8>,
    ) -> anyhow::Result<T> {
        let form = reqwest::multipart::Form::new()
            .part(
                "deployment",
                reqwest::multipart::Part::text(fields.to_string()).mime_str("application/json")?,
            )
            .part(
                "source",
                reqwest::multipart::Part::bytes(archive)
                    .file_name("source.tar.gz")
                    .mime_str("application/gzip")?,
            );
        let req = self.request(reqwest::Method::POST, path).multipart(form);
        self.send(req).await
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach the DevGem server at {}", self.base))?;
        let status = res.status();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            let detail: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = detail["error"]["message"].as_str().unwrap_or("no detail");
            let hint = detail["error"]["hint"]
                .as_str()
                .map(|h| format!(" (fix: {h})"))
                .unwrap_or_default();
            bail!("the server answered {status}: {message}{hint}");
        }
        serde_json::from_slice(&bytes).context("the server's answer is not the JSON expected")
    }

    /// Follows a deployment's progress stream, reconnecting with `Last-Event-ID` when the
    /// connection drops, until the final event.
    pub async fn follow(
        &self,
        id: &str,
        mut on_event: impl FnMut(&ProgressEvent),
    ) -> anyhow::Result<()> {
        let mut last = 0u64;
        let mut failures = 0;
        loop {
            let res = self
                .request(
                    reqwest::Method::GET,
                    &format!("/api/deployments/{id}/events"),
                )
                .header("Last-Event-ID", last.to_string())
                .header("Accept", "text/event-stream")
                .send()
                .await;
            let res = match res {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => bail!("the server answered {} to the progress stream", r.status()),
                Err(e) => {
                    failures += 1;
                    if failures > 10 {
                        return Err(e).context("lost the progress stream");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut body = res.bytes_stream();
            let mut buffer = String::new();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let data: String = frame
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect::<Vec<_>>()
                        .join("\n");
                    if data.is_empty() {
                        continue;
                    }
                    let event: ProgressEvent = serde_json::from_str(&data)
                        .context("the progress stream sent an event that is not valid")?;
                    // Seen already, or progress the server computed while a step ticks (it
                    // repeats the last stored seq): the renderer computes that itself.
                    if event.seq <= last {
                        continue;
                    }
                    last = event.seq;
                    failures = 0;
                    on_event(&event);
                    if event.is_final() {
                        return Ok(());
                    }
                }
            }
            // The stream ended without the final event: a finished deployment whose final
            // event we already saw ends here; otherwise reconnect.
            failures += 1;
            if failures > 10 {
                bail!("the progress stream keeps ending early");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
