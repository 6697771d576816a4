//! The replicated state machine: committed entries applied to RocksDB through the application's
//! [`StateMachineApp`].
//!
//! The entries openraft hands over in one `apply` call are applied into one WriteBatch, written
//! once together with the last-applied log id (and membership): one RocksDB write (one WAL
//! record) for the lot rather than one per entry, which was a measurable share of every node's
//! CPU under CreateKey load. Command N+1 still reads what N wrote, through the batch's overlay
//! of pending writes, and no response is sent before the write that holds its entry is done,
//! so a client never reads an older state than its write's, and `applied_state` never reports
//! an entry whose effects are not in the same atomic write. Those writes are not fsynced; after
//! a crash the state falls back to a consistent earlier point and openraft re-applies the rest
//! from the (durable) log.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use kms_core::store::{StateMachineApp, StateRead, StateWrite, StoreError};
use openraft::storage::{ApplyResponder, EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use rocksdb::{ColumnFamily, DB, IteratorMode, WriteBatch};
use tokio::sync::Mutex;

use crate::db::{self, CF_SM_DATA, CF_SM_META, Db};
use crate::reader::{self, KvPairs, StateVersion};
use crate::snapshot::{self, KEY_LAST_APPLIED, KEY_MEMBERSHIP, SnapshotBuilder};
use crate::types::{
    Entry, LogId, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};

/// A group is written out once it holds this many entries or bytes, so that a long backlog
/// (a node catching up) neither holds its responses back nor its writes in memory for long.
const MAX_GROUP_ENTRIES: usize = 256;
const MAX_GROUP_BYTES: usize = 4 << 20;

/// The write handle given to `StateMachineApp::apply`, for a group of entries written together.
/// Reads see the state before the current command: the database plus the writes of the
/// group's earlier entries (`pending`); the current command's own writes wait in `current`.
struct ApplyBatch<'a> {
    db: &'a DB,
    version: &'a StateVersion,
    data_cf: &'a ColumnFamily,
    meta_cf: &'a ColumnFamily,
    batch: WriteBatch,
    /// Data writes of the group's earlier entries: `None` is a delete.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    current: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    last_applied: Option<LogId>,
    entries: usize,
}

impl<'a> ApplyBatch<'a> {
    fn new(db: &'a DB, version: &'a StateVersion) -> io::Result<Self> {
        Ok(Self {
            db,
            version,
            data_cf: db::cf(db, CF_SM_DATA)?,
            meta_cf: db::cf(db, CF_SM_META)?,
            batch: WriteBatch::default(),
            pending: BTreeMap::new(),
            current: Vec::new(),
            last_applied: None,
            entries: 0,
        })
    }

    /// Ends the current entry: its writes become visible to the next one.
    fn entry_applied(&mut self, log_id: LogId) {
        self.pending.extend(self.current.drain(..));
        self.last_applied = Some(log_id);
        self.entries += 1;
    }

    fn is_full(&self) -> bool {
        self.entries >= MAX_GROUP_ENTRIES || self.batch.size_in_bytes() >= MAX_GROUP_BYTES
    }

    /// Writes the group's effects with its last applied log id, atomically, and starts an empty
    /// group.
    fn commit(&mut self) -> io::Result<()> {
        let Some(last_applied) = self.last_applied.take() else { return Ok(()) };
        let mut batch = std::mem::take(&mut self.batch);
        batch.put_cf(self.meta_cf, KEY_LAST_APPLIED, db::encode(&Some(last_applied), "last applied log id")?);
        self.pending.clear();
        self.entries = 0;
        db::write(self.db, batch, false, "apply committed entries")?;
        self.version.advance();
        Ok(())
    }

    /// The highest node id ever in the membership, as of the current entry (0 if unknown).
    fn highest_node_id(&self) -> io::Result<u64> {
        let bytes = self.get(KEY_HIGHEST_NODE_ID).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(decode_node_id(bytes))
    }
}

