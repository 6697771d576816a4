//! kmsd configuration: a TOML file, overridden by environment variables, overridden by flags.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use kms_replication::RaftTuning;

/// Everything a node needs to start. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id in its region's Raft group. Never reuse an id after removing a node.
    /// May be left out with `node_id_from_hostname = true`.
    #[serde(default)]
    pub node_id: u64,
    /// Derive `node_id` from the host name's trailing ordinal plus one (`kms-0` is node 1), the
    /// way a Kubernetes StatefulSet names its pods. Flags and `KMSD_NODE_ID` still override it.
    #[serde(default)]
    pub node_id_from_hostname: bool,
    /// Where RocksDB keeps the Raft log and the state.
    pub data_dir: PathBuf,
    /// The client API (gRPC) address.
    pub listen: SocketAddr,
    /// Where this node serves Raft traffic to its peers.
    pub raft_listen: SocketAddr,
    /// The address peers use to reach `raft_listen` (defaults to it).
    pub raft_advertise: Option<String>,
    /// Region name and account id, as they appear in ARNs.
    pub region: String,
    pub account: String,
    /// A file holding the 32-byte region root key, hex-encoded; must not be readable by others.
    /// Shorthand for `[root_key] provider = "file"`; ignored when `[root_key]` is given.
    #[serde(default)]
    pub root_key_file: Option<PathBuf>,
    /// Where the region root key comes from (`[root_key]`): a file, an environment variable, or
    /// a PKCS#11 token.
    #[serde(default)]
    pub root_key: Option<RootKeySource>,
    /// Root keys active before a root key rotation (`[[previous_root_keys]]`, each like
    /// `[root_key]`): they only unseal, while the leader re-seals what they sealed under the
    /// active key. Remove one once `kms_root_key_stale_sealed_values` reads 0 on the leader and
    /// 24 hours have passed (import tokens issued before the switch live that long).
    #[serde(default)]
    pub previous_root_keys: Vec<RootKeySource>,
    /// The voters of a brand-new region, by node id (`1 = "10.0.0.1:8301"`). Only the node with
    /// the lowest id initializes; on a node with existing state this is ignored.
    #[serde(default)]
    pub initial_members: BTreeMap<u64, String>,
    /// Client endpoints (`host:port`) of existing members. A node whose id is not in
    /// `initial_members` asks them to add it as a learner and promote it to a voter (see
    /// join.rs); members of `initial_members` ignore it.
    #[serde(default)]
    pub join: Vec<String>,
    /// The other regions of the deployment, for multi-Region keys: each one's client endpoints
    /// (`[regions.<name>] endpoints = ["host:port", ...]`, or one `endpoint`). This region's
    /// leader delivers multi-Region key updates there, over mutual TLS with this node's
    /// certificate when `[tls]` is set.
    #[serde(default)]
    pub regions: BTreeMap<String, OtherRegion>,
    /// How often due deletions and rotations are looked for.
    #[serde(default = "default_maintenance_interval")]
    pub maintenance_interval_secs: u64,
    /// Raft timing and snapshot policy (`[raft]`); the defaults suit a LAN.
    #[serde(default)]
    pub raft: RaftTuning,
    /// The audit log (`[audit]`): one hash-chained record per request, always on.
    #[serde(default)]
    pub audit: AuditSettings,
    /// The AWS-compatible endpoint (AWS JSON 1.1 with SigV4, for the AWS CLI and SDKs); off
    /// when absent. HTTPS with the node certificate when `[tls]` is set.
    #[serde(default)]
    pub aws_listen: Option<SocketAddr>,
    /// The access keys `aws_listen` accepts, by access key id:
    /// `[aws_credentials.<id>]` with `secret_access_key` and `principal`.
    #[serde(default)]
    pub aws_credentials: BTreeMap<String, AwsCredential>,
    /// Where `GET /metrics` serves Prometheus metrics (plain HTTP); off when absent. The metrics
    /// carry operation and exception names only, but keep the address off public networks.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// TLS on the client, Raft and AWS ports (`[tls]`). Without it every listener must be on
    /// loopback, unless `allow_insecure_plaintext` says otherwise.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Bearer tokens, by principal: `app1 = "sha256:<hex SHA-256 of the token>"` (`kmsctl
    /// token-digest` prints the value). Only digests are stored, so this file is not a secret.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// Principals allowed to use the cluster admin API besides the region's own nodes.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Serve plaintext on non-loopback addresses. Anyone on the network could then read and
    /// forge requests and Raft traffic; only for networks that are private by other means.
    #[serde(default)]
    pub allow_insecure_plaintext: bool,
    /// The Kubernetes KMS v2 plugin on a unix socket (`[kubernetes]`, see kubernetes.rs); off
    /// when absent.
    #[serde(default)]
    pub kubernetes: Option<crate::kubernetes::KubernetesConfig>,
    /// Per-principal request rate limits by operation family (`[rate_limits]`); on by default.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    /// The longest a request may run on either API before it is cut off (a client's shorter
    /// gRPC deadline wins). A write cut off this way may still commit.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Principals registered as integrated services: each may name `alias/aws/<principal>` in
    /// Encrypt or GenerateDataKey*, and its AWS managed key is created on first use.
    #[serde(default)]
    pub services: Vec<String>,
}

