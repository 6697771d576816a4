//! One audit record: what happened ([`AuditEvent`]) and its place in the chain ([`AuditRecord`]).
//!
//! The fields are an allow-list. Nothing here can hold a plaintext, a ciphertext blob, a data
//! key, key material, a MAC or signature or its message: the API layer copies the key it
//! resolved and the encryption context (which AWS treats as not secret and records in
//! CloudTrail) and nothing else from a request.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// What happened in one request, as the API layer saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The id returned to the client (`x-amzn-RequestId`, `x-kms-request-id`).
    pub request_id: String,
    /// The front end: `grpc`, `aws` or `kubernetes` (the KMS v2 plugin).
    pub api: String,
    /// The AWS operation name (`Encrypt`), or what the client asked for when it is not one.
    pub operation: String,
    /// Who made the request; `unauthenticated` when it was refused before that was known.
    pub principal: String,
    /// The client's address, when the front end knows it.
    pub source: Option<String>,
    /// The node that answered, and its region.
    pub node: u64,
    pub region: String,
    /// The key the request used: its ARN once resolved, else the key id as the caller gave it.
    pub key_arn: Option<String>,
    /// ReEncrypt only: the key that decrypted the source ciphertext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key_arn: Option<String>,
    /// The encryption context as given (ReEncrypt: the destination context). Sorted by key.
    pub encryption_context: BTreeMap<String, String>,
    /// ReEncrypt only: the source encryption context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_encryption_context: Option<BTreeMap<String, String>>,
    /// `ok`, or the AWS exception name the request was answered with.
    pub outcome: String,
}

/// An [`AuditEvent`] in its place in the chain: one line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// The `hash` of the previous record ([`GENESIS_HASH`](crate::GENESIS_HASH) for `seq` 0).
    pub prev_hash: String,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// SHA-256 over the previous hash and [`canonical_body`](Self::canonical_body), hex.
    /// Empty only while the record is being hashed (and then not serialized).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl AuditRecord {
    /// The bytes the hash covers: the record serialized without its `hash`.
    pub fn canonical_body(&self) -> Vec<u8> {
        let unhashed = BodyView { seq: self.seq, prev_hash: &self.prev_hash, event: &self.event };
        to_json(&unhashed)
    }

    /// The record as one line of the log, without the newline.
    pub fn to_line(&self) -> Vec<u8> {
        to_json(self)
    }

    /// Parses one line (without its newline). Lines that are not exactly what [`to_line`]
    /// writes are refused, so no byte of a record can change without being noticed: unknown
    /// members, reordered members and changed whitespace all count as edits.
    ///
    /// [`to_line`]: Self::to_line
    pub fn from_line(line: &[u8]) -> Result<Self, String> {
        let record: AuditRecord =
            serde_json::from_slice(line).map_err(|e| format!("not a valid audit record ({e})"))?;
        if record.hash.is_empty() {
            return Err("the record has no hash".into());
        }
        if record.to_line() != line {
            return Err("the line is not in canonical form (it was edited)".into());
        }
        Ok(record)
    }
}

/// [`AuditRecord`] without its hash, borrowed, serialized in the same member order.
#[derive(Serialize)]
pub(crate) struct BodyView<'a> {
    pub(crate) seq: u64,
    pub(crate) prev_hash: &'a str,
    #[serde(flatten)]
    pub(crate) event: &'a AuditEvent,
}

impl BodyView<'_> {
    /// Appends the body's JSON to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        // Serializing plain strings, integers and string maps into memory cannot fail.
        let _ = serde_json::to_writer(out, self);
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Serializing plain strings, integers and string maps into memory cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `unix_millis` as RFC 3339 in UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
pub fn rfc3339_millis(unix_millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_millis)).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) fn event(request_id: &str) -> AuditEvent {
        AuditEvent {
            time: rfc3339_millis(1_700_000_000_123),
            request_id: request_id.into(),
            api: "grpc".into(),
            operation: "Encrypt".into(),
            principal: "app".into(),
            source: Some("127.0.0.1:5000".into()),
            node: 1,
            region: "dev-1".into(),
            key_arn: Some("arn:aws:kms:dev-1:000000000000:key/k".into()),
            source_key_arn: None,
            encryption_context: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            source_encryption_context: None,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn a_line_round_trips_and_only_its_canonical_form_parses() {
        let record = AuditRecord { seq: 3, prev_hash: "00".into(), event: event("r1"), hash: "ab".into() };
        let line = record.to_line();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with(r#"{"seq":3,"prev_hash":"00","time":"2023-11-14T22:13:20.123Z""#), "{text}");
        assert!(text.ends_with(r#""outcome":"ok","hash":"ab"}"#), "{text}");
        assert!(text.contains(r#""encryption_context":{"a":"1","b":"2"}"#), "{text}");
        assert!(!text.contains("source_key_arn"), "absent ReEncrypt-only members are left out");
        assert_eq!(AuditRecord::from_line(&line).unwrap(), record);

        let spaced = text.replace(r#""seq":3"#, r#""seq": 3"#);
        assert!(AuditRecord::from_line(spaced.as_bytes()).unwrap_err().contains("canonical"));
        let extra = text.replace(r#""outcome":"ok""#, r#""outcome":"ok","note":"x""#);
        assert!(AuditRecord::from_line(extra.as_bytes()).is_err());
        assert!(AuditRecord::from_line(b"{\"seq\":").unwrap_err().contains("not a valid audit record"));
    }

    #[test]
    fn the_body_is_the_line_without_its_hash() {
        let mut record =
            AuditRecord { seq: 0, prev_hash: "00".into(), event: event("r1"), hash: "ab".into() };
        let body = record.canonical_body();
        record.hash.clear();
        assert_eq!(body, record.to_line());
    }
}
