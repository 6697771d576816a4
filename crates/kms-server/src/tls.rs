//! A node's TLS identity, loaded once from `[tls]` and shaped for each listener and dialer:
//! the client API (client certificates optional, since bearer tokens are the other way in), the
//! Raft port (node certificates required, both ways), the AWS endpoint (server-only TLS; SigV4
//! authenticates) and the cluster admin client used to join a region.

use crate::config::TlsFiles;
use anyhow::{Context, Result, bail};
use kms_replication::TransportTls;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use zeroize::Zeroizing;

/// The PEM texts of `[tls]`, checked to hold what they should.
pub struct TlsMaterial {
    cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
    ca_pem: Vec<u8>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading the PEM certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let material = Self {
            cert_pem: read(&files.cert, "TLS certificate")?,
            key_pem: Zeroizing::new(read(&files.key, "TLS private key")?),
            ca_pem: read(&files.ca, "cluster CA certificate")?,
        };
        certificates(&material.cert_pem, &files.cert)?;
        certificates(&material.ca_pem, &files.ca)?;
        material.private_key().with_context(|| format!("reading the private key {}", files.key.display()))?;
        Ok(material)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>> {
        // The error type says only what is wrong with the PEM framing, never the key's bytes.
        PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| anyhow::anyhow!("no usable PEM private key: {e}"))
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, self.key_pem.as_slice())
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }

    /// The client API: clients may present a certificate of the cluster CA; those that do not
    /// must bring a bearer token (checked per request by the authenticator).
    pub fn client_api(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity()).client_ca_root(self.ca()).client_auth_optional(true)
    }

    /// Dialing another node (its Raft port, or its client port to join the region).
    pub fn node_client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(self.ca()).identity(self.identity())
    }

    /// Mutual TLS between the nodes of `region`: the peer's certificate must chain to the CA
    /// *and* name a node of this region.
    pub fn transport(&self, region: &str) -> TransportTls {
        let node = kms_api::authn::node_principal(region);
        TransportTls {
            server: ServerTlsConfig::new().identity(self.identity()).client_ca_root(self.ca()),
            client: self.node_client(),
            is_peer: Arc::new(move |chain: &[CertificateDer<'static>]| {
                chain
                    .first()
                    .and_then(|leaf| kms_api::authn::certificate_principal(leaf).ok())
                    .is_some_and(|principal| principal == node)
            }),
        }
    }

    /// The AWS endpoint: HTTPS with this node's certificate, no client certificates (SigV4).
    pub fn aws_endpoint(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = certificates(&self.cert_pem, Path::new("[tls] cert"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions for the AWS endpoint")?
            .with_no_client_auth()
            .with_single_cert(certs, self.private_key()?)
            .context("the [tls] certificate and key do not form a usable pair")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
