//! The Raft log and Raft metadata (vote, committed, last purged) on RocksDB.
//!
//! Durability rules (openraft's storage contract):
//! - `save_vote` returns only after the vote is fsynced (a lost vote allows double voting);
//! - `append` makes entries readable before it returns and reports them flushed only after the
//!   WAL is fsynced, which one flusher thread does for every append queued meanwhile (group
//!   commit), strictly in submission order;
//! - `purge` writes `last_purged` and deletes the entries in one synced batch, so the log never
//!   has a hole and never looks emptier than it is;
//! - truncation is not synced: the single WAL orders it before any later (synced) append.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;

use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::codec;
use crate::db::{self, CF_LOG, CF_RAFT_META, Db};
use crate::types::{Entry, LogId, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Log key of an index: big-endian, so RocksDB's byte order is log order.
fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "raft log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Reads the log; cheap to clone (one `Arc`).
#[derive(Clone)]
pub(crate) struct LogReader {
    db: Db,
}

impl LogReader {
    fn entries(&self, start: u64, end: Bound<u64>) -> io::Result<Vec<Entry>> {
        let cf = db::cf(&self.db, CF_LOG)?;
        let from = index_key(start);
        let iter = self.db.iterator_cf(cf, IteratorMode::From(&from, Direction::Forward));
        let mut out = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|e| db::io_err("read raft log", e))?;
            let index = key_index(&key)?;
            let in_range = match end {
                Bound::Included(e) => index <= e,
                Bound::Excluded(e) => index < e,
                Bound::Unbounded => true,
            };
            if !in_range {
                break;
            }
            out.push(codec::decode_stored_entry(&value)?);
        }
        Ok(out)
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogId>> {
        let cf = db::cf(&self.db, CF_LOG)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, value) = item.map_err(|e| db::io_err("read last raft log entry", e))?;
                let entry = codec::decode_stored_entry(&value)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        self.entries(start, range.end_bound().cloned())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        db::get_meta(&self.db, CF_RAFT_META, KEY_VOTE, "vote")
    }
}

/// The Raft log store of one node.
pub(crate) struct LogStore {
    reader: LogReader,
    flusher: Flusher,
}

impl LogStore {
    pub(crate) fn new(db: Db) -> io::Result<Self> {
        let flusher = Flusher::spawn(db.clone())?;
        Ok(Self { reader: LogReader { db }, flusher })
    }

    fn db(&self) -> &rocksdb::DB {
        &self.reader.db
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T, sync: bool, what: &str) -> io::Result<()> {
        let cf = db::cf(self.db(), CF_RAFT_META)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, key, db::encode(value, what)?);
        db::write(self.db(), batch, sync, what)
    }
}

/// One OS thread per log store fsyncs the WAL for queued appends and then reports them flushed,
/// in order.
///
/// The thread holds a database handle, so dropping the flusher also joins the thread: the handle
/// is released before the drop returns. Were it released later, on its own, a process that
/// returns from `main` meanwhile would close RocksDB under its already-destroyed static mutexes,
/// and abort ("pthread lock: Invalid argument").
struct Flusher {
    /// `None` only inside `drop`, where closing the channel is what stops the thread.
    queue: Option<mpsc::Sender<IOFlushed<TypeConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn spawn(db: Db) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<IOFlushed<TypeConfig>>();
        let thread = std::thread::Builder::new().name("raft-log-flush".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut pending = vec![first];
                pending.extend(rx.try_iter());
                let result = db.flush_wal(true).map_err(|e| e.to_string());
                for callback in pending {
                    callback.io_completed(
                        result.clone().map_err(|e| io::Error::other(format!("rocksdb: fsync WAL: {e}"))),
                    );
                }
            }
        })?;
        Ok(Self { queue: Some(tx), thread: Some(thread) })
    }

    /// Queues `callback` to be completed once the WAL holding everything written so far is synced.
    fn queue(&self, callback: IOFlushed<TypeConfig>) -> io::Result<()> {
        let stopped = || io::Error::other("raft log flusher thread has stopped");
        self.queue.as_ref().ok_or_else(stopped)?.send(callback).map_err(|_| stopped())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            // Waits at most for the fsync in progress. A panic in the thread was already reported
            // by the panic hook; there is nothing more to do with it here.
            let _ = thread.join();
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.reader.try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.reader.read_vote().await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> =
            db::get_meta(self.db(), CF_RAFT_META, KEY_LAST_PURGED, "last purged log id")?;
        let last_log_id = self.reader.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(KEY_VOTE, vote, true, "save vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: a lost `committed` only means less is re-applied before the first election.
        self.put_meta(KEY_COMMITTED, &committed, false, "save committed log id")
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let stored: Option<Option<LogId>> =
            db::get_meta(self.db(), CF_RAFT_META, KEY_COMMITTED, "committed log id")?;
        Ok(stored.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = db::cf(self.db(), CF_LOG)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, index_key(entry.log_id.index), codec::encode_stored_entry(entry));
        }
        // Readable on return (memtable); durable once the flusher has synced the WAL.
        db::write(self.db(), batch, false, "append raft log")?;
        self.flusher.queue(callback)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index.saturating_add(1));
        let cf = db::cf(self.db(), CF_LOG)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, index_key(from), index_key(u64::MAX));
        batch.delete_cf(cf, index_key(u64::MAX));
        db::write(self.db(), batch, false, "truncate raft log")
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let log_cf = db::cf(self.db(), CF_LOG)?;
        let meta_cf = db::cf(self.db(), CF_RAFT_META)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(meta_cf, KEY_LAST_PURGED, db::encode(&Some(log_id), "last purged log id")?);
        batch.delete_range_cf(log_cf, index_key(0), index_key(log_id.index.saturating_add(1)));
        // Synced: the state these entries were applied to (earlier in the same WAL) must be
        // durable before the entries that could rebuild it are gone.
        db::write(self.db(), batch, true, "purge raft log")
    }
}

impl LogStore {
    /// The committed index persisted by `save_committed`, read before Raft starts so the region
    /// can wait for its local replay.
    pub(crate) fn committed_index(&self) -> io::Result<Option<u64>> {
        let stored: Option<Option<LogId>> =
            db::get_meta(self.db(), CF_RAFT_META, KEY_COMMITTED, "committed log id")?;
        Ok(stored.flatten().map(|id| id.index))
    }
}