/// `[rate_limits]`: token buckets per (principal, operation family). A request beyond its bucket
/// is refused with ThrottlingException. `*_per_second = 0` turns a family's limit off; a burst
/// of 0 means one second's worth. Defaults: cryptographic 5500/s (burst 5500), management reads
/// 1000/s (burst 1000), management writes 100/s (burst 200), 100000 principals tracked.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub cryptographic_per_second: u32,
    pub cryptographic_burst: u32,
    pub management_read_per_second: u32,
    pub management_read_burst: u32,
    pub management_write_per_second: u32,
    pub management_write_burst: u32,
    /// The most principals whose buckets are kept at once (idle ones are forgotten first).
    pub max_principals: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let limits = kms_api::throttle::RateLimits::default();
        Self {
            cryptographic_per_second: limits.cryptographic.per_second,
            cryptographic_burst: limits.cryptographic.burst,
            management_read_per_second: limits.management_read.per_second,
            management_read_burst: limits.management_read.burst,
            management_write_per_second: limits.management_write.per_second,
            management_write_burst: limits.management_write.burst,
            max_principals: limits.max_principals,
        }
    }
}

impl RateLimitSettings {
    pub fn limits(&self) -> kms_api::throttle::RateLimits {
        use kms_api::throttle::Rate;
        kms_api::throttle::RateLimits {
            cryptographic: Rate {
                per_second: self.cryptographic_per_second,
                burst: self.cryptographic_burst,
            },
            management_read: Rate {
                per_second: self.management_read_per_second,
                burst: self.management_read_burst,
            },
            management_write: Rate {
                per_second: self.management_write_per_second,
                burst: self.management_write_burst,
            },
            max_principals: self.max_principals,
        }
    }
}

fn default_request_timeout() -> u64 {
    30
}

/// The provider of the region root key. Every node of a region must get the same key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "provider", rename_all = "lowercase", deny_unknown_fields)]
pub enum RootKeySource {
    /// 64 hex digits in a file of mode 0600 or stricter.
    File { path: PathBuf },
    /// 64 hex digits in an environment variable (e.g. filled from a Kubernetes Secret).
    Env { variable: String },
    /// Derived inside a PKCS#11 token from an AES-256 key that never leaves it (see root_key.rs).
    Pkcs11 {
        /// The token's PKCS#11 module (e.g. SoftHSM2's libsofthsm2.so).
        module: PathBuf,
        /// The slot id; or find the token by `token_label`.
        slot: Option<u64>,
        token_label: Option<String>,
        /// The label of the AES-256 secret key object.
        key_label: String,
        /// A file holding the token's user PIN.
        pin_file: PathBuf,
    },
}