impl StateRead for ApplyBatch<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => reader::get(self.db, key),
        }
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        if self.pending.is_empty() || limit == 0 || start >= end {
            return reader::scan(self.db, start, end, limit);
        }
        let pending = self.pending.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        // Every pending delete in the range may hide one stored entry: read that many more, so
        // the first `limit` of the merged view are all there.
        let deletes = pending.clone().filter(|(_, value)| value.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            reader::scan(self.db, start, end, limit.saturating_add(deletes))?.into_iter().collect();
        for (key, value) in pending {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl StateWrite for ApplyBatch<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.data_cf, key, value);
        self.current.push((key.to_vec(), Some(value.to_vec())));
    }

    fn delete(&mut self, key: &[u8]) {
        self.batch.delete_cf(self.data_cf, key);
        self.current.push((key.to_vec(), None));
    }
}

/// The state machine of one node.
/// Reserved key in the state data: the highest node id that was ever a member of the region.
/// Kept with the application's state (so snapshots carry it to new nodes) under a prefix the
/// application never uses (its keys are printable prefixes such as `k/` and `a/`); it lets the
/// leader refuse to reuse the id of a removed node.
pub(crate) const KEY_HIGHEST_NODE_ID: &[u8] = b"\x00kms-replication/highest-node-id";

/// The highest node id ever in the region's membership, as applied on this node (0 if unknown).
pub(crate) fn highest_node_id(db: &DB) -> io::Result<u64> {
    let bytes = reader::get(db, KEY_HIGHEST_NODE_ID).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(decode_node_id(bytes))
}

fn decode_node_id(bytes: Option<Vec<u8>>) -> u64 {
    bytes.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map_or(0, u64::from_be_bytes)
}

pub(crate) struct StateMachine {
    db: Db,
    app: Arc<dyn StateMachineApp>,
    /// Advanced after every write to the state; shared with the region's readers.
    version: StateVersion,
    /// Shared with snapshot builders: see [`SnapshotBuilder::current_lock`].
    current_snapshot_lock: Arc<Mutex<()>>,
    /// Set while openraft reads the node's initial state (see [`Self::starting`]).
    starting: Arc<AtomicBool>,
}

/// Held by the node that starts a state machine: [`Started::mark`] it once `Raft::new` returned.
pub(crate) struct Started(Arc<AtomicBool>);

impl Started {
    pub(crate) fn mark(self) {
        self.0.store(false, Ordering::Release);
    }
}

impl StateMachine {
    pub(crate) fn new(db: Db, app: Arc<dyn StateMachineApp>) -> Self {
        Self {
            db,
            app,
            version: StateVersion::default(),
            current_snapshot_lock: Arc::new(Mutex::new(())),
            starting: Arc::default(),
        }
    }

    /// The count of this machine's writes, for the region's readers.
    pub(crate) fn version(&self) -> StateVersion {
        self.version.clone()
    }

    /// A state machine for `Raft::new`, which reads the current snapshot while it loads the
    /// node's initial state, for its metadata only (the state machine is persistent, so there is
    /// never one to restore: a recorded snapshot never goes past the applied state). Until the
    /// returned [`Started`] is marked, `get_current_snapshot` answers with the metadata alone
    /// rather than dumping the whole state, which would cost start-up time and memory in
    /// proportion to the number of keys. Should a snapshot be wanted for a follower in that
    /// instant, the network refuses to send empty data and openraft asks again.
    pub(crate) fn starting(db: Db, app: Arc<dyn StateMachineApp>) -> (Self, Started) {
        let starting = Arc::new(AtomicBool::new(true));
        let machine = Self { starting: starting.clone(), ..Self::new(db, app) };
        (machine, Started(starting))
    }

    /// How far the state goes: the last applied log id and the membership, read together.
    pub(crate) fn applied_meta(&self) -> io::Result<SnapshotMeta> {
        snapshot::applied_meta(&self.db, &self.db.snapshot())
    }

