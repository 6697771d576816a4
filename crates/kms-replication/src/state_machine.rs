//! The replicated state machine: committed entries applied to RocksDB through the application's
//! [`StateMachineApp`].
//!
//! Each entry is committed in its own WriteBatch together with the new last-applied log id (and
//! membership), before the next entry is applied: command N+1 reads what N wrote, and
//! `applied_state` never reports an entry whose effects are not in the same atomic write.
//! Those writes are not fsynced one by one; after a crash the state falls back to a consistent
//! earlier point and openraft re-applies the rest from the (durable) log.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use kms_core::store::{StateMachineApp, StateRead, StateWrite, StoreError};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use rocksdb::{ColumnFamily, DB, IteratorMode, WriteBatch};
use tokio::sync::Mutex;

use crate::db::{self, CF_SM_DATA, CF_SM_META, Db};
use crate::reader::{self, KvPairs};
use crate::snapshot::{self, KEY_LAST_APPLIED, KEY_MEMBERSHIP, SnapshotBuilder};
use crate::types::{
    Entry, LogId, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};

/// The write handle given to `StateMachineApp::apply`: reads see the state before this command,
/// writes are buffered in a batch.
struct ApplyBatch<'a> {
    db: &'a DB,
    data_cf: &'a ColumnFamily,
    batch: WriteBatch,
}

impl StateRead for ApplyBatch<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        reader::get(self.db, key)
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        reader::scan(self.db, start, end, limit)
    }
}

impl StateWrite for ApplyBatch<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.data_cf, key, value);
    }

    fn delete(&mut self, key: &[u8]) {
        self.batch.delete_cf(self.data_cf, key);
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
    Ok(bytes.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map_or(0, u64::from_be_bytes))
}

pub(crate) struct StateMachine {
    db: Db,
    app: Arc<dyn StateMachineApp>,
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
        Self { db, app, current_snapshot_lock: Arc::new(Mutex::new(())), starting: Arc::default() }
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

    /// Applies one entry and commits its effects with the new applied id; returns the response.
    fn apply_entry(&self, entry: &Entry) -> io::Result<Vec<u8>> {
        let meta_cf = db::cf(&self.db, CF_SM_META)?;
        let data_cf = db::cf(&self.db, CF_SM_DATA)?;
        let mut batch = ApplyBatch { db: &self.db, data_cf, batch: WriteBatch::default() };
        let response = match &entry.payload {
            EntryPayload::Blank => Vec::new(),
            EntryPayload::Normal(command) => self.app.apply(&command.0, &mut batch),
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
                batch.batch.put_cf(meta_cf, KEY_MEMBERSHIP, db::encode(&stored, "membership")?);
                let in_membership = membership.nodes().map(|(id, _)| *id).max().unwrap_or(0);
                let highest = highest_node_id(&self.db)?.max(in_membership);
                batch.batch.put_cf(data_cf, KEY_HIGHEST_NODE_ID, highest.to_be_bytes());
                Vec::new()
            }
        };
        let mut batch = batch.batch;
        batch.put_cf(meta_cf, KEY_LAST_APPLIED, db::encode(&Some(entry.log_id), "last applied log id")?);
        db::write(&self.db, batch, false, "apply committed entry")?;
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
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let response = self.apply_entry(&entry)?;
            // Without this send the proposer's `client_write` would never return.
            if let Some(responder) = responder {
                responder.send(Response(response));
            }
        }
        Ok(())
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
        assert_eq!(
            other.applied_state().await.unwrap(),
            (sent.meta.last_log_id, sent.meta.last_membership.clone())
        );
        assert_eq!(other.get_current_snapshot().await.unwrap().unwrap().snapshot, sent.snapshot);
    }
}
