//! The log file: opened with `O_APPEND` (every write lands at the end, whatever else has the
//! file open), created owner-only, and resumed from its last record after a restart.
//!
//! Durability: the writer appends what queued up with one write and then `fdatasync`s
//! ([`AuditFile::sync`]), at most once every 10 ms. A request does not wait for that (only for a
//! place in the queue), so a crash of the process or the machine loses at most the records still
//! queued or in the batch being written, about the last 10 ms; it never leaves a hole in the
//! chain, and a partly written last line is found at the next start (see [`AuditFile::open`]).

use crate::chain::{ChainHead, record_hash};
use crate::record::AuditRecord;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// No record comes near this size; a longer last line is damage, not a record.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Why the audit log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{doing} the audit log {path}: {source}")]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the audit log {path} cannot be continued: {reason}. Check it with `kmsctl audit verify {path}`, \
         then remove the damaged last line, or move the file aside to start a new chain"
    )]
    CorruptTail { path: PathBuf, reason: String },
}

/// The open log, positioned at its end.
#[derive(Debug)]
pub struct AuditFile {
    file: File,
    path: PathBuf,
    /// Bytes known to be complete records; a failed write is cut back to this length.
    len: u64,
}

impl AuditFile {
    /// Opens the log at `path` (created with mode 0600, with its directory, if missing) and
    /// returns it with the head of the chain it holds (`None` when empty). Refuses a log whose
    /// last line is not a complete record whose hash matches its content: appending to a damaged
    /// tail would chain new records onto something no verification can accept.
    pub fn open(path: &Path) -> Result<(Self, Option<ChainHead>), AuditError> {
        let io =
            |doing: &'static str| move |source| AuditError::Io { doing, path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io("opening"))?;
        let len = file.metadata().map_err(io("reading the size of"))?.len();
        let corrupt = |reason: String| AuditError::CorruptTail { path: path.to_path_buf(), reason };
        let head = match last_line(&file, len).map_err(io("reading the end of"))? {
            LastLine::Empty => None,
            LastLine::Incomplete => {
                return Err(corrupt("its last line is incomplete (no newline: a write was cut off)".into()));
            }
            LastLine::TooLong => return Err(corrupt("its last line is longer than any record".into())),
            LastLine::Line(line) => {
                let record =
                    AuditRecord::from_line(&line).map_err(|why| corrupt(format!("its last line: {why}")))?;
                if record_hash(&record) != record.hash {
                    return Err(corrupt("its last record's hash does not match its content".into()));
                }
                Some(ChainHead { seq: record.seq, hash: record.hash })
            }
        };
        Ok((Self { file, path: path.to_path_buf(), len }, head))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends complete lines. On failure (a full disk) whatever part was written is cut off
    /// again, so a retry cannot leave half a record inside the chain.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(err) => {
                if let Err(cut) = self.file.set_len(self.len) {
                    tracing::error!(path = %self.path.display(), error = %cut,
                        "cutting a failed audit write back failed; the log may end in a partial line");
                }
                Err(err)
            }
        }
    }

    /// Makes everything appended so far durable (`fdatasync`).
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

enum LastLine {
    Empty,
    Incomplete,
    TooLong,
    Line(Vec<u8>),
}

/// The last line of the first `len` bytes of `file`, without its newline; read backwards, so a
/// long log is not read whole.
fn last_line(file: &File, len: u64) -> io::Result<LastLine> {
    if len == 0 {
        return Ok(LastLine::Empty);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        return Ok(LastLine::Incomplete);
    }
    let end = len - 1;
    let start = end.saturating_sub(MAX_LINE_BYTES);
    let mut tail = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
    file.read_exact_at(&mut tail, start)?;
    match tail.iter().rposition(|b| *b == b'\n') {
        Some(newline) => Ok(LastLine::Line(tail.split_off(newline + 1))),
        None if start == 0 => Ok(LastLine::Line(tail)),
        None => Ok(LastLine::TooLong),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chain::Chain;
    use crate::record::tests::event;
    use std::os::unix::fs::PermissionsExt as _;

    fn line(record: &AuditRecord) -> Vec<u8> {
        let mut line = record.to_line();
        line.push(b'\n');
        line
    }

    #[test]
    fn a_new_log_is_owner_only_and_resumes_from_its_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let (mut file, head) = AuditFile::open(&path).unwrap();
        assert_eq!(head, None);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut chain = Chain::default();
        for id in ["r1", "r2"] {
            file.append(&line(&chain.seal(event(id)))).unwrap();
        }
        file.sync().unwrap();
        drop(file);
        let (_, head) = AuditFile::open(&path).unwrap();
        assert_eq!(head.as_ref(), chain.head());
        assert_eq!(head.unwrap().seq, 1);
    }

    #[test]
    fn a_damaged_tail_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut chain = Chain::default();
        let good = [line(&chain.seal(event("r1"))), line(&chain.seal(event("r2")))].concat();

        std::fs::write(&path, &good[..good.len() - 10]).unwrap();
        let err = AuditFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("incomplete") && err.contains("kmsctl audit verify"), "{err}");

        let edited = String::from_utf8(good.clone()).unwrap().replace("\"app\"", "\"bob\"");
        std::fs::write(&path, edited).unwrap();
        let err = AuditFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("hash does not match"), "{err}");

        std::fs::write(&path, [&good[..], b"not json\n"].concat()).unwrap();
        let err = AuditFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid audit record"), "{err}");

        std::fs::write(&path, &good).unwrap();
        assert!(AuditFile::open(&path).is_ok());
    }

    #[test]
    fn the_last_line_is_found_in_a_single_line_file_and_a_long_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut chain = Chain::default();
        let mut bytes = line(&chain.seal(event("only")));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(AuditFile::open(&path).unwrap().1.unwrap().seq, 0);
        for i in 0..2000 {
            bytes.extend(line(&chain.seal(event(&format!("r{i}")))));
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(AuditFile::open(&path).unwrap().1.as_ref(), chain.head());
    }
}
