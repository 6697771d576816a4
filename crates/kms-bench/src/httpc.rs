//! A minimal HTTP/1.1 client over one keep-alive connection (hyper's connection-level client),
//! for the AWS JSON and OpenBao drivers: one connection per load client, like the gRPC driver's
//! one HTTP/2 connection per client. Loopback only; every request is bounded by a timeout.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

pub struct Conn {
    /// `host:port`, also the Host header.
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

/// A response: status and the whole body.
pub struct Answer {
    pub status: http::StatusCode,
    pub body: Bytes,
}

impl Conn {
    pub async fn connect(host: &str) -> Result<Self> {
        Ok(Self { host: host.to_string(), sender: handshake(host).await? })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends one request and reads the whole answer; reconnects first if the server closed the
    /// connection since the last one. Errors are short names for the failure tables.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        if self.sender.is_closed() {
            self.sender = handshake(&self.host).await.map_err(|e| format!("reconnect: {e:#}"))?;
        }
        let mut request = http::Request::builder().method(method).uri(path).header("host", &self.host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            self.sender.ready().await.map_err(|e| format!("connection: {e}"))?;
            let response = self.sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| "timeout".to_string())?
    }

    /// POSTs a JSON document; a non-2xx answer is an error named by its status.
    pub async fn post_json(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let answer = self.send(http::Method::POST, path, &all, Bytes::from(body.to_string())).await?;
        json_or_error(&answer)
    }
}

/// The JSON body of a 2xx answer (null when empty), or an error named by the status.
pub fn json_or_error(answer: &Answer) -> Result<serde_json::Value, String> {
    if !answer.status.is_success() {
        return Err(format!("HTTP {}", answer.status.as_u16()));
    }
    if answer.body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&answer.body).map_err(|e| format!("bad JSON: {e}"))
}

/// A TCP connection to `host` (`host:port`) for one load client: small requests and answers,
/// so Nagle must not hold them back.
pub async fn tcp(host: &str) -> Result<tokio::net::TcpStream> {
    let stream =
        tokio::net::TcpStream::connect(host).await.with_context(|| format!("connecting to {host}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn handshake(host: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tcp(host).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP/1.1 handshake with {host}"))?;
    // The connection task ends when the sender is dropped or the server closes the connection.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
