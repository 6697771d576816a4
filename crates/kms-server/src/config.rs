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
    pub node_id: u64,
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
    pub root_key_file: PathBuf,
    /// The voters of a brand-new region, by node id (`1 = "10.0.0.1:8301"`). Only the node with
    /// the lowest id initializes; on a node with existing state this is ignored.
    #[serde(default)]
    pub initial_members: BTreeMap<u64, String>,
    /// How often due deletions and rotations are looked for.
    #[serde(default = "default_maintenance_interval")]
    pub maintenance_interval_secs: u64,
    /// Raft timing and snapshot policy (`[raft]`); the defaults suit a LAN.
    #[serde(default)]
    pub raft: RaftTuning,
    /// The AWS-compatible endpoint (AWS JSON 1.1 with SigV4, for the AWS CLI and SDKs); off
    /// when absent. Plain HTTP: put TLS in front of it beyond loopback.
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

fn default_maintenance_interval() -> u64 {
    30
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("parsing the configuration file {}", path.display()))?;
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
            root_key_file: data_dir.join("root.key"),
            data_dir,
            listen,
            raft_listen,
            raft_advertise: None,
            region: "dev-1".into(),
            account: "000000000000".into(),
            initial_members: BTreeMap::from([(1, raft_listen.to_string())]),
            maintenance_interval_secs: 5,
            raft: RaftTuning::default(),
            aws_listen: Some(SocketAddr::new(listen.ip(), listen.port().wrapping_add(2))),
            aws_credentials: BTreeMap::from([(
                kms_api::aws::DEV_ACCESS_KEY_ID.to_string(),
                AwsCredential {
                    secret_access_key: kms_api::aws::DEV_SECRET_ACCESS_KEY.to_string(),
                    principal: kms_api::aws::DEV_PRINCIPAL.to_string(),
                },
            )]),
            metrics_listen: Some(SocketAddr::new(listen.ip(), listen.port().wrapping_add(3))),
        })
    }

    pub fn raft_advertise(&self) -> String {
        self.raft_advertise.clone().unwrap_or_else(|| self.raft_listen.to_string())
    }

    pub fn validate(&self) -> Result<()> {
        if self.node_id == 0 {
            bail!("node_id must be at least 1");
        }
        if self.region.is_empty() || self.region.contains(':') {
            bail!("region must be a non-empty name without ':' (it appears in ARNs)");
        }
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account must be 12 digits, as in AWS ARNs (got '{}')", self.account);
        }
        if !self.initial_members.is_empty() && !self.initial_members.contains_key(&self.node_id) {
            bail!("initial_members does not contain this node's id {}", self.node_id);
        }
        if let Err(rule) = self.raft.validate() {
            bail!("[raft] {rule}");
        }
        if let Some(metrics) = self.metrics_listen
            && [Some(self.listen), Some(self.raft_listen), self.aws_listen].contains(&Some(metrics))
        {
            bail!("metrics_listen {metrics} is already the address of another listener");
        }
        if self.aws_listen.is_some() && self.aws_credentials.is_empty() {
            bail!("aws_listen is set but [aws_credentials] is empty: nobody could call the AWS endpoint");
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

    /// The AWS endpoint's settings: requests are signed for this node's region.
    pub fn aws_config(&self) -> kms_api::aws::AwsConfig {
        let mut credentials = kms_api::aws::Credentials::new();
        for (access_key_id, credential) in &self.aws_credentials {
            credentials.insert(access_key_id, &credential.secret_access_key, &credential.principal);
        }
        kms_api::aws::AwsConfig { region: self.region.clone(), credentials }
    }

    /// Whether this node is the one that initializes a brand-new region.
    pub fn is_bootstrap_node(&self) -> bool {
        self.initial_members.keys().next() == Some(&self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    /// The required keys of a node's configuration; tests append what they exercise.
    const MINIMAL: &str = r#"
node_id = 1
data_dir = "/var/lib/kms"
listen = "127.0.0.1:8300"
raft_listen = "127.0.0.1:8301"
region = "eu-west-1"
account = "123456789012"
root_key_file = "/etc/kms/root.key"
"#;

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
    fn the_shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kmsd.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.initial_members.len(), 3);
        assert!(config.aws_listen.is_some());
        assert_eq!(config.aws_credentials.len(), 1);
        assert!(config.metrics_listen.is_some());
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
