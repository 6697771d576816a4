//! Between request handlers and the disk: a bounded tokio channel drained by one writer thread.
//!
//! A request takes its place in the queue *before* its operation runs ([`AuditLog::begin`]) and
//! hands in its record when it ends. With [`OnFull::FailClosed`] a full queue refuses the
//! request there, so nothing runs unrecorded; with [`OnFull::Drop`] the request runs and its
//! record is dropped if there is still no room at the end, counted in
//! [`AuditStats::dropped`] and reported in the node's log. Either way a handler never waits on
//! the disk: a slow or full disk fills the queue, and the queue's bound is what handlers see.
//!
//! The writer is a dedicated thread rather than a task on the async runtime: its file writes
//! and `fdatasync`s block, and a stalled disk must not take a runtime worker with it.

use crate::chain::{Chain, ChainHead};
use crate::file::{AuditError, AuditFile};
use crate::record::AuditEvent;
use serde::Deserialize;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The writer logs the chain head at least this often while records arrive (see the crate docs).
pub const ANCHOR_EVERY: Duration = Duration::from_secs(60);
/// ... and at least every this many records.
pub const ANCHOR_EVERY_RECORDS: u64 = 10_000;
/// Messages written (and synced) together at most; the queue's own bound is the usual limit.
const MAX_ROUND: usize = 4096;
/// The writer takes what queued up at most this often: one write and one `fdatasync` per round,
/// however many records came in. Syncing each batch as soon as it arrived cost a sync, a thread
/// wake-up and (on a virtual machine) a device exit per handful of records: measured, a fifth of
/// a loaded node's CPU. Records reach the disk at most this much later for it.
const ROUND_EVERY: Duration = Duration::from_millis(10);
/// Drops are reported in the node's log at most this often (the metric counts every one).
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);
/// The outcome of a record whose request ended without an answer (its future was dropped:
/// the client went away). The operation may or may not have taken effect.
pub const CANCELLED: &str = "cancelled";

/// What a full queue does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFull {
    /// Refuse the request, before its operation runs, with a retriable error.
    FailClosed,
    /// Run the request and drop its record, counting it.
    Drop,
}

/// Where the log goes and how the queue in front of it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Records (and requests in flight) the queue holds.
    pub queue_capacity: usize,
    pub on_full: OnFull,
}

/// The queue had no room and the log is configured to fail closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit log is not keeping up: its queue of {capacity} records is full")]
pub struct QueueFull {
    pub capacity: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written to the log (and synced).
    pub written: u64,
    /// Records dropped because the queue was full ([`OnFull::Drop`]).
    pub dropped: u64,
    /// Places taken in the queue: records waiting, and requests in flight holding one.
    pub queue_depth: u64,
    pub queue_capacity: u64,
}

// Nearly every message is a Record: boxing it would cost an allocation per request to save
// space only for the rare Flush.
#[allow(clippy::large_enum_variant)]
enum Message {
    Record(AuditEvent),
    /// Answered once everything queued before it is written and synced.
    Flush(oneshot::Sender<Option<ChainHead>>),
}

/// What the writer appends to: the log file, or a stand-in in tests.
pub(crate) trait Append: Send + 'static {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
    fn describe(&self) -> String;
}

impl Append for AuditFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        AuditFile::append(self, bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        AuditFile::sync(self)
    }

    fn describe(&self) -> String {
        self.path().display().to_string()
    }
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    last_drop_warning: Mutex<Option<Instant>>,
}

/// The audit log of a node: cheap to clone, shared by every request handler.
#[derive(Clone, Debug)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
    on_full: OnFull,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Record(_) => "Record",
            Message::Flush(_) => "Flush",
        })
    }
}

