//! The AWS-compatible endpoint: AWS JSON 1.1 (`POST /`, `X-Amz-Target: TrentService.<Operation>`)
//! with SigV4 authentication, so the AWS CLI, boto3, the AWS SDKs and the AWS Encryption SDK work
//! against kms unchanged (docs/aws-compatibility.md).
//!
//! It is a thin adapter like the gRPC front end: every operation runs through the same [`Kms`]
//! method with the kms.v1 request, converted from JSON by one reflection-based [`codec`].
//!
//! - [`kms_aws_wire`]: the wire protocol itself (names, the JSON codec, SigV4, error bodies),
//!   re-exported here under its module names
//! - [`operations`]: the operation list and dispatch onto [`Kms`]
//! - [`endpoint`]: one request, bytes in, bytes out; [`server`]: the hyper server

pub mod endpoint;
pub mod operations;
pub mod server;
pub use kms_aws_wire::{amz_date, codec, credentials, error, names, sigv4};

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
    /// The longest an operation may run; then it is answered with DependencyTimeoutException
    /// (like a gRPC deadline, a write cut off this way may still commit).
    pub request_timeout: Duration,
}

/// [`Kms`] as the endpoint's backend.
struct KmsBackend {
    kms: Kms,
    codec: Codec,
    request_timeout: Duration,
}

impl Backend for KmsBackend {
    async fn call(&self, caller: Caller, operation: String, input: Json) -> Result<Json, AwsError> {
        // SigV4 verified: the principal is known, its rate limit applies (refusals are audited).
        self.kms.admit(crate::metrics::Api::Aws, &operation, &caller)?;
        let run = operations::dispatch(&self.kms, &self.codec, &caller, &operation, &input);
        tokio::time::timeout(self.request_timeout, run).await.unwrap_or_else(|_| {
            Err(AwsError::from(kms_core::KmsError::dependency_timeout(format!(
                "{operation} did not complete within {} s; retry it (a change it made may still take effect)",
                self.request_timeout.as_secs_f64()
            ))))
        })
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
        backend: KmsBackend { kms, codec, request_timeout: config.request_timeout },
        credentials: config.credentials,
        region: config.region,
    };
    let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
    server::serve(endpoint, listener, tls, shutdown, grace)
        .await
        .map_err(|e| format!("serving the AWS endpoint: {e}"))
}

#[cfg(test)]
mod limits_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::throttle::{Rate, RateLimits, Throttle};
    use kms_core::command::KmsStateMachine;
    use kms_core::ids::RegionScope;
    use kms_replication::{Region, RegionConfig};
    use serde_json::json;
    use std::sync::Arc;

    /// The endpoint's backend over a single-node region in `dir`.
    async fn backend(dir: &std::path::Path, limits: RateLimits, request_timeout: Duration) -> KmsBackend {
        let config = RegionConfig {
            node_id: 1,
            data_dir: dir.join("raft"),
            raft_listen: "127.0.0.1:0".parse().unwrap(),
            raft_advertise: "127.0.0.1:0".into(),
            ..RegionConfig::default()
        };
        let region = Region::open(config, Arc::new(KmsStateMachine::new("test-1"))).await.unwrap();
        region.initialize([(1, region.raft_addr().to_string())].into()).await.unwrap();
        for _ in 0..100 {
            if region.is_leader() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let root = kms_crypto::RootKey::generate().unwrap();
        let kms = Kms::new(region, root, RegionScope::new("test-1", "111122223333"))
            .with_throttle(Throttle::new(limits));
        KmsBackend { kms, codec: Codec::new().unwrap(), request_timeout }
    }

    #[tokio::test]
    async fn throttling_is_http_400_and_the_refused_operation_does_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let limits =
            RateLimits { management_write: Rate { per_second: 1, burst: 1 }, ..RateLimits::default() };
        let backend = backend(dir.path(), limits, Duration::from_secs(30)).await;
        let call = |principal: &str, operation: &str| {
            backend.call(Caller::new(principal), operation.to_string(), json!({}))
        };
        call("alice", "CreateKey").await.unwrap();
        let refused = call("alice", "CreateKey").await.unwrap_err();
        assert_eq!((refused.status, refused.code), (400, "ThrottlingException"), "{refused:?}");
        assert!(refused.message.contains("management write"), "{}", refused.message);
        call("bob", "CreateKey").await.unwrap();
        let listed = call("alice", "ListKeys").await.unwrap();
        assert_eq!(listed["Keys"].as_array().unwrap().len(), 2, "the refused CreateKey made no key");
    }

    #[tokio::test]
    async fn an_operation_over_the_request_timeout_is_a_retryable_503() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(dir.path(), RateLimits::default(), Duration::from_millis(1)).await;
        // Generating an RSA key takes far longer than a millisecond.
        let input = json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"});
        let err = backend.call(Caller::new("alice"), "CreateKey".into(), input).await.unwrap_err();
        assert_eq!((err.status, err.code), (503, "DependencyTimeoutException"), "{err:?}");
    }
}
