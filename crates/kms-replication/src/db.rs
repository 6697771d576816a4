//! The node's one RocksDB database and its column families.
//!
//! One database (so one WAL) for the log, the Raft metadata and the state machine: a synced
//! write of any of them also makes every earlier write of the others durable, and writes are
//! recovered in submission order. The stores below rely on that.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
    WriteBatch, WriteOptions,
};

/// Raft log entries, keyed by big-endian log index.
pub(crate) const CF_LOG: &str = "raft_log";
/// Raft metadata: vote, committed log id, last purged log id.
pub(crate) const CF_RAFT_META: &str = "raft_meta";
/// The application's key-value state.
pub(crate) const CF_SM_DATA: &str = "sm_data";
/// State-machine metadata: last applied log id, membership, current snapshot.
pub(crate) const CF_SM_META: &str = "sm_meta";

const ALL_CFS: [&str; 4] = [CF_LOG, CF_RAFT_META, CF_SM_DATA, CF_SM_META];

/// Shared handle on the node's database.
pub(crate) type Db = Arc<DB>;

/// All memtables of the database together: past this, RocksDB flushes them (atomically, see
/// [`open`]). Without it each column family may hold two 64 MiB memtables.
const MEMTABLE_BUDGET_BYTES: usize = 64 << 20;
/// One block cache shared by every column family. Without it each family gets its own 32 MiB.
/// Hot keys' material lives in the service's own cache; this one holds key records and log
/// entries recently read.
const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// Opens (creating if needed) the database at `path` with every column family. Memory is
/// bounded whatever the number of keys: one memtable budget and one block cache for the lot.
pub(crate) fn open(path: &Path) -> Result<Db, rocksdb::Error> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Memtables of all column families are flushed together, so an SST of one family can never
    // get ahead of another family's writes that so far exist only in an unsynced WAL tail (e.g.
    // purged log entries vs. the state they were applied to).
    opts.set_atomic_flush(true);
    opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    // The state is read by point lookups, many of them for keys that do not exist (every
    // CreateKey checks that its new key id is free): a Bloom filter (10 bits a key, ~1% false
    // positives) answers those without searching each SST's index and data blocks.
    let table = |bloom: bool| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        if bloom {
            table.set_bloom_filter(10.0, false);
        }
        table
    };
    let cfs = ALL_CFS.iter().map(|name| {
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table(*name == CF_SM_DATA));
        if *name == CF_LOG {
            // Log entries live until the next snapshot purges them: compressing the ones a flush
            // writes out costs CPU on every node (LZ4 was 3% of a leader's under CreateKey load)
            // and saves disk only briefly.
            cf_opts.set_compression_type(DBCompressionType::None);
        }
        ColumnFamilyDescriptor::new(*name, cf_opts)
    });
    DB::open_cf_descriptors(&opts, path, cfs).map(Arc::new)
}

/// [`open`], retrying for a few seconds while another handle in this process still holds the
/// database lock: after `Region::shutdown` the last references (Raft's storage tasks, the log
/// flusher thread) are released asynchronously, and a same-process reopen (tests, an in-process
/// restart) would otherwise race them. A second *process* on the same directory still fails,
/// just a few seconds later.
pub(crate) async fn open_with_retry(path: &Path) -> Result<Db, rocksdb::Error> {
    const ATTEMPTS: u32 = 50;
    let mut attempt = 0;
    loop {
        match open(path) {
            Err(e) if attempt < ATTEMPTS && e.to_string().to_lowercase().contains("lock") => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// The handle of a column family created by [`open`].
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> io::Result<&'a ColumnFamily> {
    db.cf_handle(name).ok_or_else(|| io::Error::other(format!("column family {name} missing")))
}

/// Converts a RocksDB error into the `io::Error` openraft's storage traits want, saying what was
/// being done.
pub(crate) fn io_err(doing: &str, e: rocksdb::Error) -> io::Error {
    io::Error::other(format!("rocksdb: {doing}: {e}"))
}

/// Writes `batch`, fsyncing the WAL before returning when `sync` is set.
pub(crate) fn write(db: &DB, batch: WriteBatch, sync: bool, doing: &str) -> io::Result<()> {
    let mut opts = WriteOptions::default();
    opts.set_sync(sync);
    db.write_opt(batch, &opts).map_err(|e| io_err(doing, e))
}

/// Serializes a metadata value (openraft types are serde types; JSON keeps them inspectable).
pub(crate) fn encode<T: serde::Serialize>(value: &T, what: &str) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| io::Error::other(format!("encode {what}: {e}")))
}

/// Deserializes a value written by [`encode`].
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> io::Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("decode {what}: {e}")))
}

/// Reads and decodes one metadata value.
pub(crate) fn get_meta<T: serde::de::DeserializeOwned>(
    db: &DB,
    cf_name: &str,
    key: &[u8],
    what: &str,
) -> io::Result<Option<T>> {
    let cf = cf(db, cf_name)?;
    match db.get_pinned_cf(cf, key).map_err(|e| io_err(what, e))? {
        Some(bytes) => decode(&bytes, what).map(Some),
        None => Ok(None),
    }
}
