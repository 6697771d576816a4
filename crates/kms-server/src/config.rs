//! kmsd configuration: a TOML file, overridden by environment variables, overridden by flags.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
        Ok(())
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
