//! The audit log of a kms node: one record per request, allowed or denied, in an append-only,
//! hash-chained JSON Lines file.
//!
//! - [`record`]: what a record holds ([`AuditEvent`], filled by the API layer from an explicit
//!   allow-list of fields) and its chained form ([`AuditRecord`]), one JSON object per line.
//! - [`chain`]: how records are linked.
//! - [`file`]: the append-only file, resumed after a restart.
//! - [`queue`]: the bounded queue between request handlers and the writer thread, and what
//!   happens when it is full ([`OnFull`]).
//! - [`verify`]: checking a log and naming the first line where its chain breaks.
//!
//! # The chain
//!
//! Record `n` carries `seq = n` (the first record of a log is 0), `prev_hash` = the `hash` of
//! record `n - 1` (64 zeros for record 0) and its own
//! `hash = SHA-256(prev_hash || canonical bytes of the record without its hash)` in lowercase hex
//! (`prev_hash` hashed as its hex text).
//! The canonical bytes are the record serialized by this crate (fixed field order, the
//! encryption context sorted by key), and a line must be exactly that serialization.
//!
//! What this detects, reading the log from its first line:
//! - an edited record: its content no longer hashes to its `hash` (or the line is no longer
//!   canonical);
//! - a deleted, inserted or duplicated record, and truncation in the middle: `seq` skips or
//!   repeats, and the next record's `prev_hash` names a record that is not the one before it;
//! - reordered records: `seq` goes backwards;
//! - the head cut off: the first record is not `seq` 0 with the zero `prev_hash`.
//!
//! What it cannot detect on its own:
//! - **the tail cut off**: a log truncated after any complete record is a valid, shorter chain;
//! - **a rewritten chain**: the hash is unkeyed, so whoever can write the file can edit a record
//!   and recompute every hash after it.
//!
//! Both are closed by an anchor kept outside the file: the writer logs the chain head
//! (`seq` and `hash`) to the node's log every [`ANCHOR_EVERY_RECORDS`] records or
//! [`ANCHOR_EVERY`], whichever comes first, and when it is flushed at shutdown. An operator who
//! ships those log lines elsewhere can check a log against them ([`verify_anchored`],
//! `kmsctl audit verify --anchor SEQ:HASH`): a log that lacks the anchored record, or holds a
//! different one at that `seq`, fails.
#![forbid(unsafe_code)]

pub mod chain;
pub mod file;
pub mod queue;
pub mod record;
pub mod verify;

pub use chain::{ChainHead, GENESIS_HASH};
pub use file::{AuditError, AuditFile};
pub use queue::{
    ANCHOR_EVERY, ANCHOR_EVERY_RECORDS, AuditConfig, AuditLog, AuditStats, CANCELLED, OnFull, PendingRecord,
    QueueFull,
};
pub use record::{AuditEvent, AuditRecord, rfc3339_millis};
pub use verify::{Break, Report, verify, verify_anchored};