impl AuditLog {
    /// Opens (or resumes) the log file and starts its writer thread.
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let (file, head) = AuditFile::open(&config.path)?;
        match &head {
            Some(head) => tracing::info!(path = %config.path.display(), seq = head.seq, hash = %head.hash,
                "audit log resumed after its last record"),
            None => tracing::info!(path = %config.path.display(), "audit log is empty; starting a new chain"),
        }
        Self::start(file, head, config.queue_capacity, config.on_full).map_err(|source| AuditError::Io {
            doing: "starting the writer thread of",
            path: config.path.clone(),
            source,
        })
    }

    pub(crate) fn start(
        out: impl Append,
        head: Option<ChainHead>,
        queue_capacity: usize,
        on_full: OnFull,
    ) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel(queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer =
            Writer { out, chain: Chain::after(head), counters: counters.clone(), anchored: Anchored::now() };
        std::thread::Builder::new().name("kms-audit-writer".into()).spawn(move || writer.run(receiver))?;
        Ok(Self { sender, on_full, counters })
    }

    /// Takes a place in the queue for the record of a request about to run. `event` is what is
    /// known now; fill in the rest through [`PendingRecord::event_mut`] as the request ends.
    /// Fails only when the queue is full and the log fails closed.
    pub fn begin(&self, mut event: AuditEvent) -> Result<PendingRecord, QueueFull> {
        event.outcome = CANCELLED.to_string();
        let permit = match self.sender.clone().try_reserve_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.on_full == OnFull::FailClosed => {
                return Err(QueueFull { capacity: self.sender.max_capacity() });
            }
            // Drop mode: run the request; there may be room again when it ends.
            Err(_) => None,
        };
        Ok(PendingRecord { event, permit, log: self.clone() })
    }

    /// Records a request that ended before any operation ran (refused by authentication, or an
    /// operation that does not exist). Nothing is left to refuse, so a full queue drops it.
    pub fn record(&self, event: AuditEvent) {
        self.send_or_drop(event);
    }

    fn send_or_drop(&self, event: AuditEvent) {
        if self.sender.try_send(Message::Record(event)).is_err() {
            self.dropped();
        }
    }

    fn dropped(&self) {
        let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.counters.last_drop_warning.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= DROP_WARNING_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = total,
                capacity = self.sender.max_capacity(),
                "AUDIT RECORDS DROPPED: the audit log is not keeping up (on_full = \"drop\")"
            );
        }
    }

    pub fn stats(&self) -> AuditStats {
        let capacity = self.sender.max_capacity();
        AuditStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            queue_depth: capacity.saturating_sub(self.sender.capacity()) as u64,
            queue_capacity: capacity as u64,
        }
    }

    /// Waits until every record queued before this call is written and synced, logs the chain
    /// head as an anchor and returns it (`None` for an empty log, or if the writer is gone).
    /// Bound it with a timeout: it waits for the disk.
    pub async fn flush(&self) -> Option<ChainHead> {
        let (answer, answered) = oneshot::channel();
        self.sender.send(Message::Flush(answer)).await.ok()?;
        answered.await.ok().flatten()
    }
}

/// A request's place in the queue and its record. The record goes to the log when this is
/// dropped, with the outcome it has then: [`CANCELLED`] unless the request set one, so a request
/// whose future is dropped half-way (the client went away) is still recorded.
#[derive(Debug)]
pub struct PendingRecord {
    event: AuditEvent,
    permit: Option<mpsc::OwnedPermit<Message>>,
    log: AuditLog,
}

impl PendingRecord {
    pub fn event_mut(&mut self) -> &mut AuditEvent {
        &mut self.event
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        let event = std::mem::take(&mut self.event);
        match self.permit.take() {
            Some(permit) => {
                permit.send(Message::Record(event));
            }
            None => self.log.send_or_drop(event),
        }
    }
}

/// When the chain head was last logged.
struct Anchored {
    at: Instant,
    records_since: u64,
}

impl Anchored {
    fn now() -> Self {
        Self { at: Instant::now(), records_since: 0 }
    }
}

struct Writer<A> {
    out: A,
    chain: Chain,
    counters: Arc<Counters>,
    anchored: Anchored,
}

