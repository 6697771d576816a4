//! The baseline: a bare tonic server that answers kms.v1 Encrypt with AES-256-GCM of the
//! plaintext under one in-memory key and nothing else (no authentication, no key lookup, no
//! audit, no state). The same client loop drives it as kmsd, so the ratio kmsd / baseline is what
//! our stack costs above gRPC plus the cipher on this hardware. The cipher is kms-crypto's, so
//! the baseline runs on the same crypto backend as the kmsd built with it.

use anyhow::{Context, Result};
use kms_crypto::AesGcmKey;
use kms_proto::v1 as pb;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tonic::codegen::{BoxFuture, Service, http};

const ENCRYPT_PATH: &str = "/kms.v1.KeyManagementService/Encrypt";

/// Serves Encrypt on `listen` until the process ends.
pub async fn serve(listen: SocketAddr) -> Result<()> {
    anyhow::ensure!(listen.ip().is_loopback(), "the baseline server listens on loopback only");
    let service = EncryptOnly::new()?;
    println!("baseline server on http://{listen}");
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(service)
        .serve(listen)
        .await
        .with_context(|| format!("serving the baseline on {listen}"))
}

/// A baseline server in a process of its own (this executable's `baseline-server`), like kmsd
/// runs in its own: the load generator's work is not counted against the server. Killed on drop.
pub struct Process {
    child: std::process::Child,
    pub endpoint: String,
}

impl Process {
    pub async fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["baseline-server", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting the baseline server")?;
        let process = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the baseline server did not listen within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(process)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gRPC service: Encrypt by AES-256-GCM, every other method Unimplemented.
#[derive(Clone)]
struct EncryptOnly {
    key: Arc<AesGcmKey>,
}

impl EncryptOnly {
    fn new() -> Result<Self> {
        let key = kms_crypto::random_bytes(32)
            .and_then(|bytes| AesGcmKey::new(bytes.expose()))
            .map_err(|e| anyhow::anyhow!("making the baseline key: {e}"))?;
        Ok(Self { key: Arc::new(key) })
    }
}

impl tonic::server::NamedService for EncryptOnly {
    const NAME: &'static str = "kms.v1.KeyManagementService";
}

impl Service<http::Request<tonic::body::Body>> for EncryptOnly {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != ENCRYPT_PATH {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("the baseline only encrypts").into_http())
            });
        }
        let method = EncryptMethod(self.key.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct EncryptMethod(Arc<AesGcmKey>);

impl tonic::server::UnaryService<pb::EncryptRequest> for EncryptMethod {
    type Response = pb::EncryptResponse;
    type Future = BoxFuture<tonic::Response<pb::EncryptResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<pb::EncryptRequest>) -> Self::Future {
        let key = self.0.clone();
        Box::pin(async move {
            let request = request.into_inner();
            let blob = seal(&key, &request.plaintext)?;
            Ok(tonic::Response::new(pb::EncryptResponse {
                ciphertext_blob: blob,
                key_id: request.key_id,
                ..Default::default()
            }))
        })
    }
}

/// nonce || ciphertext || tag, with a fresh random nonce.
fn seal(key: &AesGcmKey, plaintext: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let mut nonce = [0u8; kms_crypto::aead::NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| tonic::Status::internal(format!("random nonce: {e}")))?;
    let sealed = kms_crypto::aead::aead_seal(key, &nonce, b"", plaintext)
        .map_err(|_| tonic::Status::internal("AES-GCM"))?;
    let mut blob = Vec::with_capacity(nonce.len() + sealed.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_blobs_open_under_the_key() {
        let service = EncryptOnly::new().unwrap();
        let blob = seal(&service.key, b"hello").unwrap();
        assert_eq!(blob.len(), 12 + 5 + 16);
        let nonce: [u8; 12] = blob[..12].try_into().unwrap();
        let opened = kms_crypto::aead::aead_open(&service.key, &nonce, b"", &blob[12..]).unwrap();
        assert_eq!(opened.expose(), b"hello");
    }
}
