//! The replicated state as the domain sees it: an ordered key-value map.
//!
//! kms-core decides what the keys and values mean; kms-replication decides how they are stored
//! and replicated (RocksDB behind Raft). Keeping the seam here means the domain rules are tested
//! without a database, and the storage engine never learns what a KMS key is.

use std::fmt;

/// A failure of the storage engine underneath the state (I/O, corruption). Never carries data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// Key-value pairs in key order, as a scan returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access to the applied state.
pub trait StateRead {
    /// The value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries with `start <= key < end`, in ascending key order, at most `limit` of them.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Entries, StoreError>;
}

/// Write access while one committed command is applied.
///
/// Writes are buffered and become visible (to later commands and to readers) atomically, together
/// with the Raft applied index, once `apply` returns. Reads made through the same handle during
/// `apply` see the state as it was before this command: an application must read what it needs
/// first and write afterwards.
pub trait StateWrite: StateRead {
    fn put(&mut self, key: &[u8], value: &[u8]);
    fn delete(&mut self, key: &[u8]);
}

/// The replicated application: turns one committed command into writes and a response.
///
/// `apply` must be deterministic (same state + same command = same writes and response on every
/// node), so anything random or time-dependent travels inside the command, chosen by the proposer.
/// It must not fail halfway: validate with reads, then write, and report a rejected command in the
/// response bytes rather than by leaving partial writes behind.
pub trait StateMachineApp: Send + Sync + 'static {
    fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8>;
}
