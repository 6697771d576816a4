//! Connections to the nodes: one lazily connected tonic channel per endpoint, over TLS when
//! configured, carrying the bearer token when there is one.

use super::error::Error;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The generated client over one node's connection.
pub type Svc = KeyManagementServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` to every request when a token is configured.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    pub(crate) fn new(token: Option<&str>) -> Result<Self, Error> {
        let Some(token) = token else { return Ok(Self(None)) };
        let mut value = format!("Bearer {token}")
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| Error::config("the bearer token must be printable ASCII"))?;
        // Kept out of HTTP/2 header compression tables and of debug output.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "BearerToken(<redacted>)" } else { "BearerToken(none)" })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How channels are made.
#[derive(Clone)]
pub(crate) struct ChannelSettings {
    pub tls: Option<ClientTlsConfig>,
    pub token: BearerToken,
    pub connect_timeout: Duration,
}

/// The URL of an endpoint given as `host:port` (https when TLS is configured) or as a URL.
pub(crate) fn endpoint_url(endpoint: &str, tls: bool) -> Result<String, Error> {
    let url = match endpoint.split_once("://") {
        Some(_) => endpoint.to_string(),
        None if tls => format!("https://{endpoint}"),
        None => format!("http://{endpoint}"),
    };
    match (url.starts_with("https://"), url.starts_with("http://"), tls) {
        (true, _, true) | (_, true, false) => Ok(url),
        (true, _, false) => Err(Error::config(format!(
            "{url} is an https endpoint: configure TLS (the region's CA certificate) first"
        ))),
        (_, true, true) => {
            Err(Error::config(format!("TLS is configured but {url} is a plaintext http endpoint")))
        }
        _ => Err(Error::config(format!(
            "endpoint {endpoint}: use host:port, http://host:port or https://host:port"
        ))),
    }
}

/// A client of one node; the connection is made on first use and re-made after failures.
/// Needs a Tokio runtime (tonic spawns the connection's worker).
pub(crate) fn connect_lazy(url: &str, settings: &ChannelSettings) -> Result<Svc, Error> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::config(format!("invalid endpoint {url}: {e}")))?
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        // A frozen or vanished peer is noticed on an idle connection too, not only by a call
        // that waits for its deadline.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if let Some(tls) = &settings.tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| Error::config(format!("TLS settings for {url}: {e}")))?;
    }
    let channel = endpoint.connect_lazy();
    Ok(KeyManagementServiceClient::with_interceptor(channel, settings.token.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_scheme_of_the_transport() {
        assert_eq!(endpoint_url("127.0.0.1:8300", false).unwrap(), "http://127.0.0.1:8300");
        assert_eq!(endpoint_url("kms-1.example:8300", true).unwrap(), "https://kms-1.example:8300");
        assert_eq!(endpoint_url("https://kms:1", true).unwrap(), "https://kms:1");
        assert!(endpoint_url("https://kms:1", false).unwrap_err().to_string().contains("configure TLS"));
        assert!(endpoint_url("http://kms:1", true).unwrap_err().to_string().contains("plaintext"));
        assert!(endpoint_url("ftp://kms:1", false).is_err());
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let token = BearerToken::new(Some("s3cret")).unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(BearerToken::new(Some("line\nbreak")).is_err());
    }
}
