//! The AWS-compatible endpoint: AWS JSON 1.1 (`POST /`, `X-Amz-Target: TrentService.<Operation>`)
//! with SigV4 authentication, so the AWS CLI, boto3, the AWS SDKs and the AWS Encryption SDK work
//! against kms unchanged (docs/aws-compatibility.md).
//!
//! It is a thin adapter like the gRPC front end: every operation runs through the same [`Kms`]
//! method with the kms.v1 request, converted from JSON by one reflection-based [`codec`].
//!
//! - [`names`]: AWS member and enum names <-> kms.v1 names
//! - [`codec`]: JSON <-> kms.v1 messages
//! - [`operations`]: the operation list and dispatch onto [`Kms`]
//! - [`sigv4`], [`amz_date`], [`credentials`]: authentication
//! - [`error`]: AWS error bodies and statuses
//! - [`endpoint`]: one request, bytes in, bytes out; [`server`]: the hyper server

pub mod amz_date;
pub mod codec;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod names;
pub mod operations;
pub mod server;
pub mod sigv4;

#[cfg(test)]
mod tests;

pub use codec::Codec;
pub use credentials::{Credentials, DEV_ACCESS_KEY_ID, DEV_PRINCIPAL, DEV_SECRET_ACCESS_KEY};
pub use error::AwsError;

use crate::caller::Caller;
use crate::kms::Kms;
use endpoint::{Backend, Endpoint};
use serde_json::Value as Json;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the endpoint needs besides the service.
#[derive(Debug)]
pub struct AwsConfig {
    /// The region requests must be signed for (the region in this node's ARNs).
    pub region: String,
    pub credentials: Credentials,
    /// Serve HTTPS with this configuration; plain HTTP when absent (loopback and dev only).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// [`Kms`] as the endpoint's backend.
struct KmsBackend {
    kms: Kms,
    codec: Codec,
}

impl Backend for KmsBackend {
    async fn call(&self, caller: Caller, operation: String, input: Json) -> Result<Json, AwsError> {
        operations::dispatch(&self.kms, &self.codec, &caller, &operation, &input).await
    }

    fn refused(&self, refusal: endpoint::Refusal<'_>) {
        let principal = refusal.principal.unwrap_or(crate::audit::UNAUTHENTICATED);
        let caller = Caller::new(principal).with_source(refusal.source).with_request_id(refusal.request_id);
        self.kms.audit_refused(crate::metrics::Api::Aws, refusal.operation, &caller, refusal.code);
    }
}

/// Serves the AWS endpoint on `listener` until `shutdown` completes, then lets in-flight
/// requests finish for at most `grace`.
pub async fn serve(
    kms: Kms,
    config: AwsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> Result<(), String> {
    let codec = Codec::new()?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, region = %config.region, access_keys = config.credentials.len(),
        "kmsd is serving the AWS KMS JSON 1.1 API (SigV4)");
    let endpoint = Endpoint {
        backend: KmsBackend { kms, codec },
        credentials: config.credentials,
        region: config.region,
    };
    let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
    server::serve(endpoint, listener, tls, shutdown, grace)
        .await
        .map_err(|e| format!("serving the AWS endpoint: {e}"))
}