/// The PEM files of a node's TLS identity and of the cluster CA.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// This node's certificate chain, leaf first: its server certificate on every port and its
    /// client certificate towards peers. It must carry the URI SAN `kms://<region>/node`.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The cluster CA: peers' and clients' certificates must chain to it.
    pub ca: PathBuf,
}

/// One access key of the AWS endpoint. The secret never appears in `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsCredential {
    pub secret_access_key: String,
    /// Who a request signed with this key runs as.
    pub principal: String,
}

impl std::fmt::Debug for AwsCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredential")
            .field("secret_access_key", &"<redacted>")
            .field("principal", &self.principal)
            .finish()
    }
}

/// Another region of the same deployment.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OtherRegion {
    /// One client endpoint, `host:port` (a load-balanced Service, say).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Client endpoints of its nodes; requests are spread over those that answer.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

impl OtherRegion {
    /// Every configured endpoint.
    pub fn all_endpoints(&self) -> Vec<String> {
        self.endpoint.iter().chain(&self.endpoints).cloned().collect()
    }
}

/// `[audit]`: where the audit log goes and what a full audit queue does.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// The log file (JSON Lines, append-only); `<data_dir>/audit.log` when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Records (and requests in flight) the queue in front of the writer holds.
    #[serde(default = "default_audit_queue")]
    pub queue_capacity: usize,
    /// `fail-closed` (default): a full queue refuses requests with the retriable
    /// DependencyTimeoutException before they run. `drop`: requests run, their records are
    /// dropped and counted (`kms_audit_records_dropped_total`; alarm on it).
    #[serde(default = "default_on_full")]
    pub on_full: kms_audit::OnFull,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { path: None, queue_capacity: default_audit_queue(), on_full: default_on_full() }
    }
}

const MAX_AUDIT_QUEUE: usize = 1 << 20;

/// About half a second of a node's requests at the 25-35k/s one node answers. With 4,096 places
/// (~150 ms), transient stalls of the audit writer (a slow `fdatasync` on a virtual disk, the
/// writer thread starved of CPU) refused thousands of requests with DependencyTimeoutException
/// in benchmark runs; a record is a few hundred bytes, so this bounds the queue to a few MiB.
fn default_audit_queue() -> usize {
    16_384
}

fn default_on_full() -> kms_audit::OnFull {
    kms_audit::OnFull::FailClosed
}

