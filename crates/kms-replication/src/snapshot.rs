//! Snapshots: a consistent dump of the state-machine data plus its Raft metadata.
//!
//! Data format (version 1): the magic `KMSSNAP1`, then for every key in ascending order
//! `u32 BE key length, key, u32 BE value length, value`. The metadata (last log id, membership)
//! travels beside it as openraft's `SnapshotMeta`.
//!
//! Known weakness: a snapshot is one in-memory byte string, and the current snapshot is stored
//! as one RocksDB value. Fine for the key counts of a KMS region (keys and policies, not data);
//! a very large state would want a file-backed snapshot instead.

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
const KEY_SNAPSHOT_DATA: &[u8] = b"snapshot_data";

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

/// Adds "this is the current snapshot" to `batch`; write it synced so `get_current_snapshot`
/// survives a crash.
pub(crate) fn store_current(db: &rocksdb::DB, batch: &mut WriteBatch, snapshot: &Snapshot) -> io::Result<()> {
    let cf = db::cf(db, CF_SM_META)?;
    batch.put_cf(cf, KEY_SNAPSHOT_META, db::encode(&snapshot.meta, "snapshot meta")?);
    batch.put_cf(cf, KEY_SNAPSHOT_DATA, &snapshot.snapshot);
    Ok(())
}

/// The last built or installed snapshot, if any.
pub(crate) fn load_current(db: &rocksdb::DB) -> io::Result<Option<Snapshot>> {
    let meta: Option<SnapshotMeta> = db::get_meta(db, CF_SM_META, KEY_SNAPSHOT_META, "snapshot meta")?;
    let Some(meta) = meta else { return Ok(None) };
    let cf = db::cf(db, CF_SM_META)?;
    let data = db
        .get_cf(cf, KEY_SNAPSHOT_DATA)
        .map_err(|e| db::io_err("read snapshot data", e))?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "snapshot meta without data"))?;
    Ok(Some(Snapshot { meta, snapshot: data }))
}

fn current_last_log_id(db: &rocksdb::DB) -> io::Result<Option<LogId>> {
    let meta: Option<SnapshotMeta> = db::get_meta(db, CF_SM_META, KEY_SNAPSHOT_META, "snapshot meta")?;
    Ok(meta.and_then(|m| m.last_log_id))
}

/// Builds snapshots from a RocksDB point-in-time view, so data and metadata agree even while
/// the state machine keeps applying.
pub(crate) struct SnapshotBuilder {
    pub(crate) db: Db,
    /// Serializes "is mine newer than the stored one? then store it" against installs.
    pub(crate) current_lock: Arc<Mutex<()>>,
}

impl SnapshotBuilder {
    fn build_blocking(db: &rocksdb::DB) -> io::Result<Snapshot> {
        let view = db.snapshot();
        let meta_cf = db::cf(db, CF_SM_META)?;
        let data_cf = db::cf(db, CF_SM_DATA)?;
        let read_meta = |key: &[u8], what: &str| -> io::Result<Option<Vec<u8>>> {
            view.get_cf(meta_cf, key).map_err(|e| db::io_err(what, e))
        };
        let last_log_id: Option<LogId> = match read_meta(KEY_LAST_APPLIED, "read last applied")? {
            Some(bytes) => db::decode(&bytes, "last applied log id")?,
            None => None,
        };
        let last_membership: StoredMembership = match read_meta(KEY_MEMBERSHIP, "read membership")? {
            Some(bytes) => db::decode(&bytes, "membership")?,
            None => StoredMembership::default(),
        };
        let pairs = view
            .iterator_cf(data_cf, IteratorMode::Start)
            .map(|item| item.map_err(|e| db::io_err("iterate state for snapshot", e)));
        let data = encode_pairs(pairs)?;
        Ok(Snapshot { meta: SnapshotMeta { last_log_id, last_membership }, snapshot: data })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let db = self.db.clone();
        let snapshot = tokio::task::spawn_blocking(move || Self::build_blocking(&db))
            .await
            .map_err(|e| io::Error::other(format!("snapshot build task: {e}")))??;

        let _guard = self.current_lock.lock().await;
        if current_last_log_id(&self.db)? < snapshot.meta.last_log_id {
            let mut batch = WriteBatch::default();
            store_current(&self.db, &mut batch, &snapshot)?;
            db::write(&self.db, batch, true, "store built snapshot")?;
        }
        tracing::info!(
            last_log_index = snapshot.meta.last_log_id.as_ref().map(|id| id.index),
            bytes = snapshot.snapshot.len(),
            "built state-machine snapshot"
        );
        Ok(snapshot)
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
