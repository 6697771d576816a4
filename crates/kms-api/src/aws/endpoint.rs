//! One HTTP request of the AWS endpoint, from bytes to bytes: method and path, body size,
//! SigV4, `X-Amz-Target`, JSON, then the [`Backend`]. Nothing reaches the backend unless the
//! signature verified. Logs carry the request id, operation, principal and outcome, never a body.

use super::credentials::Credentials;
use super::error::AwsError;
use super::sigv4::{self, SignedRequest};
use crate::caller::Caller;
use hyper::body::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::Value as Json;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest request body accepted (the gRPC front end's limit).
pub const MAX_BODY_BYTES: usize = crate::grpc::MAX_REQUEST_BYTES;
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";

/// What runs an authenticated operation: [`Kms`](crate::Kms) in the server, a recorder in tests.
pub trait Backend: Send + Sync + 'static {
    fn call(
        &self,
        caller: Caller,
        operation: String,
        input: Json,
    ) -> impl Future<Output = Result<Json, AwsError>> + Send;

    /// Records a request refused before [`call`](Self::call) (the audit log); by default nothing.
    fn refused(&self, _refusal: Refusal<'_>) {}
}

/// A request refused before it reached the backend, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub request_id: &'a str,
    /// The operation `X-Amz-Target` names (as sent; may be empty or not an operation).
    pub operation: &'a str,
    /// The principal, when the signature verified.
    pub principal: Option<&'a str>,
    pub source: Option<std::net::SocketAddr>,
    /// The AWS error code it was answered with.
    pub code: &'static str,
}

/// The operation the `X-Amz-Target` header names, as sent (empty without one).
pub fn target_operation(headers: &HeaderMap) -> &str {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    target.strip_prefix(TARGET_PREFIX).unwrap_or(target)
}

/// The answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The AWS error code, for the `x-amzn-ErrorType` header and the log.
    pub error: Option<&'static str>,
}

impl From<AwsError> for Answer {
    fn from(err: AwsError) -> Self {
        Self { status: err.status, body: err.body(), error: Some(err.code) }
    }
}

/// The request as it arrived, before its body was read.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The client's address, for audit.
    pub peer: Option<std::net::SocketAddr>,
}

/// The endpoint's settings.
pub struct Endpoint<B> {
    pub backend: B,
    pub credentials: Credentials,
    pub region: String,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Whether the declared Content-Length already exceeds the limit (checked before reading).
pub fn declared_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
}

/// Method and path, checked before the body is read.
pub fn check_route(request: &Incoming<'_>) -> Result<(), AwsError> {
    if request.method != Method::POST {
        return Err(AwsError::new(405, "UnknownOperationException", "The AWS KMS API accepts POST only"));
    }
    if request.path != "/" {
        return Err(AwsError::new(404, "UnknownOperationException", "The AWS KMS API is served at /"));
    }
    Ok(())
}

impl<B: Backend> Endpoint<B> {
    /// Handles a request whose body has been read (and was within the limit).
    pub async fn handle(&self, request: &Incoming<'_>, body: &Bytes, request_id: &str) -> Answer {
        self.handle_at(request, body, request_id, unix_now()).await
    }

    pub(crate) async fn handle_at(
        &self,
        request: &Incoming<'_>,
        body: &Bytes,
        request_id: &str,
        now: i64,
    ) -> Answer {
        let started = std::time::Instant::now();
        let operation = target_operation(request.headers).to_string();
        let (answer, principal) = match self.run(request, body, request_id, now).await {
            Ok((json, principal)) => {
                (Answer { status: 200, body: json.to_string().into_bytes(), error: None }, principal)
            }
            Err((err, principal)) => (Answer::from(err), principal),
        };
        if let Some(metrics) = crate::metrics::installed() {
            metrics.record_aws(&operation, answer.error, started.elapsed());
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let principal = principal.as_deref().unwrap_or("-");
        let error = answer.error.unwrap_or("");
        if answer.status >= 500 {
            tracing::warn!(
                request_id,
                operation,
                principal,
                status = answer.status,
                error,
                elapsed_ms,
                "aws request failed on the server side"
            );
        } else {
            tracing::info!(
                request_id,
                operation,
                principal,
                status = answer.status,
                error,
                elapsed_ms,
                "aws request"
            );
        }
        answer
    }

    async fn run(
        &self,
        request: &Incoming<'_>,
        body: &Bytes,
        request_id: &str,
        now: i64,
    ) -> Result<(Json, Option<String>), (AwsError, Option<String>)> {
        let (caller, operation, input) = match self.prepare(request, body, request_id, now) {
            Ok(prepared) => prepared,
            Err((err, principal)) => {
                let operation = target_operation(request.headers);
                let principal = principal.as_deref();
                let source = request.peer;
                self.backend.refused(Refusal { request_id, operation, principal, source, code: err.code });
                return Err((err, principal.map(str::to_string)));
            }
        };
        let principal = Some(caller.principal.clone());
        match self.backend.call(caller, operation, input).await {
            Ok(json) => Ok((json, principal)),
            Err(e) => Err((e, principal)),
        }
    }

    /// Everything before the backend: route, size, SigV4, target and JSON.
    fn prepare(
        &self,
        request: &Incoming<'_>,
        body: &Bytes,
        request_id: &str,
        now: i64,
    ) -> Result<(Caller, String, Json), (AwsError, Option<String>)> {
        check_route(request).map_err(|e| (e, None))?;
        if body.len() > MAX_BODY_BYTES {
            return Err((AwsError::too_large(MAX_BODY_BYTES), None));
        }
        let signed = SignedRequest {
            method: request.method.as_str(),
            path: request.path,
            query: request.query,
            headers: request.headers,
            body,
        };
        let verified = sigv4::verify(&signed, &self.credentials, &self.region, now).map_err(|e| (e, None))?;
        let principal = Some(verified.principal.clone());
        let fail = |e: AwsError| (e, principal.clone());

        let target = request
            .headers
            .get("x-amz-target")
            .ok_or_else(|| fail(AwsError::unknown_operation("Missing the X-Amz-Target header")))?
            .to_str()
            .map_err(|_| fail(AwsError::unknown_operation("X-Amz-Target is not valid text")))?;
        let operation = target.strip_prefix(TARGET_PREFIX).filter(|op| !op.is_empty()).ok_or_else(|| {
            fail(AwsError::unknown_operation(format!(
                "Unknown target '{target}'; expected {TARGET_PREFIX}<Operation>"
            )))
        })?;
        let input: Json = if body.iter().all(u8::is_ascii_whitespace) {
            Json::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|e| {
                fail(AwsError::serialization(format!("The request body is not valid JSON: {e}")))
            })?
        };
        if !input.is_object() {
            return Err(fail(AwsError::serialization("The request body must be a JSON object")));
        }
        let caller = Caller::new(verified.principal).with_source(request.peer).with_request_id(request_id);
        Ok((caller, operation.to_string(), input))
    }
}