fn default_maintenance_interval() -> u64 {
    30
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("parsing the configuration file {}", path.display()))?;
        if config.node_id_from_hostname {
            let host = hostname().context("reading the host name for node_id_from_hostname")?;
            config.node_id = node_id_from_hostname(&host)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The safe single-node defaults of `kmsd dev`: loopback only, everything under one directory.
    pub fn dev(data_dir: PathBuf, listen: SocketAddr) -> Result<Self> {
        if !listen.ip().is_loopback() {
            bail!(
                "dev mode listens on loopback only, got {listen}; use `kmsd run --config` for a \
                 node reachable from other hosts"
            );
        }
        let raft_listen = SocketAddr::new(listen.ip(), listen.port().wrapping_add(1));
        Ok(Self {
            node_id: 1,
            root_key_file: Some(data_dir.join("root.key")),
            root_key: None,
            previous_root_keys: Vec::new(),
            data_dir,
            listen,
            raft_listen,
            raft_advertise: None,
            region: "dev-1".into(),
            account: "000000000000".into(),
            initial_members: BTreeMap::from([(1, raft_listen.to_string())]),
            node_id_from_hostname: false,
            join: Vec::new(),
            regions: BTreeMap::new(),
            maintenance_interval_secs: 5,
            raft: RaftTuning::default(),
            audit: AuditSettings::default(),
            aws_listen: Some(SocketAddr::new(listen.ip(), listen.port().wrapping_add(2))),
            aws_credentials: BTreeMap::from([(
                kms_api::aws::DEV_ACCESS_KEY_ID.to_string(),
                AwsCredential {
                    secret_access_key: kms_api::aws::DEV_SECRET_ACCESS_KEY.to_string(),
                    principal: kms_api::aws::DEV_PRINCIPAL.to_string(),
                },
            )]),
            metrics_listen: Some(SocketAddr::new(listen.ip(), listen.port().wrapping_add(3))),
            tls: None,
            tokens: BTreeMap::new(),
            admins: Vec::new(),
            allow_insecure_plaintext: false,
            kubernetes: None,
            rate_limits: RateLimitSettings::default(),
            request_timeout_secs: default_request_timeout(),
            services: Vec::new(),
        })
    }

    pub fn raft_advertise(&self) -> String {
        self.raft_advertise.clone().unwrap_or_else(|| self.raft_listen.to_string())
    }

    pub fn validate(&self) -> Result<()> {
        if self.node_id == 0 {
            bail!("node_id must be at least 1");
        }
        if self.region.contains(':') || kms_replication::check_region_name(&self.region).is_err() {
            bail!(
                "region must be a non-empty name of printable ASCII without ':' (it appears in ARNs \
                 and is sent with every Raft message)"
            );
        }
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account must be 12 digits, as in AWS ARNs (got '{}')", self.account);
        }
        if !self.initial_members.is_empty()
            && !self.initial_members.contains_key(&self.node_id)
            && self.join.is_empty()
        {
            bail!(
                "initial_members does not contain this node's id {} and `join` is empty: list the \
                 endpoints of existing members in `join` to add this node to the region",
                self.node_id
            );
        }
        if self.join.iter().any(|endpoint| endpoint.trim().is_empty()) {
            bail!("`join` has an empty endpoint");
        }
        for (name, other) in &self.regions {
            let endpoints = other.all_endpoints();
            if name.is_empty()
                || name.contains(':')
                || endpoints.is_empty()
                || endpoints.iter().any(|e| e.trim().is_empty())
            {
                bail!("[regions.{name}] needs a region name without ':' and non-empty endpoints");
            }
            if *name == self.region {
                bail!("[regions.{name}] is this node's own region; list only the other regions");
            }
        }
        if let Err(rule) = self.raft.validate() {
            bail!("[raft] {rule}");
        }
        if self.rate_limits.max_principals == 0 {
            bail!("[rate_limits] max_principals must be at least 1");
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            bail!("request_timeout_secs must be between 1 and 3600");
        }
        for service in &self.services {
            kms_core::managed::validate_service_name(service)
                .map_err(|err| anyhow::anyhow!("services: {}", err.message))?;
        }
        if !(1..=MAX_AUDIT_QUEUE).contains(&self.audit.queue_capacity) {
            bail!("[audit] queue_capacity must be between 1 and {MAX_AUDIT_QUEUE}");
        }
        if let Some(metrics) = self.metrics_listen
            && [Some(self.listen), Some(self.raft_listen), self.aws_listen].contains(&Some(metrics))
        {
            bail!("metrics_listen {metrics} is already the address of another listener");
        }
        if self.aws_listen.is_some() && self.aws_credentials.is_empty() {
            bail!("aws_listen is set but [aws_credentials] is empty: nobody could call the AWS endpoint");
        }
        self.validate_transport_security()?;
        let sources = std::iter::once(self.root_key_source()?).chain(self.previous_root_keys.iter().cloned());
        for source in sources {
            if let RootKeySource::Pkcs11 { slot: None, token_label: None, .. } = source {
                bail!("a root key with provider = \"pkcs11\" needs a slot or a token_label");
            }
        }
        if let Some(kubernetes) = &self.kubernetes {
            kubernetes.validate()?;
        }
        for (access_key_id, credential) in &self.aws_credentials {
            if access_key_id.is_empty() || access_key_id.contains('/') {
                bail!("[aws_credentials] access key id '{access_key_id}' must be non-empty without '/'");
            }
            if credential.secret_access_key.is_empty() || credential.principal.is_empty() {
                bail!("[aws_credentials.{access_key_id}] needs a non-empty secret_access_key and principal");
            }
        }
        Ok(())
    }

    /// Where the root key comes from: `[root_key]`, else `root_key_file`.
    pub fn root_key_source(&self) -> Result<RootKeySource> {
        match (&self.root_key, &self.root_key_file) {
            (Some(source), _) => Ok(source.clone()),
            (None, Some(path)) => Ok(RootKeySource::File { path: path.clone() }),
            (None, None) => bail!("no root key configured: set root_key_file, or a [root_key] section"),
        }
    }

    /// Plaintext only on loopback (unless explicitly allowed), and well-formed token digests.
    fn validate_transport_security(&self) -> Result<()> {
        let exposed: Vec<SocketAddr> = [Some(self.listen), Some(self.raft_listen), self.aws_listen]
            .into_iter()
            .flatten()
            .filter(|address| !address.ip().is_loopback())
            .collect();
        if self.tls.is_none() && !exposed.is_empty() && !self.allow_insecure_plaintext {
            bail!(
                "{} {} not on loopback but [tls] is not configured: requests, tokens and Raft \
                 traffic would cross the network in the clear. Configure [tls] (`kmsctl ca create` \
                 and `kmsctl ca issue` make a CA and certificates), or set \
                 allow_insecure_plaintext = true for a network that is private by other means",
                exposed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                if exposed.len() == 1 { "is" } else { "are" },
            );
        }
        for (principal, digest) in &self.tokens {
            parse_token_digest(digest)
                .with_context(|| format!("[tokens] {principal}: expected \"sha256:<64 hex digits>\""))?;
        }
        Ok(())
    }

    /// Who may call this node: with TLS or tokens, only authenticated principals; otherwise
    /// everyone, as `anonymous` (loopback only, enforced by `validate`).
    pub fn authenticator(&self) -> Result<kms_api::authn::Authenticator> {
        use kms_api::authn::Authenticator;
        let mut authn = if self.tls.is_none() && self.tokens.is_empty() {
            Authenticator::anonymous(&self.region)
        } else {
            Authenticator::required(&self.region)
        };
        for (principal, digest) in &self.tokens {
            authn = authn.with_token_digest(principal, parse_token_digest(digest)?);
        }
        Ok(authn.with_admins(self.admins.iter().cloned()))
    }

    /// The AWS endpoint's settings: requests are signed for this node's region.
    pub fn aws_config(&self) -> kms_api::aws::AwsConfig {
        let mut credentials = kms_api::aws::Credentials::new();
        for (access_key_id, credential) in &self.aws_credentials {
            credentials.insert(access_key_id, &credential.secret_access_key, &credential.principal);
        }
        kms_api::aws::AwsConfig {
            region: self.region.clone(),
            credentials,
            tls: None,
            request_timeout: self.request_timeout(),
        }
    }

    /// The server-side deadline of every request (`request_timeout_secs`).
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_secs)
    }

    /// Whether this node joins an existing region through `join` on start (see join.rs).
    pub fn joins_through_admin_api(&self) -> bool {
        !self.join.is_empty() && !self.initial_members.contains_key(&self.node_id)
    }

    /// The audit log's settings, with the default path resolved.
    pub fn audit_config(&self) -> kms_audit::AuditConfig {
        kms_audit::AuditConfig {
            path: self.audit.path.clone().unwrap_or_else(|| self.data_dir.join("audit.log")),
            queue_capacity: self.audit.queue_capacity,
            on_full: self.audit.on_full,
        }
    }

    /// Whether this node is the one that initializes a brand-new region.
    pub fn is_bootstrap_node(&self) -> bool {
        self.initial_members.keys().next() == Some(&self.node_id)
    }
}

