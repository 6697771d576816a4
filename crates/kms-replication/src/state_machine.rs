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
}

impl StateMachine {
    pub(crate) fn new(db: Db, app: Arc<dyn StateMachineApp>) -> Self {
        Self { db, app, current_snapshot_lock: Arc::new(Mutex::new(())) }
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
        let snapshot = Snapshot { meta: meta.clone(), snapshot: data.clone() };
        snapshot::store_current(db, &mut batch, &snapshot)?;
        db::write(db, batch, true, "install snapshot")
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let applied: Option<Option<LogId>> =
            db::get_meta(&self.db, CF_SM_META, KEY_LAST_APPLIED, "last applied log id")?;
        let membership: Option<StoredMembership> =
            db::get_meta(&self.db, CF_SM_META, KEY_MEMBERSHIP, "membership")?;
        Ok((applied.flatten(), membership.unwrap_or_default()))
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

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        snapshot::load_current(&self.db)
    }
}
