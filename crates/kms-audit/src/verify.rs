//! Checking a log from its first line: every line a canonical record, `seq` counting up from 0,
//! each `prev_hash` the hash of the line before, each `hash` matching its record; optionally
//! against anchors kept outside the log (what each check catches is in the crate docs).

use crate::chain::{ChainHead, GENESIS_HASH, record_hash};
use crate::record::AuditRecord;
use std::fmt;
use std::io::{self, BufRead};

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records checked and found intact (all of them when the chain holds).
    pub records: u64,
    /// The last intact record.
    pub head: Option<ChainHead>,
    /// The first place the chain breaks, if it does.
    pub broken: Option<Break>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain breaks at line {}: {}", self.line, self.reason)
    }
}

/// Verifies the log `reader` yields, stopping at the first break.
pub fn verify(reader: impl BufRead) -> io::Result<Report> {
    verify_anchored(reader, &[])
}

/// [`verify`], and the log must also contain each anchor: the record with the anchor's `seq`
/// must be there and carry the anchor's hash. This catches a cut-off tail and a rewritten chain.
pub fn verify_anchored(mut reader: impl BufRead, anchors: &[ChainHead]) -> io::Result<Report> {
    let mut report = Report { records: 0, head: None, broken: None };
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        match check_line(&line, report.head.as_ref(), anchors) {
            Ok(record) => report.accept(record),
            Err(reason) => {
                report.broken = Some(Break { line: number, reason });
                return Ok(report);
            }
        }
    }
    let last_seq = report.head.as_ref().map(|h| h.seq);
    if let Some(missing) = anchors.iter().find(|a| last_seq.is_none_or(|last| a.seq > last)) {
        let ends = last_seq.map_or("the log is empty".to_string(), |s| format!("the log ends at seq {s}"));
        report.broken = Some(Break {
            line: number + 1,
            reason: format!(
                "{ends}, before the anchored record seq {}: its tail was cut off (or the anchor is from another log)",
                missing.seq
            ),
        });
    }
    Ok(report)
}

impl Report {
    fn accept(&mut self, record: AuditRecord) {
        self.records += 1;
        self.head = Some(ChainHead { seq: record.seq, hash: record.hash });
    }
}

