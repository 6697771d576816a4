//! How kmsctl reaches kmsd: the endpoint, TLS (the CA to trust and an optional client
//! certificate) and an optional bearer token. Shared by the KMS client, the cluster admin client
//! and `kmsctl health`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::CliError;

/// Default endpoint of a local `kmsd dev`.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8300";

/// The global connection flags. `Debug` leaves the token out.
#[derive(Clone, Args)]
pub struct Connection {
    /// gRPC endpoint of kmsd: http://host:port, or https://host:port for TLS.
    #[arg(long, global = true, env = "KMS_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// PEM bundle of the CA that issued kmsd's certificate (https endpoints).
    #[arg(long, global = true, env = "KMS_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// PEM client certificate (mutual TLS); its URI SAN or CN is who you are.
    #[arg(long, global = true, env = "KMS_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, global = true, env = "KMS_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Bearer token (sent as `authorization: Bearer ...`); prefer the environment variable.
    #[arg(long, global = true, env = "KMS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("ca_bundle", &self.ca_bundle)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A channel that adds the bearer token, when there is one, to every request.
pub type Transport = InterceptedService<Channel, BearerToken>;

#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
}

impl Connection {
    /// The endpoint as a URL (a bare `host:port` means http).
    pub fn url(&self) -> String {
        if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            format!("http://{}", self.endpoint)
        }
    }

    fn tls(&self) -> Result<ClientTlsConfig, CliError> {
        // No system trust store is built in: kmsd's certificates come from the region's own CA.
        let ca = self.ca_bundle.as_ref().ok_or_else(|| {
            CliError::Usage(format!(
                "{} is an https endpoint: pass --ca-bundle (or KMS_CA_BUNDLE) with the region's CA certificate",
                self.url()
            ))
        })?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "--ca-bundle")?));
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert, "--client-cert")?, read(key, "--client-key")?));
        }
        Ok(tls)
    }

    /// Connects, with TLS for https endpoints.
    pub async fn channel(&self) -> Result<Channel, CliError> {
        let url = self.url();
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| CliError::Usage(format!("invalid --endpoint '{}': {e}", self.endpoint)))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60));
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls()?)
                .map_err(|e| CliError::Usage(format!("TLS settings for {url}: {}", error_chain(&e))))?;
        } else if !url.starts_with("http://") {
            return Err(CliError::Usage(format!(
                "--endpoint {}: use http://host:port or https://host:port",
                self.endpoint
            )));
        } else if self.client_cert.is_some() || self.ca_bundle.is_some() {
            return Err(CliError::Usage(format!(
                "--ca-bundle/--client-cert need an https:// endpoint, got {url}"
            )));
        }
        endpoint.connect().await.map_err(|e| CliError::Connect { endpoint: url, detail: error_chain(&e) })
    }

    /// A connected channel that carries the bearer token.
    pub async fn transport(&self) -> Result<Transport, CliError> {
        let token = match &self.token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| CliError::Usage("--token must be printable ASCII".into()))?,
            ),
            None => None,
        };
        Ok(InterceptedService::new(self.channel().await?, BearerToken(token)))
    }
}

impl Connection {
    /// `kmsctl health`: SERVING → `{"Status": "SERVING"}`; anything else is an error (exit 255).
    pub async fn health(&self) -> Result<crate::json::Json, CliError> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut client = HealthClient::new(self.channel().await?);
        let service = "kms.v1.KeyManagementService".to_string();
        let status = client
            .check(HealthCheckRequest { service })
            .await
            .map_err(|status| CliError::Service { operation: "HealthCheck", status })?
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            Ok(crate::render::Obj::new().str("Status", status.as_str_name()).done())
        } else {
            Err(CliError::Other(format!("kmsd at {} is not serving: {}", self.url(), status.as_str_name())))
        }
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_the_token_out() {
        let connection = Connection {
            endpoint: DEFAULT_ENDPOINT.into(),
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            token: Some("s3cret-token".into()),
        };
        let shown = format!("{connection:?}");
        assert!(!shown.contains("s3cret-token") && shown.contains("<redacted>"), "{shown}");
    }
}
