//! The crate's one error type. Messages say what failed and while doing what; they never carry
//! command or response bytes.

use std::time::Duration;

/// Why a region operation failed.
///
/// [`NotLeader`](Self::NotLeader), [`NoLeader`](Self::NoLeader) and [`Timeout`](Self::Timeout) are
/// transient (see [`is_retryable`](Self::is_retryable)); a timed-out proposal has an unknown
/// outcome (it may still commit), so commands must be idempotent.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The node that was asked is not the leader and could not hand the request on.
    #[error("node {node_id} is not the leader while {doing} (leader: {leader_id:?})")]
    NotLeader { node_id: u64, leader_id: Option<u64>, doing: &'static str },

    /// No leader is known (election in progress, or no quorum).
    #[error("no leader known to node {node_id} while {doing}")]
    NoLeader { node_id: u64, doing: &'static str },

    /// The operation did not finish in time.
    #[error("timed out after {after:?} while {doing}")]
    Timeout { doing: &'static str, after: Duration },

    /// A peer could not be reached or answered with a transport error.
    #[error("raft transport to node {peer} failed while {doing}: {message}")]
    Transport { peer: u64, doing: &'static str, message: String },

    /// The node's RocksDB failed (open, read, write).
    #[error("storage failed while {doing}: {message}")]
    Storage { doing: &'static str, message: String },

    /// The request is invalid (e.g. a bad address or membership); retrying will not help.
    #[error("invalid request while {doing}: {message}")]
    Invalid { doing: &'static str, message: String },

    /// Raft stopped or hit an unrecoverable error; the node must be restarted.
    #[error("raft is stopped or failed while {doing}: {message}")]
    Fatal { doing: &'static str, message: String },
}

impl ReplicationError {
    /// Whether the caller may retry (possibly after a short backoff) and expect success.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::NotLeader { .. } | Self::NoLeader { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    pub(crate) fn fatal(doing: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Fatal { doing, message: e.to_string() }
    }

    pub(crate) fn storage(doing: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Storage { doing, message: e.to_string() }
    }
}