/// `sha256:<64 hex digits>` → the digest.
fn parse_token_digest(text: &str) -> Result<[u8; 32]> {
    let hex = text.strip_prefix("sha256:").context("missing the sha256: prefix")?;
    let digest = crate::root_key::decode_hex(hex)?;
    digest
        .try_into()
        .map_err(|digest: Vec<u8>| anyhow::anyhow!("the digest has {} bytes, not 32", digest.len()))
}

/// The host name: `HOSTNAME` when set (containers set it), else the kernel's.
fn hostname() -> Result<String> {
    if let Ok(name) = std::env::var("HOSTNAME")
        && !name.trim().is_empty()
    {
        return Ok(name.trim().to_string());
    }
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    Ok(name.trim().to_string())
}

/// `kms-2` (or `kms-2.kms-peers.ns.svc`) → 3: the ordinal after the last `-` of the first label,
/// plus one, because node id 0 is not allowed.
fn node_id_from_hostname(host: &str) -> Result<u64> {
    let label = host.split('.').next().unwrap_or_default();
    let ordinal = label.rsplit_once('-').and_then(|(_, ordinal)| ordinal.parse::<u64>().ok());
    let ordinal = ordinal.with_context(|| {
        format!("node_id_from_hostname: host name '{host}' does not end in -<ordinal> (as in kms-0)")
    })?;
    ordinal.checked_add(1).context("node_id_from_hostname: the ordinal is too large")
}