    /// Applies `entry` into `group` (written by [`ApplyBatch::commit`]); returns the response.
    fn apply_into(&self, group: &mut ApplyBatch<'_>, entry: &Entry) -> io::Result<Vec<u8>> {
        let response = match &entry.payload {
            EntryPayload::Blank => Vec::new(),
            EntryPayload::Normal(command) => self.app.apply(&command.0, group),
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
                group.batch.put_cf(group.meta_cf, KEY_MEMBERSHIP, db::encode(&stored, "membership")?);
                let in_membership = membership.nodes().map(|(id, _)| *id).max().unwrap_or(0);
                let highest = group.highest_node_id()?.max(in_membership);
                group.put(KEY_HIGHEST_NODE_ID, &highest.to_be_bytes());
                Vec::new()
            }
        };
        group.entry_applied(entry.log_id);
        Ok(response)
    }

    /// Applies one entry and commits its effects with the new applied id; returns the response.
    #[cfg(test)]
    fn apply_entry(&self, entry: &Entry) -> io::Result<Vec<u8>> {
        let mut group = ApplyBatch::new(&self.db, &self.version)?;
        let response = self.apply_into(&mut group, entry)?;
        group.commit()?;
        Ok(response)
    }

    /// Replaces the whole state with a snapshot's, in one synced batch: a crash leaves either the
    /// old state or the new one, never a mix.
    fn install_blocking(db: &DB, meta: &SnapshotMeta, data: &SnapshotData) -> io::Result<()> {
        let pairs = snapshot::decode_pairs(data)?;
        let data_cf = db::cf(db, CF_SM_DATA)?;
        let meta_cf = db::cf(db, CF_SM_META)?;
        let mut batch = WriteBatch::default();
        for item in db.iterator_cf(data_cf, IteratorMode::Start) {
            let (key, _) = item.map_err(|e| db::io_err("list state to replace", e))?;
            batch.delete_cf(data_cf, key);
        }
        for (key, value) in pairs {
            batch.put_cf(data_cf, key, value);
        }
        batch.put_cf(meta_cf, KEY_LAST_APPLIED, db::encode(&meta.last_log_id, "last applied log id")?);
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, db::encode(&meta.last_membership, "membership")?);
        snapshot::store_meta(db, &mut batch, meta)?;
        db::write(db, batch, true, "install snapshot")
    }
}