/// Checks one line (with its newline) against the record before it.
fn check_line(
    line: &[u8],
    previous: Option<&ChainHead>,
    anchors: &[ChainHead],
) -> Result<AuditRecord, String> {
    let Some(content) = line.strip_suffix(b"\n") else {
        return Err("the last line is incomplete (no newline: the log was cut inside a record)".into());
    };
    let record = AuditRecord::from_line(content)?;
    let (want_seq, want_prev) = match previous {
        Some(prev) => (prev.seq + 1, prev.hash.as_str()),
        None => (0, GENESIS_HASH),
    };
    if record.seq != want_seq {
        let why = match previous {
            None => "the log does not start at seq 0: its head was cut off".to_string(),
            Some(_) if record.seq > want_seq => {
                format!(
                    "{} record(s) missing (deleted or the log cut) before this one",
                    record.seq - want_seq
                )
            }
            Some(_) => "records are out of order or repeated".to_string(),
        };
        return Err(format!("seq is {}, expected {want_seq}: {why}", record.seq));
    }
    if record.prev_hash != want_prev {
        return Err("prev_hash is not the hash of the record before it".into());
    }
    if record_hash(&record) != record.hash {
        return Err("hash does not match the record's content: the record was edited".into());
    }
    if let Some(anchor) = anchors.iter().find(|a| a.seq == record.seq && a.hash != record.hash) {
        return Err(format!(
            "record seq {} has hash {} but the anchor says {}: the chain was rewritten (or the anchor is from another log)",
            anchor.seq, record.hash, anchor.hash
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chain::Chain;
    use crate::record::tests::event;

    /// A log of `n` records, as lines with their newlines.
    fn log(n: usize) -> (Vec<String>, ChainHead) {
        let mut chain = Chain::default();
        let lines = (0..n)
            .map(|i| String::from_utf8(chain.seal(event(&format!("r{i}"))).to_line()).unwrap() + "\n")
            .collect();
        (lines, chain.head().cloned().unwrap())
    }

    fn check(lines: &[String]) -> Report {
        verify(lines.concat().as_bytes()).unwrap()
    }

    fn broken_at(lines: &[String]) -> (u64, String) {
        let report = check(lines);
        let broken = report.broken.expect("the chain must break");
        assert_eq!(report.records, broken.line - 1, "every line before the break was checked");
        (broken.line, broken.reason)
    }

    #[test]
    fn an_intact_log_verifies() {
        let (lines, head) = log(5);
        let report = check(&lines);
        assert_eq!(report, Report { records: 5, head: Some(head), broken: None });
        assert!(check(&[]).is_intact());
    }

    #[test]
    fn an_edited_field_is_found_on_its_line() {
        let (mut lines, _) = log(5);
        lines[2] = lines[2].replace(r#""outcome":"ok""#, r#""outcome":"AccessDeniedException""#);
        let (line, why) = broken_at(&lines);
        assert_eq!(line, 3);
        assert!(why.contains("edited"), "{why}");
        let (mut lines, _) = log(5);
        lines[1] = lines[1].replace(r#""a":"1""#, r#""a": "1""#);
        assert_eq!(broken_at(&lines).0, 2, "even whitespace");
    }

    #[test]
    fn a_deleted_line_is_found_where_it_was() {
        let (mut lines, _) = log(5);
        lines.remove(2);
        let (line, why) = broken_at(&lines);
        assert_eq!(line, 3);
        assert!(why.contains("seq is 3, expected 2") && why.contains("missing"), "{why}");
    }

    #[test]
    fn swapped_lines_are_found() {
        let (mut lines, _) = log(5);
        lines.swap(1, 3);
        let (line, why) = broken_at(&lines);
        assert_eq!(line, 2);
        assert!(why.contains("seq is 3, expected 1"), "{why}");
        let (mut lines, _) = log(5);
        lines.swap(3, 4);
        assert_eq!(broken_at(&lines).0, 4);
    }

    #[test]
    fn truncation_in_the_middle_and_at_the_head_is_found() {
        let (lines, _) = log(8);
        let cut = [&lines[..3], &lines[6..]].concat();
        let (line, why) = broken_at(&cut);
        assert_eq!(line, 4);
        assert!(why.contains("3 record(s) missing"), "{why}");
        let (line, why) = broken_at(&lines[2..]);
        assert_eq!(line, 1);
        assert!(why.contains("head was cut off"), "{why}");
        let mut partial = lines[..4].to_vec();
        partial[3].truncate(40);
        let (line, why) = broken_at(&partial);
        assert_eq!(line, 4);
        assert!(why.contains("incomplete"), "{why}");
    }

    #[test]
    fn a_repeated_line_and_a_forged_link_are_found() {
        let (mut lines, _) = log(4);
        lines.insert(2, lines[1].clone());
        assert!(broken_at(&lines).1.contains("out of order or repeated"));
        // A record re-linked by someone who recomputed its own hash but not its predecessor's.
        let (lines, _) = log(3);
        let mut forged = AuditRecord::from_line(lines[2].trim_end().as_bytes()).unwrap();
        forged.prev_hash = "ab".repeat(32);
        forged.hash = record_hash(&forged);
        let lines = [lines[0].clone(), lines[1].clone(), String::from_utf8(forged.to_line()).unwrap() + "\n"];
        assert!(broken_at(&lines).1.contains("prev_hash"));
    }

    #[test]
    fn anchors_catch_a_cut_tail_and_a_rewritten_chain() {
        let (lines, head) = log(6);
        let anchored = |lines: &[String], anchor: &ChainHead| {
            verify_anchored(lines.concat().as_bytes(), std::slice::from_ref(anchor)).unwrap()
        };
        assert!(anchored(&lines, &head).is_intact());
        assert!(check(&lines[..4]).is_intact(), "a cut tail alone is a valid chain");
        let report = anchored(&lines[..4], &head);
        let broken = report.broken.unwrap();
        assert_eq!(broken.line, 5);
        assert!(broken.reason.contains("tail was cut off"), "{}", broken.reason);

        // Rewritten from record 2 on, hashes recomputed: intact as a chain, but not the anchor.
        let mut chain = Chain::default();
        let mut rewritten = Vec::new();
        for i in 0..6 {
            let mut e = event(&format!("r{i}"));
            if i == 2 {
                e.principal = "mallory".into();
            }
            rewritten.push(String::from_utf8(chain.seal(e).to_line()).unwrap() + "\n");
        }
        assert!(check(&rewritten).is_intact());
        let broken = anchored(&rewritten, &head).broken.unwrap();
        assert_eq!(broken.line, 6);
        assert!(broken.reason.contains("rewritten"), "{}", broken.reason);
    }
}
