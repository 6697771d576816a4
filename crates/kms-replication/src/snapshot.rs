//! Snapshots: the state machine is its own snapshot.
//!
//! The state lives in RocksDB, and every applied entry reaches the WAL in order with the log (one
//! database, one WAL: see `db.rs`). So building a snapshot for log compaction only records how
//! far the state goes: "everything up to log id X, with membership M", a few bytes written in
//! O(1) whatever the number of keys. Logs up to X may then be purged; a crash never loses what
//! they held, because the purge reaches the WAL after the applied writes it follows.
//!
//! The data is made only when a node must be sent a snapshot (a new learner, a follower behind
//! the purged log): [`materialize`] dumps the state from a RocksDB point-in-time view and reads
//! the metadata from the same view. That is the state as of a later log id than the recorded
//! one, which is as valid a snapshot, and openraft takes the log id it reports to the follower
//! from the snapshot it sends.
//!
//! Data format (version 1): the magic `KMSSNAP1`, then for every key in ascending order
//! `u32 BE key length, key, u32 BE value length, value`. The metadata (last log id, membership)
//! travels beside it as openraft's `SnapshotMeta`.
//!
//! Known weakness: a sent snapshot is one in-memory byte string, as large as the state. It is
//! made only for a node that needs it, never on the write path.

use std::io;
use std::sync::Arc;

use openraft::storage::RaftSnapshotBuilder;
use rocksdb::{IteratorMode, WriteBatch};
use tokio::sync::Mutex;

use crate::db::{self, CF_SM_DATA, CF_SM_META, Db};
use crate::types::{LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig};

const MAGIC: &[u8; 8] = b"KMSSNAP1";

pub(crate) const KEY_LAST_APPLIED: &[u8] = b"last_applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// Where stores before this layout kept a built snapshot's data; deleted when one is recorded.
const LEGACY_KEY_SNAPSHOT_DATA: &[u8] = b"snapshot_data";

/// Serializes key-value pairs (already in ascending key order).
pub(crate) fn encode_pairs<'a>(
    pairs: impl Iterator<Item = io::Result<(Box<[u8]>, Box<[u8]>)>> + 'a,
) -> io::Result<SnapshotData> {
    let mut out = MAGIC.to_vec();
    for pair in pairs {
        let (key, value) = pair?;
        put_chunk(&mut out, &key)?;
        put_chunk(&mut out, &value)?;
    }
    Ok(out)
}

fn put_chunk(out: &mut Vec<u8>, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::other("snapshot: key or value longer than 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Parses data written by [`encode_pairs`]; the whole input is validated before anything is
/// installed, so a truncated or corrupt snapshot changes nothing.
pub(crate) fn decode_pairs(data: &[u8]) -> io::Result<Vec<(&[u8], &[u8])>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot: {what}"));
    let mut rest =
        data.strip_prefix(MAGIC.as_slice()).ok_or_else(|| invalid("unknown format (bad magic)"))?;
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let (key, after_key) = split_chunk(rest).ok_or_else(|| invalid("truncated key"))?;
        let (value, after_value) = split_chunk(after_key).ok_or_else(|| invalid("truncated value"))?;
        pairs.push((key, value));
        rest = after_value;
    }
    Ok(pairs)
}

fn split_chunk(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len_bytes, rest) = input.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len_bytes)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Records `meta` as the current snapshot in `batch` (write it synced). Also drops the data
/// value that stores before this layout kept beside the metadata.
pub(crate) fn store_meta(db: &rocksdb::DB, batch: &mut WriteBatch, meta: &SnapshotMeta) -> io::Result<()> {
    let cf = db::cf(db, CF_SM_META)?;
    batch.put_cf(cf, KEY_SNAPSHOT_META, db::encode(meta, "snapshot meta")?);
    batch.delete_cf(cf, LEGACY_KEY_SNAPSHOT_DATA);
    Ok(())
}

/// The metadata of the last built or installed snapshot, if any.
pub(crate) fn stored_meta(db: &rocksdb::DB) -> io::Result<Option<SnapshotMeta>> {
    db::get_meta(db, CF_SM_META, KEY_SNAPSHOT_META, "snapshot meta")
}

/// How far the state in `view` goes: its last applied log id and membership.
pub(crate) fn applied_meta(db: &rocksdb::DB, view: &rocksdb::Snapshot<'_>) -> io::Result<SnapshotMeta> {
    let meta_cf = db::cf(db, CF_SM_META)?;
    let read = |key: &[u8], what: &str| -> io::Result<Option<Vec<u8>>> {
        view.get_cf(meta_cf, key).map_err(|e| db::io_err(what, e))
    };
    let last_log_id: Option<LogId> = match read(KEY_LAST_APPLIED, "read last applied")? {
        Some(bytes) => db::decode(&bytes, "last applied log id")?,
        None => None,
    };
    let last_membership: StoredMembership = match read(KEY_MEMBERSHIP, "read membership")? {
        Some(bytes) => db::decode(&bytes, "membership")?,
        None => StoredMembership::default(),
    };
    Ok(SnapshotMeta { last_log_id, last_membership })
}

/// The whole state and the metadata it matches, from one point-in-time view, so the two agree
/// while the state machine keeps applying.
pub(crate) fn materialize(db: &rocksdb::DB) -> io::Result<Snapshot> {
    let view = db.snapshot();
    let meta = applied_meta(db, &view)?;
    let data_cf = db::cf(db, CF_SM_DATA)?;
    let pairs = view
        .iterator_cf(data_cf, IteratorMode::Start)
        .map(|item| item.map_err(|e| db::io_err("iterate state for snapshot", e)));
    Ok(Snapshot { meta, snapshot: encode_pairs(pairs)? })
}

/// Builds snapshots for log compaction: records the applied state's metadata (module docs).
pub(crate) struct SnapshotBuilder {
    pub(crate) db: Db,
    /// Serializes "is mine newer than the stored one? then store it" against installs.
    pub(crate) current_lock: Arc<Mutex<()>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// Returns the metadata with empty data: openraft keeps only the metadata of a snapshot it
    /// built, and asks `get_current_snapshot` for the data when it has one to send.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let meta = applied_meta(&self.db, &self.db.snapshot())?;
        let _guard = self.current_lock.lock().await;
        if stored_meta(&self.db)?.and_then(|m| m.last_log_id) < meta.last_log_id {
            let mut batch = WriteBatch::default();
            store_meta(&self.db, &mut batch, &meta)?;
            db::write(&self.db, batch, true, "record built snapshot")?;
        }
        tracing::debug!(
            last_log_index = meta.last_log_id.as_ref().map(|id| id.index),
            "recorded state-machine snapshot"
        );
        Ok(Snapshot { meta, snapshot: SnapshotData::new() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_truncation_is_rejected() {
        let pairs: Vec<io::Result<(Box<[u8]>, Box<[u8]>)>> = vec![
            Ok((b"a".to_vec().into(), b"1".to_vec().into())),
            Ok((b"bb".to_vec().into(), Vec::new().into())),
        ];
        let data = encode_pairs(pairs.into_iter()).unwrap();
        let decoded = decode_pairs(&data).unwrap();
        assert_eq!(decoded, vec![(&b"a"[..], &b"1"[..]), (&b"bb"[..], &b""[..])]);
        assert!(decode_pairs(&data[..data.len() - 1]).is_err());
        assert!(decode_pairs(b"NOTASNAP").is_err());
    }
}