/// The required keys of a node's configuration; tests append what they exercise.
#[cfg(test)]
pub(crate) const MINIMAL: &str = r#"
node_id = 1
data_dir = "/var/lib/kms"
listen = "127.0.0.1:8300"
raft_listen = "127.0.0.1:8301"
region = "eu-west-1"
account = "123456789012"
root_key_file = "/etc/kms/root.key"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_digests_must_be_sha256_hex() {
        let digest = parse_token_digest(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        assert_eq!(digest, [0xab; 32]);
        for bad in
            ["ab".repeat(32), format!("sha256:{}", "ab".repeat(31)), format!("sha256:{}", "zz".repeat(32))]
        {
            assert!(parse_token_digest(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_config_file_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        std::fs::write(
            &path,
            r#"
node_id = 2
data_dir = "/var/lib/kms"
listen = "0.0.0.0:8300"
raft_listen = "0.0.0.0:8301"
raft_advertise = "kms-2.kms:8301"
region = "eu-west-1"
account = "123456789012"
root_key_file = "/etc/kms/root.key"
[tls]
cert = "/etc/kms/tls/tls.crt"
key = "/etc/kms/tls/tls.key"
ca = "/etc/kms/tls/ca.crt"
[initial_members]
1 = "kms-1.kms:8301"
2 = "kms-2.kms:8301"
3 = "kms-3.kms:8301"
"#,
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.initial_members.len(), 3);
        assert!(!config.is_bootstrap_node());
        assert_eq!(config.maintenance_interval_secs, 30);
        assert_eq!(config.raft, RaftTuning::default());
        assert_eq!(config.rate_limits.limits(), kms_api::throttle::RateLimits::default());
        assert_eq!(config.request_timeout().as_secs(), 30);
    }

    #[test]
    fn rate_limits_and_the_request_timeout_parse_and_are_checked() {
        let text = format!(
            "{MINIMAL}request_timeout_secs = 5\n[rate_limits]\ncryptographic_per_second = 10\n\
             cryptographic_burst = 20\nmanagement_write_per_second = 0\n"
        );
        let config: Config = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        let limits = config.rate_limits.limits();
        assert_eq!((limits.cryptographic.per_second, limits.cryptographic.burst), (10, 20));
        assert_eq!(limits.management_write.per_second, 0);
        assert_eq!(limits.management_read, kms_api::throttle::RateLimits::default().management_read);
        assert_eq!(config.request_timeout().as_secs(), 5);
        let bad: Config = toml::from_str(&format!("{MINIMAL}request_timeout_secs = 0\n")).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("request_timeout_secs"));
        assert!(toml::from_str::<Config>(&format!("{MINIMAL}[rate_limits]\nencrypt = 1\n")).is_err());
    }

    #[test]
    fn a_region_name_must_be_printable_ascii_without_colons() {
        for bad in ["", "eu:west", "eu west", "région"] {
            let text = MINIMAL.replace("region = \"eu-west-1\"", &format!("region = {bad:?}"));
            let config: Config = toml::from_str(&text).unwrap();
            assert!(config.validate().unwrap_err().to_string().contains("region must be"), "{bad:?}");
        }
    }

    #[test]
    fn services_are_checked() {
        let config: Config = toml::from_str(&format!("services = [\"backup\"]\n{MINIMAL}")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.services, ["backup"]);
        let bad: Config = toml::from_str(&format!("services = [\"a/b\"]\n{MINIMAL}")).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("services"));
    }

    #[test]
    fn raft_tuning_parses_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        let base = &format!("{MINIMAL}[raft]\nsnapshot_logs_since_last = 50\nrequest_timeout_ms = 3000\n");
        std::fs::write(&path, base).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.raft.snapshot_logs_since_last, 50);
        assert_eq!(config.raft.request_timeout_ms, 3000);
        assert_eq!(config.raft.heartbeat_interval_ms, RaftTuning::default().heartbeat_interval_ms);
        std::fs::write(&path, format!("{base}election_timeout_min_ms = 10\n")).unwrap();
        assert!(Config::load(&path).is_err());
        std::fs::write(&path, format!("{base}no_such_knob = 1\n")).unwrap();
        assert!(Config::load(&path).is_err());
    }

    #[test]
    fn aws_credentials_parse_are_checked_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        let base = &format!("{MINIMAL}aws_listen = \"127.0.0.1:8302\"\n");
        std::fs::write(&path, base).unwrap();
        assert!(Config::load(&path).is_err(), "aws_listen without credentials");
        let with_key = format!(
            "{base}[aws_credentials.AKIAEXAMPLE]\nsecret_access_key = \"s3cr3t-value\"\nprincipal = \"app\"\n"
        );
        std::fs::write(&path, &with_key).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.aws_listen, Some("127.0.0.1:8302".parse().unwrap()));
        assert_eq!(config.aws_credentials["AKIAEXAMPLE"].principal, "app");
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
        assert!(!format!("{:?}", config.aws_config()).contains("s3cr3t-value"));
        assert_eq!(config.aws_config().credentials.get("AKIAEXAMPLE").map(|c| c.principal()), Some("app"));
        std::fs::write(&path, with_key.replace("principal = \"app\"", "principal = \"\"")).unwrap();
        assert!(Config::load(&path).is_err(), "empty principal");
        let dev = Config::dev("/tmp/x".into(), "127.0.0.1:8300".parse().unwrap()).unwrap();
        assert_eq!(dev.aws_listen, Some("127.0.0.1:8302".parse().unwrap()));
        assert!(dev.aws_credentials.contains_key(kms_api::aws::DEV_ACCESS_KEY_ID));
    }

    #[test]
    fn metrics_listen_is_optional_and_on_in_dev() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        let base = MINIMAL;
        std::fs::write(&path, base).unwrap();
        assert_eq!(Config::load(&path).unwrap().metrics_listen, None);
        std::fs::write(&path, format!("{base}metrics_listen = \"127.0.0.1:9300\"\n")).unwrap();
        assert_eq!(Config::load(&path).unwrap().metrics_listen, Some("127.0.0.1:9300".parse().unwrap()));
        std::fs::write(&path, format!("{base}metrics_listen = \"127.0.0.1:8301\"\n")).unwrap();
        assert!(Config::load(&path).is_err(), "the raft address twice");
        let dev = Config::dev("/tmp/x".into(), "127.0.0.1:8300".parse().unwrap()).unwrap();
        assert_eq!(dev.metrics_listen, Some("127.0.0.1:8303".parse().unwrap()));
    }

    #[test]
    fn audit_defaults_to_the_data_dir_and_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let audit = Config::load(&path).unwrap().audit_config();
        assert_eq!(audit.path, Path::new("/var/lib/kms/audit.log"));
        assert_eq!((audit.queue_capacity, audit.on_full), (16_384, kms_audit::OnFull::FailClosed));
        let section =
            "[audit]\npath = \"/var/log/kms/audit.log\"\nqueue_capacity = 100\non_full = \"drop\"\n";
        std::fs::write(&path, format!("{MINIMAL}{section}")).unwrap();
        let audit = Config::load(&path).unwrap().audit_config();
        assert_eq!(audit.path, Path::new("/var/log/kms/audit.log"));
        assert_eq!((audit.queue_capacity, audit.on_full), (100, kms_audit::OnFull::Drop));
        for bad in ["on_full = \"block\"\n", "queue_capacity = 0\n", "no_such_knob = 1\n"] {
            std::fs::write(&path, format!("{MINIMAL}[audit]\n{bad}")).unwrap();
            assert!(Config::load(&path).is_err(), "{bad}");
        }
        let dev = Config::dev("/tmp/x".into(), "127.0.0.1:8300".parse().unwrap()).unwrap();
        assert_eq!(dev.audit_config().path, Path::new("/tmp/x/audit.log"));
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kmsd.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.initial_members.len(), 3);
        assert!(config.aws_listen.is_some());
        assert_eq!(config.aws_credentials.len(), 1);
        assert!(config.metrics_listen.is_some());
    }

    #[test]
    fn node_ids_come_from_statefulset_host_names() {
        assert_eq!(node_id_from_hostname("kms-0").unwrap(), 1);
        assert_eq!(node_id_from_hostname("my-kms-12.kms-peers.prod.svc").unwrap(), 13);
        assert!(node_id_from_hostname("kms").is_err());
        assert!(node_id_from_hostname("kms-x").is_err());
    }

    #[test]
    fn a_node_outside_initial_members_needs_join_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        let base = MINIMAL.replace("node_id = 1", "node_id = 4");
        let members = "[initial_members]\n1 = \"kms-0:8301\"\n";
        std::fs::write(&path, format!("{base}{members}")).unwrap();
        assert!(Config::load(&path).is_err(), "neither a member nor told whom to join");
        let joining = format!("{base}join = [\"kms-0:8300\"]\n{members}");
        std::fs::write(&path, &joining).unwrap();
        let config = Config::load(&path).unwrap();
        assert!(config.joins_through_admin_api() && !config.is_bootstrap_node());
        let member = joining.replace("node_id = 4", "node_id = 1");
        std::fs::write(&path, &member).unwrap();
        assert!(!Config::load(&path).unwrap().joins_through_admin_api(), "members ignore join");
        let regions =
            format!("{base}join = [\"kms-0:8300\"]\n[regions.us-east-1]\nendpoint = \"kms.us:8300\"\n");
        std::fs::write(&path, regions).unwrap();
        assert_eq!(Config::load(&path).unwrap().regions["us-east-1"].all_endpoints(), ["kms.us:8300"]);
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let dev = Config::dev("/tmp/x".into(), "127.0.0.1:8300".parse().unwrap()).unwrap();
        assert!(dev.validate().is_ok() && dev.is_bootstrap_node());
        assert!(Config::dev("/tmp/x".into(), "0.0.0.0:8300".parse().unwrap()).is_err());
        let mut bad = dev.clone();
        bad.account = "12".into();
        assert!(bad.validate().is_err());
        let mut bad = dev;
        bad.node_id = 7;
        assert!(bad.validate().is_err());
    }
}
