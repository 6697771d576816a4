//! Reads of the applied state straight from RocksDB, shared by the public reader and by the
//! state-machine write handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kms_core::store::{StateRead, StoreError};
use rocksdb::{DB, Direction, IteratorMode};

use crate::db::{CF_SM_DATA, Db};

/// Key-value pairs in ascending key order, as `StateRead::scan` returns them.
pub(crate) type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

fn store_err(doing: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("{doing}: {e}"))
}

/// Counts the writes to this node's applied state, so a reader can tell without reading that
/// nothing changed since it last looked ([`crate::Region::state_version`]).
///
/// The state machine advances it after each write and before it answers the proposers of what
/// it wrote, so once a client has its answer every reader sees the new count. A reader takes the
/// count *before* it reads: what it then reads is at least as new as that count, and stays
/// current for as long as the count stays the same.
#[derive(Clone, Debug, Default)]
pub(crate) struct StateVersion(Arc<AtomicU64>);

impl StateVersion {
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Call after every write to the state's column family, before telling anyone of it.
    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

pub(crate) fn get(db: &DB, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let cf = db.cf_handle(CF_SM_DATA).ok_or_else(|| StoreError::new("state column family missing"))?;
    db.get_cf(cf, key).map_err(|e| store_err("read state", e))
}

pub(crate) fn scan(db: &DB, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
    let cf = db.cf_handle(CF_SM_DATA).ok_or_else(|| StoreError::new("state column family missing"))?;
    let mut out = Vec::new();
    if limit == 0 || start >= end {
        return Ok(out);
    }
    for item in db.iterator_cf(cf, IteratorMode::From(start, Direction::Forward)) {
        let (key, value) = item.map_err(|e| store_err("scan state", e))?;
        if key.as_ref() >= end {
            break;
        }
        out.push((key.into_vec(), value.into_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Reads the latest applied state of this node (not linearizable by itself: call
/// `Region::sync_reads` first when a read must see every write committed before it).
///
/// Holding a reader keeps the node's database open, so drop readers before reopening the same
/// data directory in the same process.
#[derive(Clone)]
pub struct RegionReader {
    db: Db,
}

impl RegionReader {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

impl std::fmt::Debug for RegionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegionReader")
    }
}

impl StateRead for RegionReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        get(&self.db, key)
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        scan(&self.db, start, end, limit)
    }
}

// The public API promises a `Send + Sync + 'static` reader; fail the build if that ever breaks.
const _: fn() = || {
    fn assert_bounds<T: Send + Sync + 'static>() {}
    assert_bounds::<RegionReader>();
};
