//! The baseline: a bare tonic server that answers kms.v1 Encrypt with AES-256-GCM of the
//! plaintext under one in-memory key and nothing else (no authentication, no key lookup, no
//! audit, no state). The same client loop drives it as kmsd, so the ratio kmsd / baseline is what
//! our stack costs above gRPC plus the cipher on this hardware.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, Result};
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
    cipher: Arc<Aes256Gcm>,
}

impl EncryptOnly {
    fn new() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("drawing the baseline key: {e}"))?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| anyhow::anyhow!("AES-256 key length"))?;
        Ok(Self { cipher: Arc::new(cipher) })
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
        let method = EncryptMethod(self.cipher.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct EncryptMethod(Arc<Aes256Gcm>);

impl tonic::server::UnaryService<pb::EncryptRequest> for EncryptMethod {
    type Response = pb::EncryptResponse;
    type Future = BoxFuture<tonic::Response<pb::EncryptResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<pb::EncryptRequest>) -> Self::Future {
        let cipher = self.0.clone();
        Box::pin(async move {
            let request = request.into_inner();
            let blob = seal(&cipher, request.plaintext)?;
            Ok(tonic::Response::new(pb::EncryptResponse {
                ciphertext_blob: blob,
                key_id: request.key_id,
                ..Default::default()
            }))
        })
    }
}

/// nonce || ciphertext || tag, with a fresh random nonce.
fn seal(cipher: &Aes256Gcm, mut buffer: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| tonic::Status::internal(format!("random nonce: {e}")))?;
    cipher
        .encrypt_in_place(&Nonce::from(nonce), b"", &mut buffer)
        .map_err(|_| tonic::Status::internal("AES-GCM"))?;
    let mut blob = Vec::with_capacity(12 + buffer.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&buffer);
    Ok(blob)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aes_gcm::aead::Aead as _;

    #[test]
    fn sealed_blobs_open_under_the_key() {
        let service = EncryptOnly::new().unwrap();
        let blob = seal(&service.cipher, b"hello".to_vec()).unwrap();
        assert_eq!(blob.len(), 12 + 5 + 16);
        let nonce = Nonce::try_from(&blob[..12]).unwrap();
        assert_eq!(service.cipher.decrypt(&nonce, &blob[12..]).unwrap(), b"hello");
    }
}
