//! Building a [`Client`](super::Client): regions and their endpoints, credentials, deadlines and
//! the retry policy.

use super::error::Error;
use super::nodes::{Cooldown, Node, RegionNodes};
use super::retry::RetryPolicy;
use super::transport::{BearerToken, ChannelSettings, connect_lazy, endpoint_url};
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Deadlines and retry settings shared by every call of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The deadline of a whole call, retries included (default 30 s, the server's own
    /// default request timeout).
    pub timeout: Duration,
    /// The deadline of one attempt (default 5 s); also sent as `grpc-timeout`, so the server
    /// stops working on an attempt the client gave up on.
    pub attempt_timeout: Duration,
    /// How long a connection may take (default 2 s).
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// How long a node that failed is tried only after the others.
    pub cooldown: Cooldown,
    /// How long the primary and replica regions learnt for a multi-Region key are trusted
    /// (default 5 minutes).
    pub region_cache_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            cooldown: Cooldown::default(),
            region_cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Configures a [`Client`](super::Client). The first region added is the home region.
#[derive(Default)]
pub struct ClientBuilder {
    regions: Vec<(String, Vec<String>)>,
    tls: Option<ClientTlsConfig>,
    token: Option<String>,
    settings: Settings,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("regions", &self.regions)
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("settings", &self.settings)
            .finish()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::config(format!("reading the {what} {}: {e}", path.display())))
}

impl ClientBuilder {
    /// Adds a region by its name (as the servers call it: it appears in key ARNs and in
    /// MultiRegionConfiguration) and the client endpoints of its nodes (`host:port` or URLs),
    /// or one load-balanced address. The first region added is the home region.
    pub fn region(
        mut self,
        name: impl Into<String>,
        endpoints: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.regions.push((name.into(), endpoints.into_iter().map(Into::into).collect()));
        self
    }

    /// TLS as configured by the caller (CA, client identity, server name).
    pub fn tls_config(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// TLS trusting the PEM CA certificate `ca`, with a PEM client certificate and key for
    /// mutual TLS when `identity` is given.
    pub fn tls_pem(self, ca: impl AsRef<[u8]>, identity: Option<(&[u8], &[u8])>) -> Self {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        self.tls_config(tls)
    }

    /// [`tls_pem`](Self::tls_pem) from files.
    pub fn tls_files(self, ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, Error> {
        let ca = read(ca, "CA certificate")?;
        let identity = match identity {
            Some((cert, key)) => Some((read(cert, "client certificate")?, read(key, "client key")?)),
            None => None,
        };
        Ok(self.tls_pem(ca, identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()))))
    }

    /// A bearer token, sent as `authorization: Bearer <token>` on every call.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Every deadline and retry setting at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The deadline of a whole call, retries included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The deadline of one attempt.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout = timeout;
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.settings.retry = retry;
        self
    }

    /// Checks the configuration and prepares one connection per endpoint; connections are made
    /// on first use, so this needs no server, but it must run inside a Tokio runtime.
    pub fn build(self) -> Result<super::Client, Error> {
        self.check()?;
        let channels = ChannelSettings {
            tls: self.tls.clone(),
            token: BearerToken::new(self.token.as_deref())?,
            connect_timeout: self.settings.connect_timeout,
        };
        let regions = self
            .regions
            .iter()
            .map(|(name, endpoints)| region_nodes(name, endpoints, &channels))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::Client::from_parts(regions, self.settings))
    }

    fn check(&self) -> Result<(), Error> {
        if self.regions.is_empty() {
            return Err(Error::config("no region configured: add one with ClientBuilder::region"));
        }
        for (i, (name, endpoints)) in self.regions.iter().enumerate() {
            if endpoints.is_empty() {
                return Err(Error::config(format!("region {name:?} has no endpoints")));
            }
            if self.regions[..i].iter().any(|(other, _)| other == name) {
                return Err(Error::config(format!("region {name:?} is configured twice")));
            }
        }
        let settings = &self.settings;
        if settings.retry.max_attempts == 0
            || settings.timeout.is_zero()
            || settings.attempt_timeout.is_zero()
        {
            return Err(Error::config("timeouts and max_attempts must be greater than zero"));
        }
        Ok(())
    }
}

fn region_nodes(name: &str, endpoints: &[String], channels: &ChannelSettings) -> Result<RegionNodes, Error> {
    let nodes = endpoints
        .iter()
        .map(|endpoint| {
            let url = endpoint_url(endpoint, channels.tls.is_some())?;
            let svc = connect_lazy(&url, channels)?;
            Ok(Node::new(url, svc))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(RegionNodes::new(name.to_string(), nodes))
}
