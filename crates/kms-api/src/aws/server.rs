//! The HTTP/1.1 server of the AWS endpoint (hyper 1): accepts connections until shutdown, reads
//! each body within [`MAX_BODY_BYTES`] and [`BODY_TIMEOUT`], answers with the AWS JSON headers
//! (`Content-Type`, `x-amzn-RequestId`, and `x-amzn-ErrorType` on errors), and on shutdown lets
//! in-flight requests finish for at most the grace period.

use super::endpoint::{self, Answer, Backend, CONTENT_TYPE, Endpoint, Incoming, MAX_BODY_BYTES, Refusal};
use super::error::AwsError;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to send its headers, and then its body.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `endpoint` on `listener` (over TLS when `tls` is set) until `shutdown` completes, then
/// waits up to `grace` for in-flight requests.
pub async fn serve<B: Backend>(
    endpoint: Endpoint<B>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> std::io::Result<()> {
    let endpoint = Arc::new(endpoint);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accepting an AWS endpoint connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let endpoint = endpoint.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(endpoint, stream, peer, watcher).await,
                        Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => serve_connection(endpoint, stream, peer, watcher).await,
                            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "AWS endpoint TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "AWS endpoint TLS handshake timed out"),
                        },
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "AWS endpoint connections still open after the grace period; closing them");
    }
    Ok(())
}

/// Serves HTTP/1.1 on one accepted (and, with TLS, handshaken) connection.
async fn serve_connection<B, S>(endpoint: Arc<Endpoint<B>>, stream: S, peer: SocketAddr, watcher: Watcher)
where
    B: Backend,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(respond(&endpoint, request, peer).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(error = %err, "AWS endpoint connection ended with an error");
    }
}

async fn respond<B: Backend>(
    endpoint: &Endpoint<B>,
    request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let incoming = Incoming {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        peer: Some(peer),
    };
    let answer = match read_body(&incoming, body).await {
        Ok(bytes) => endpoint.handle(&incoming, &bytes, &request_id).await,
        Err(err) => {
            tracing::info!(
                request_id,
                status = err.status,
                error = err.code,
                "aws request refused before authentication"
            );
            let operation = endpoint::target_operation(incoming.headers);
            let refusal = Refusal {
                request_id: &request_id,
                operation,
                principal: None,
                source: incoming.peer,
                code: err.code,
            };
            endpoint.backend.refused(refusal);
            Answer::from(err)
        }
    };
    let mut response = Response::builder()
        .status(answer.status)
        .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
        .header("x-amzn-RequestId", &request_id);
    if let Some(code) = answer.error {
        response = response.header("x-amzn-ErrorType", code);
    }
    response.body(Full::new(Bytes::from(answer.body))).unwrap_or_else(|_| {
        // Unreachable: the status is one of ours and every header value is ASCII.
        let mut fallback =
            Response::new(Full::new(Bytes::from_static(b"{\"__type\":\"KMSInternalException\"}")));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// The body, refused early when the route is wrong or the declared or actual size is too large.
async fn read_body(incoming: &Incoming<'_>, body: hyper::body::Incoming) -> Result<Bytes, AwsError> {
    endpoint::check_route(incoming)?;
    if endpoint::declared_too_large(incoming.headers) {
        return Err(AwsError::too_large(MAX_BODY_BYTES));
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Err(_) => {
            Err(AwsError::new(408, "RequestTimeoutException", "The request body did not arrive in time"))
        }
        Ok(Err(err)) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(AwsError::too_large(MAX_BODY_BYTES))
        }
        Ok(Err(_)) => Err(AwsError::serialization("The request body could not be read")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
