//! Linking records: sequence numbers and hashes (the properties are in the crate docs).

use crate::record::{AuditEvent, AuditRecord, BodyView};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The `prev_hash` of the first record of a log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The last record of a chain: what the next record links to, and what operators anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl fmt::Display for ChainHead {
    /// `SEQ:HASH`, the form `kmsctl audit verify --anchor` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for ChainHead {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (seq, hash) = text.split_once(':').ok_or("an anchor is SEQ:HASH")?;
        let seq = seq.parse().map_err(|_| format!("'{seq}' is not a sequence number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err("the hash of an anchor is 64 lowercase hex digits".into());
        }
        Ok(Self { seq, hash: hash.to_string() })
    }
}

/// The hash a record must carry: SHA-256 over the previous hash and its canonical body.
pub fn record_hash(record: &AuditRecord) -> String {
    body_hash(&record.prev_hash, &record.canonical_body())
}

fn body_hash(prev_hash: &str, body: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(prev_hash.as_bytes());
    sha.update(body);
    base16ct::lower::encode_string(&sha.finalize())
}

/// Where the next record goes: `None` for an empty log.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    head: Option<ChainHead>,
}

impl Chain {
    /// A chain continuing after `head` (a new log when `None`).
    pub fn after(head: Option<ChainHead>) -> Self {
        Self { head }
    }

    pub fn head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }

    /// Appends `event` to the chain: the next `seq`, linked and hashed.
    pub fn seal(&mut self, event: AuditEvent) -> AuditRecord {
        let (seq, prev_hash) = self.next();
        let mut record = AuditRecord { seq, prev_hash, event, hash: String::new() };
        record.hash = record_hash(&record);
        self.head = Some(ChainHead { seq, hash: record.hash.clone() });
        record
    }

    /// Appends `event` to the chain and its line, newline included, to `out`: byte for byte
    /// what [`seal`](Self::seal) and [`AuditRecord::to_line`] make, but with the record
    /// serialized once (its body is hashed, then closed with the hash) instead of twice. This is
    /// the audit writer's whole per-record cost, on one thread for the node.
    pub fn seal_into(&mut self, event: &AuditEvent, out: &mut Vec<u8>) {
        let (seq, prev_hash) = self.next();
        let start = out.len();
        BodyView { seq, prev_hash: &prev_hash, event }.write_json(out);
        let hash = body_hash(&prev_hash, &out[start..]);
        // The body is a JSON object; its closing brace moves behind the hash member.
        out.pop();
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}\n");
        self.head = Some(ChainHead { seq, hash });
    }

    /// The next record's `seq` and `prev_hash`, moved out of the head (both callers set the new
    /// head right after, and nothing between can fail).
    fn next(&mut self) -> (u64, String) {
        match self.head.take() {
            Some(head) => (head.seq + 1, head.hash),
            None => (0, GENESIS_HASH.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::record::tests::event;

    #[test]
    fn records_link_to_their_predecessor() {
        let mut chain = Chain::default();
        let first = chain.seal(event("r1"));
        let second = chain.seal(event("r2"));
        assert_eq!((first.seq, first.prev_hash.as_str()), (0, GENESIS_HASH));
        assert_eq!((second.seq, &second.prev_hash), (1, &first.hash));
        assert_eq!(first.hash.len(), 64);
        assert_eq!(record_hash(&second), second.hash);
        assert_eq!(chain.head(), Some(&ChainHead { seq: 1, hash: second.hash.clone() }));

        let mut edited = second.clone();
        edited.event.principal = "mallory".into();
        assert_ne!(record_hash(&edited), second.hash);
    }

    #[test]
    fn seal_into_writes_exactly_the_line_of_the_sealed_record() {
        let mut by_record = Chain::default();
        let mut by_line = Chain::default();
        let mut lines = Vec::new();
        for id in ["r1", "r2", "r3"] {
            let start = lines.len();
            by_line.seal_into(&event(id), &mut lines);
            let mut expected = by_record.seal(event(id)).to_line();
            expected.push(b'\n');
            assert_eq!(lines[start..], expected[..], "{id}");
            assert_eq!(by_line.head(), by_record.head());
        }
    }

    #[test]
    fn anchors_parse_and_print_alike() {
        let head = ChainHead { seq: 7, hash: "ab".repeat(32) };
        assert_eq!(head.to_string().parse::<ChainHead>().unwrap(), head);
        assert!("7".parse::<ChainHead>().is_err());
        assert!("x:ab".parse::<ChainHead>().is_err());
        assert!("7:AB".parse::<ChainHead>().is_err());
    }
}