/// Writes `group` and only then answers the proposers of its entries. (Without the send a
/// proposer's `client_write` would never return.)
fn write_group(
    group: &mut ApplyBatch<'_>,
    replies: &mut Vec<(ApplyResponder<TypeConfig>, Vec<u8>)>,
) -> io::Result<()> {
    group.commit()?;
    for (responder, response) in replies.drain(..) {
        responder.send(Response(response));
    }
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let meta = self.applied_meta()?;
        Ok((meta.last_log_id, meta.last_membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut group = ApplyBatch::new(&self.db, &self.version)?;
        let mut replies = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let response = self.apply_into(&mut group, &entry)?;
            if let Some(responder) = responder {
                replies.push((responder, response));
            }
            if group.is_full() {
                write_group(&mut group, &mut replies)?;
            }
        }
        write_group(&mut group, &mut replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.db.clone(), current_lock: self.current_snapshot_lock.clone() }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let _guard = self.current_snapshot_lock.lock().await;
        let db = self.db.clone();
        let meta_owned = meta.clone();
        tokio::task::spawn_blocking(move || Self::install_blocking(&db, &meta_owned, &snapshot))
            .await
            .map_err(|e| io::Error::other(format!("snapshot install task: {e}")))??;
        self.version.advance();
        tracing::info!(
            last_log_index = meta.last_log_id.as_ref().map(|id| id.index),
            "installed state-machine snapshot"
        );
        Ok(())
    }

    /// The state as a snapshot, once one was built or installed (before, openraft has no log
    /// purged and sends entries instead). See the `snapshot` module for why it is made here.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let Some(meta) = snapshot::stored_meta(&self.db)? else { return Ok(None) };
        if self.starting.load(Ordering::Acquire) {
            return Ok(Some(Snapshot { meta, snapshot: SnapshotData::new() }));
        }
        let db = self.db.clone();
        let snapshot = tokio::task::spawn_blocking(move || snapshot::materialize(&db))
            .await
            .map_err(|e| io::Error::other(format!("snapshot materialize task: {e}")))??;
        tracing::info!(
            last_log_index = snapshot.meta.last_log_id.as_ref().map(|id| id.index),
            bytes = snapshot.snapshot.len(),
            "materialized state-machine snapshot to send"
        );
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::storage::RaftSnapshotBuilder;
    use openraft::testing::{log_id, membership_ent};

    use super::*;
    use crate::types::Command;

    /// Puts each command under its own bytes.
    struct EchoApp;

    impl StateMachineApp for EchoApp {
        fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
            state.put(command, command);
            Vec::new()
        }
    }

    fn apply_puts(machine: &StateMachine, indexes: std::ops::Range<u64>) {
        for index in indexes {
            let payload = EntryPayload::Normal(Command(format!("k{index:03}").into_bytes()));
            machine.apply_entry(&Entry { log_id: log_id::<TypeConfig>(1, 1, index), payload }).unwrap();
        }
    }

    /// Runs one of `put K V`, `del K`, `copy FROM TO` (writes what it reads) or
    /// `scan START END LIMIT TO` (writes the keys it sees, comma-separated).
    struct ScriptApp;

    impl StateMachineApp for ScriptApp {
        fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
            let command = String::from_utf8(command.to_vec()).unwrap();
            match command.split(' ').collect::<Vec<_>>()[..] {
                ["put", key, value] => state.put(key.as_bytes(), value.as_bytes()),
                ["del", key] => state.delete(key.as_bytes()),
                ["copy", from, to] => {
                    let value = state.get(from.as_bytes()).unwrap().unwrap_or_else(|| b"-".to_vec());
                    state.put(to.as_bytes(), &value);
                }
                ["scan", start, end, limit, to] => {
                    let pairs = state.scan(start.as_bytes(), end.as_bytes(), limit.parse().unwrap()).unwrap();
                    let keys: Vec<_> = pairs.iter().map(|(k, _)| String::from_utf8_lossy(k)).collect();
                    state.put(to.as_bytes(), keys.join(",").as_bytes());
                }
                _ => panic!("bad script {command}"),
            }
            Vec::new()
        }
    }

    /// Applies `commands` as one `apply` call (one group), from log index `first`.
    async fn apply_group(machine: &mut StateMachine, first: u64, commands: &[&str]) {
        let entries: Vec<Result<EntryResponder<TypeConfig>, io::Error>> = (first..)
            .zip(commands)
            .map(|(index, command)| {
                let payload = EntryPayload::Normal(Command(command.as_bytes().to_vec()));
                Ok((Entry { log_id: log_id::<TypeConfig>(1, 1, index), payload }, None))
            })
            .collect();
        machine.apply(futures::stream::iter(entries)).await.unwrap();
    }

    #[tokio::test]
    async fn entries_applied_together_read_what_the_earlier_ones_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let db = db::open(dir.path()).unwrap();
        let mut machine = StateMachine::new(db.clone(), Arc::new(ScriptApp));
        let version = machine.version();
        assert_eq!(version.current(), 0);
        apply_group(&mut machine, 1, &["put k1 a", "put k2 b", "put k3 c", "put k4 d", "put k5 e"]).await;
        assert_eq!(version.current(), 1, "one group is one write");
        apply_group(
            &mut machine,
            6,
            &[
                "del k1",
                "put k2 B",
                "del k3",
                "put k0 z",
                "copy k2 x1",
                "copy k1 x2",
                // Two stored keys deleted in this group: the first three still come out right.
                "scan k l 3 x3",
                "put k6 f",
                "scan k l 10 x4",
                "del k6",
                "scan k6 l 10 x5",
            ],
        )
        .await;
        let get =
            |key: &str| reader::get(&db, key.as_bytes()).unwrap().map(|v| String::from_utf8(v).unwrap());
        assert_eq!(get("k1"), None);
        assert_eq!(get("k2").as_deref(), Some("B"));
        assert_eq!(get("x1").as_deref(), Some("B"), "a read sees the group's earlier put");
        assert_eq!(get("x2").as_deref(), Some("-"), "a read sees the group's earlier delete");
        assert_eq!(get("x3").as_deref(), Some("k0,k2,k4"));
        assert_eq!(get("x4").as_deref(), Some("k0,k2,k4,k5,k6"));
        assert_eq!(get("x5").as_deref(), Some(""));
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id::<TypeConfig>(1, 1, 16)));
        assert_eq!(version.current(), 2);
    }

    #[tokio::test]
    async fn a_long_backlog_is_written_in_several_groups_that_read_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = db::open(dir.path()).unwrap();
        let mut machine = StateMachine::new(db.clone(), Arc::new(ScriptApp));
        let mut commands = vec!["put first 1".to_string()];
        commands.extend((0..MAX_GROUP_ENTRIES).map(|i| format!("put f{i} x")));
        commands.push("copy first after".to_string());
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        apply_group(&mut machine, 1, &commands).await;
        assert_eq!(reader::get(&db, b"after").unwrap().as_deref(), Some(&b"1"[..]));
        let last = commands.len() as u64;
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id::<TypeConfig>(1, 1, last)));
    }

    #[tokio::test]
    async fn a_built_snapshot_records_metadata_and_the_data_is_made_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = db::open(dir.path()).unwrap();
        // A store of the earlier layout: the data of a built snapshot kept beside its metadata.
        let meta_cf = db::cf(&db, CF_SM_META).unwrap();
        db.put_cf(meta_cf, b"snapshot_data", vec![0u8; 1 << 20]).unwrap();

        let (mut machine, started) = StateMachine::starting(db.clone(), Arc::new(EchoApp));
        assert!(machine.get_current_snapshot().await.unwrap().is_none(), "nothing built yet");
        machine.apply_entry(&membership_ent::<TypeConfig>(1, 1, 1, vec![BTreeSet::from([1])])).unwrap();
        apply_puts(&machine, 2..12);

        let built = machine.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 11)));
        assert!(built.snapshot.is_empty(), "building must not dump the state");
        assert!(
            db.get_cf(meta_cf, b"snapshot_data").unwrap().is_none(),
            "the earlier layout's data is dropped"
        );

        // While the node starts, openraft gets the metadata alone.
        let at_start = machine.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(at_start.meta, built.meta);
        assert!(at_start.snapshot.is_empty());

        // Once it runs, the snapshot is the state now, with metadata from the same view.
        started.mark();
        apply_puts(&machine, 12..15);
        let sent = machine.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(sent.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 14)));
        assert_eq!(sent.meta.last_membership, built.meta.last_membership);
        let pairs = snapshot::decode_pairs(&sent.snapshot).unwrap();
        let keys: Vec<_> =
            pairs.iter().filter(|(k, _)| k.starts_with(b"k")).map(|(k, _)| k.to_vec()).collect();
        let expected: Vec<_> = (2..15u64).map(|i| format!("k{i:03}").into_bytes()).collect();
        assert_eq!(keys, expected);

        // Installing it elsewhere gives that state and records its metadata.
        let other_dir = tempfile::tempdir().unwrap();
        let mut other = StateMachine::new(db::open(other_dir.path()).unwrap(), Arc::new(EchoApp));
        other.install_snapshot(&sent.meta, sent.snapshot.clone()).await.unwrap();
        assert_eq!(other.version().current(), 1, "installing a snapshot changes the state");
        assert_eq!(
            other.applied_state().await.unwrap(),
            (sent.meta.last_log_id, sent.meta.last_membership.clone())
        );
        assert_eq!(other.get_current_snapshot().await.unwrap().unwrap().snapshot, sent.snapshot);
    }
}
