//! Configuration of one node of a region.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{CertificateDer, ClientTlsConfig, ServerTlsConfig};

/// Raft timing and snapshot policy. Deserializable so that kmsd's `[raft]` configuration section
/// is this very struct (every field optional; the defaults suit a LAN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept after a snapshot, so a slightly lagging follower catches up from the log
    /// rather than by a full snapshot transfer.
    pub logs_kept_after_snapshot: u64,
    /// Upper bound of a proposal, a forwarded proposal or a read barrier: a node without a leader
    /// or quorum answers after at most this long.
    pub request_timeout_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            snapshot_logs_since_last: 5000,
            logs_kept_after_snapshot: 1000,
            request_timeout_ms: 10_000,
        }
    }
}

impl RaftTuning {
    /// Refuses settings under which Raft cannot work, saying which rule is broken.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval_ms == 0
            || self.election_timeout_min_ms <= self.heartbeat_interval_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return Err(
                "needs 0 < heartbeat_interval_ms < election_timeout_min_ms < election_timeout_max_ms".into(),
            );
        }
        if self.request_timeout_ms == 0 || self.snapshot_logs_since_last == 0 {
            return Err("request_timeout_ms and snapshot_logs_since_last must be at least 1".into());
        }
        Ok(())
    }
}

/// How one node of a region runs. `Default` gives LAN values and a loopback listener; set at
/// least `node_id`, `data_dir` and the two addresses.
#[derive(Debug, Clone)]
pub struct RegionConfig {
    /// The region's name (kmsd's `region`), printable ASCII. Every Raft message carries it with
    /// the node id it is for, and a node refuses messages meant for another region or node.
    pub region: String,
    /// This node's Raft id. Never reuse an id after a node was removed from the region.
    pub node_id: u64,
    /// RocksDB lives in `data_dir/raft`.
    pub data_dir: PathBuf,
    /// Where this node serves Raft RPCs. Port 0 picks a free port; see `Region::raft_addr`.
    pub raft_listen: SocketAddr,
    /// The address peers use to reach this node, e.g. "10.0.0.7:7001".
    pub raft_advertise: String,
    /// Timing and snapshot policy; operators set these (kmsd's `[raft]` section).
    pub tuning: RaftTuning,
    /// openraft's `install_snapshot_timeout`: 3/4 of it bounds the sending of each snapshot
    /// chunk. (Vote and append deadlines are derived by openraft from its own timeouts.)
    pub rpc_timeout_ms: u64,
    /// Mutual TLS between the nodes; plaintext when absent (loopback tests and dev only).
    pub tls: Option<TransportTls>,
}

/// Whether a verified certificate chain (leaf first) belongs to a node of this region.
pub type PeerCheck = Arc<dyn Fn(&[CertificateDer<'static>]) -> bool + Send + Sync>;

/// Mutual TLS on the Raft port. Both sides present a node certificate issued by the cluster CA;
/// the CA alone is not enough to be let in, since client certificates may come from the same CA:
/// `is_peer` must also recognise the certificate as a node's.
#[derive(Clone)]
pub struct TransportTls {
    /// This node's certificate, and the CA peers' certificates must chain to (required).
    pub server: ServerTlsConfig,
    /// The CA peers' server certificates must chain to, and this node's certificate as the client
    /// identity.
    pub client: ClientTlsConfig,
    pub is_peer: PeerCheck,
}

impl std::fmt::Debug for TransportTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportTls").finish_non_exhaustive()
    }
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            region: "local".to_string(),
            node_id: 1,
            data_dir: PathBuf::from("data"),
            raft_listen: SocketAddr::from(([127, 0, 0, 1], 7001)),
            raft_advertise: "127.0.0.1:7001".to_string(),
            tuning: RaftTuning::default(),
            rpc_timeout_ms: 2_000,
            tls: None,
        }
    }
}

impl RegionConfig {
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.tuning.request_timeout_ms)
    }

    /// The openraft configuration derived from this one, validated.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        openraft::Config {
            cluster_name: "kms-region".to_string(),
            heartbeat_interval: self.tuning.heartbeat_interval_ms,
            election_timeout_min: self.tuning.election_timeout_min_ms,
            election_timeout_max: self.tuning.election_timeout_max_ms,
            install_snapshot_timeout: self.rpc_timeout_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.tuning.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.tuning.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
    }
}