impl<A: Append> Writer<A> {
    /// Writes batches until every sender is gone.
    fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let mut messages = Vec::with_capacity(MAX_ROUND);
        // Reused between batches, so a busy writer stops allocating once it has grown.
        let mut batch = Vec::new();
        // Blocks only while the queue is empty; then takes everything queued, up to a round.
        while receiver.blocking_recv_many(&mut messages, MAX_ROUND) > 0 {
            let round = Instant::now();
            batch.clear();
            let mut records = 0u64;
            let mut flushes = Vec::new();
            for message in messages.drain(..) {
                match message {
                    Message::Record(event) => {
                        self.chain.seal_into(&event, &mut batch);
                        records += 1;
                    }
                    Message::Flush(answer) => flushes.push(answer),
                }
            }
            if records > 0 {
                self.write_durably(&batch);
                self.counters.written.fetch_add(records, Ordering::Relaxed);
                self.anchored.records_since += records;
            }
            let due = self.anchored.records_since >= ANCHOR_EVERY_RECORDS
                || (self.anchored.records_since > 0 && self.anchored.at.elapsed() >= ANCHOR_EVERY);
            if due || !flushes.is_empty() {
                self.anchor();
            }
            for answer in flushes {
                let _ = answer.send(self.chain.head().cloned());
            }
            // Senders do not wake a sleeping writer: what they queue meanwhile is the next round.
            std::thread::sleep(ROUND_EVERY.saturating_sub(round.elapsed()));
        }
        self.anchor();
    }

    /// Appends `batch`, retrying until it is written: records are never skipped, so a disk
    /// that stays full backs the queue up (and the queue's policy takes over). Then syncs.
    fn write_durably(&mut self, batch: &[u8]) {
        let mut backoff = Duration::from_millis(50);
        let mut reported: Option<Instant> = None;
        while let Err(err) = self.out.append(batch) {
            if reported.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
                reported = Some(Instant::now());
                tracing::error!(path = %self.out.describe(), error = %err,
                    "writing the audit log failed; retrying (requests queue up behind it)");
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        // A failed fsync cannot be retried meaningfully (the kernel may have dropped the pages);
        // the records stay in the file as far as it knows, and the operator must hear of it.
        if let Err(err) = self.out.sync() {
            tracing::error!(path = %self.out.describe(), error = %err, "syncing the audit log failed");
        }
    }

    /// Logs the chain head: the anchor operators keep outside the node (see the crate docs).
    fn anchor(&mut self) {
        if let Some(head) = self.chain.head() {
            tracing::info!(path = %self.out.describe(), seq = head.seq, hash = %head.hash,
                anchor = %head, "audit chain head");
        }
        self.anchored = Anchored::now();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::record::tests::event;
    use std::sync::mpsc as std_mpsc;

    /// A store whose appends block until the test lets each one through, telling the test when
    /// an append is waiting: a stalled disk on demand.
    struct Stalled {
        entered: std_mpsc::Sender<()>,
        release: std_mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Append for Stalled {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            let _ = self.entered.send(());
            self.release.recv().map_err(|_| io::Error::other("test over"))?;
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "stalled".into()
        }
    }

    struct Harness {
        log: AuditLog,
        entered: std_mpsc::Receiver<()>,
        release: std_mpsc::Sender<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    /// A log of capacity 2 whose writer is stuck appending its first record.
    fn stalled(on_full: OnFull) -> Harness {
        let (entered_tx, entered) = std_mpsc::channel();
        let (release, release_rx) = std_mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let store = Stalled { entered: entered_tx, release: release_rx, written: written.clone() };
        let log = AuditLog::start(store, None, 2, on_full).unwrap();
        drop(log.begin(event("first")).unwrap());
        entered.recv_timeout(Duration::from_secs(5)).expect("the writer took the first record");
        Harness { log, entered, release, written }
    }

    fn lines(written: &Mutex<Vec<u8>>) -> Vec<crate::AuditRecord> {
        let bytes = written.lock().unwrap();
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| crate::AuditRecord::from_line(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_stalled_writer_fails_requests_closed_without_hanging() {
        let h = stalled(OnFull::FailClosed);
        let started = Instant::now();
        let mut held = h.log.begin(event("second")).unwrap();
        held.event_mut().outcome = "ok".into();
        drop(h.log.begin(event("third")).unwrap());
        assert_eq!(h.log.stats().queue_depth, 2);
        let refused = h.log.begin(event("fourth")).unwrap_err();
        assert_eq!(refused, QueueFull { capacity: 2 });
        h.log.record(event("refusal"));
        assert!(started.elapsed() < Duration::from_secs(1), "nothing waited on the stalled disk");
        assert_eq!(h.log.stats().dropped, 1, "a refusal record finds no room either");
        drop(held);

        for _ in 0..3 {
            h.release.send(()).unwrap();
        }
        let head = tokio::time::timeout(Duration::from_secs(5), h.log.flush()).await.unwrap().unwrap();
        assert_eq!(head.seq, 2);
        let records = lines(&h.written);
        let ids: Vec<_> = records.iter().map(|r| r.event.request_id.as_str()).collect();
        assert_eq!(ids, ["first", "third", "second"]);
        assert_eq!(records[1].event.outcome, CANCELLED, "no outcome was set: recorded as cancelled");
        assert_eq!(records[2].event.outcome, "ok");
        assert_eq!(h.log.stats(), AuditStats { written: 3, dropped: 1, queue_depth: 0, queue_capacity: 2 });
        drop(h.entered);
    }

    #[tokio::test]
    async fn a_stalled_writer_drops_records_and_counts_them() {
        let h = stalled(OnFull::Drop);
        let started = Instant::now();
        let a = h.log.begin(event("second")).unwrap();
        let b = h.log.begin(event("third")).unwrap();
        let c = h.log.begin(event("fourth")).unwrap();
        drop((a, b));
        drop(c);
        assert!(started.elapsed() < Duration::from_secs(1), "nothing waited on the stalled disk");
        assert_eq!(h.log.stats().dropped, 1);

        for _ in 0..3 {
            h.release.send(()).unwrap();
        }
        let head = tokio::time::timeout(Duration::from_secs(5), h.log.flush()).await.unwrap().unwrap();
        assert_eq!(head.seq, 2);
        let ids: Vec<_> = lines(&h.written).into_iter().map(|r| r.event.request_id).collect();
        assert_eq!(ids, ["first", "second", "third"]);
        assert_eq!(h.log.stats().written, 3);
    }

    #[tokio::test]
    async fn records_reach_the_file_and_verify_and_a_restart_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            path: dir.path().join("audit.log"),
            queue_capacity: 64,
            on_full: OnFull::FailClosed,
        };
        for round in 0..2 {
            let log = AuditLog::open(&config).unwrap();
            for i in 0..20 {
                let mut pending = log.begin(event(&format!("r{round}-{i}"))).unwrap();
                pending.event_mut().outcome = "ok".into();
            }
            let head = tokio::time::timeout(Duration::from_secs(5), log.flush()).await.unwrap().unwrap();
            assert_eq!(head.seq, 20 * round + 19);
        }
        let report =
            crate::verify(std::io::BufReader::new(std::fs::File::open(&config.path).unwrap())).unwrap();
        assert_eq!(report.records, 40);
        assert!(report.broken.is_none(), "{report:?}");
    }
}
