//! The typed protobuf forms (`kms.raft.v1`) of openraft's hot-path messages: AppendEntries and
//! (pre-)votes on the wire, and the log entry, which is also the Raft log's on-disk format.
//!
//! Decoding takes peer or disk input: a missing or inconsistent field is an error naming what
//! was wrong, never a panic and never a default that could change one of Raft's decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use openraft::{EntryPayload, Membership};
use prost::Message as _;

use crate::network::pb;
use crate::types::{Command, Entry, LogId, RaftNode, TypeConfig, Vote};

/// What went wrong decoding a message (peer or disk input; names the field, never echoes data).
pub(crate) type DecodeResult<T> = Result<T, String>;

fn required<T>(field: Option<T>, what: &str) -> DecodeResult<T> {
    field.ok_or_else(|| format!("{what} is missing"))
}

fn leader_id_to_pb(id: &LeaderId<u64, u64>) -> pb::LeaderId {
    pb::LeaderId { term: id.term, node_id: id.node_id }
}

fn leader_id_from_pb(id: Option<pb::LeaderId>, what: &str) -> DecodeResult<LeaderId<u64, u64>> {
    let id = required(id, what)?;
    Ok(LeaderId { term: id.term, node_id: id.node_id })
}

pub(crate) fn vote_to_pb(vote: &Vote) -> pb::Vote {
    pb::Vote { leader_id: Some(leader_id_to_pb(&vote.leader_id)), committed: vote.committed }
}

pub(crate) fn vote_from_pb(vote: Option<pb::Vote>) -> DecodeResult<Vote> {
    let vote = required(vote, "vote")?;
    Ok(Vote { leader_id: leader_id_from_pb(vote.leader_id, "vote leader id")?, committed: vote.committed })
}

fn log_id_to_pb(id: &LogId) -> pb::LogId {
    pb::LogId { leader_id: Some(leader_id_to_pb(&id.leader_id)), index: id.index }
}

/// An optional log id: absent stays `None`; present must be whole.
fn log_id_from_pb(id: Option<pb::LogId>) -> DecodeResult<Option<LogId>> {
    id.map(|id| {
        Ok(LogId { leader_id: leader_id_from_pb(id.leader_id, "log id leader id")?, index: id.index })
    })
    .transpose()
}

fn membership_to_pb(membership: &Membership<u64, RaftNode>) -> pb::Membership {
    pb::Membership {
        configs: membership
            .get_joint_config()
            .iter()
            .map(|voters| pb::VoterSet { node_ids: voters.iter().copied().collect() })
            .collect(),
        nodes: membership.nodes().map(|(id, node)| (*id, pb::Node { addr: node.addr.clone() })).collect(),
    }
}

/// Rebuilt through openraft's own validation (every voter must have a node entry).
fn membership_from_pb(membership: pb::Membership) -> DecodeResult<Membership<u64, RaftNode>> {
    let configs: Vec<BTreeSet<u64>> =
        membership.configs.into_iter().map(|set| set.node_ids.into_iter().collect()).collect();
    let nodes: BTreeMap<u64, RaftNode> =
        membership.nodes.into_iter().map(|(id, node)| (id, RaftNode { addr: node.addr })).collect();
    Membership::new(configs, nodes).map_err(|e| format!("invalid membership: {e}"))
}

/// Prints the entry's id and what its payload is; a command only by its length (it may hold
/// sealed key material).
impl std::fmt::Debug for pb::LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entry = f.debug_struct("LogEntry");
        entry.field("log_id", &self.log_id);
        match &self.payload {
            None => entry.field("payload", &"none"),
            Some(pb::log_entry::Payload::Blank(_)) => entry.field("payload", &"blank"),
            Some(pb::log_entry::Payload::Command(bytes)) => entry.field("command_len", &bytes.len()),
            Some(pb::log_entry::Payload::Membership(membership)) => entry.field("membership", membership),
        };
        entry.finish()
    }
}

/// A forwarded command, by its length only (see [`pb::LogEntry`]'s `Debug`).
impl std::fmt::Debug for pb::ForwardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardRequest").field("command_len", &self.command.len()).finish()
    }
}

/// The earlier build's JSON envelope, by its length only: an AppendEntries in it carries commands.
impl std::fmt::Debug for pb::RaftRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRequest").field("payload_len", &self.payload.len()).finish()
    }
}

/// A snapshot's header in full (vote, metadata), its data (the whole state) by length only.
impl std::fmt::Debug for pb::SnapshotChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut chunk = f.debug_struct("SnapshotChunk");
        match &self.part {
            None => chunk.field("part", &"none"),
            Some(pb::snapshot_chunk::Part::Header(header)) => chunk.field("header", header),
            Some(pb::snapshot_chunk::Part::Data(data)) => chunk.field("data_len", &data.len()),
        };
        chunk.finish()
    }
}

/// A forwarded command's response, by its length only: it may carry a key record.
impl std::fmt::Debug for pb::Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("response_len", &self.response.len())
            .field("log_index", &self.log_index)
            .finish()
    }
}

pub(crate) fn entry_to_pb(entry: Entry) -> pb::LogEntry {
    let payload = match entry.payload {
        EntryPayload::Blank => pb::log_entry::Payload::Blank(pb::Blank {}),
        EntryPayload::Normal(command) => pb::log_entry::Payload::Command(command.0),
        EntryPayload::Membership(membership) => {
            pb::log_entry::Payload::Membership(membership_to_pb(&membership))
        }
    };
    pb::LogEntry { log_id: Some(log_id_to_pb(&entry.log_id)), payload: Some(payload) }
}

pub(crate) fn entry_from_pb(entry: pb::LogEntry) -> DecodeResult<Entry> {
    let log_id = required(log_id_from_pb(entry.log_id)?, "log entry id")?;
    let payload = match required(entry.payload, "log entry payload")? {
        pb::log_entry::Payload::Blank(_) => EntryPayload::Blank,
        pb::log_entry::Payload::Command(bytes) => EntryPayload::Normal(Command(bytes)),
        pb::log_entry::Payload::Membership(membership) => {
            EntryPayload::Membership(membership_from_pb(membership)?)
        }
    };
    Ok(Entry { log_id, payload })
}

/// A log entry as stored in the Raft log column family.
pub(crate) fn encode_stored_entry(entry: Entry) -> Vec<u8> {
    entry_to_pb(entry).encode_to_vec()
}

/// Decodes a stored log entry. Logs written before entries were protobuf hold serde_json
/// documents, which always start with `{`; a protobuf `LogEntry` never does (its first byte is a
/// field-1 or field-2..4 tag).
pub(crate) fn decode_stored_entry(bytes: &[u8]) -> io::Result<Entry> {
    if bytes.first() == Some(&b'{') {
        return crate::db::decode(bytes, "raft log entry (serde_json, written by an earlier build)");
    }
    pb::LogEntry::decode(bytes)
        .map_err(|e| e.to_string())
        .and_then(entry_from_pb)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("decode raft log entry: {e}")))
}

pub(crate) fn append_request_to_pb(request: AppendEntriesRequest<TypeConfig>) -> pb::AppendRequest {
    pb::AppendRequest {
        vote: Some(vote_to_pb(&request.vote)),
        prev_log_id: request.prev_log_id.as_ref().map(log_id_to_pb),
        entries: request.entries.into_iter().map(entry_to_pb).collect(),
        leader_commit: request.leader_commit.as_ref().map(log_id_to_pb),
    }
}

pub(crate) fn append_request_from_pb(
    request: pb::AppendRequest,
) -> DecodeResult<AppendEntriesRequest<TypeConfig>> {
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(request.vote)?,
        prev_log_id: log_id_from_pb(request.prev_log_id)?,
        entries: request.entries.into_iter().map(entry_from_pb).collect::<DecodeResult<_>>()?,
        leader_commit: log_id_from_pb(request.leader_commit)?,
    })
}

pub(crate) fn append_response_to_pb(response: &AppendEntriesResponse<TypeConfig>) -> pb::AppendResult {
    use pb::append_result::Result as R;
    let result = match response {
        AppendEntriesResponse::Success => R::Success(pb::Blank {}),
        AppendEntriesResponse::PartialSuccess(matched) => {
            R::PartialSuccess(pb::PartialSuccess { matched: matched.as_ref().map(log_id_to_pb) })
        }
        AppendEntriesResponse::Conflict => R::Conflict(pb::Blank {}),
        AppendEntriesResponse::HigherVote(vote) => R::HigherVote(vote_to_pb(vote)),
    };
    pb::AppendResult { result: Some(result) }
}

pub(crate) fn append_response_from_pb(
    response: Option<pb::AppendResult>,
) -> DecodeResult<AppendEntriesResponse<TypeConfig>> {
    use pb::append_result::Result as R;
    Ok(match required(required(response, "append result")?.result, "append result")? {
        R::Success(_) => AppendEntriesResponse::Success,
        R::PartialSuccess(partial) => AppendEntriesResponse::PartialSuccess(log_id_from_pb(partial.matched)?),
        R::Conflict(_) => AppendEntriesResponse::Conflict,
        R::HigherVote(vote) => AppendEntriesResponse::HigherVote(vote_from_pb(Some(vote))?),
    })
}

pub(crate) fn vote_request_to_pb(request: &VoteRequest<TypeConfig>) -> pb::VoteRequest {
    pb::VoteRequest {
        vote: Some(vote_to_pb(&request.vote)),
        last_log_id: request.last_log_id.as_ref().map(log_id_to_pb),
        leadership_transfer: request.leadership_transfer,
    }
}

pub(crate) fn vote_request_from_pb(request: pb::VoteRequest) -> DecodeResult<VoteRequest<TypeConfig>> {
    Ok(VoteRequest {
        vote: vote_from_pb(request.vote)?,
        last_log_id: log_id_from_pb(request.last_log_id)?,
        leadership_transfer: request.leadership_transfer,
    })
}

pub(crate) fn vote_response_to_pb(response: &VoteResponse<TypeConfig>) -> pb::VoteResult {
    pb::VoteResult {
        vote: Some(vote_to_pb(&response.vote)),
        vote_granted: response.vote_granted,
        last_log_id: response.last_log_id.as_ref().map(log_id_to_pb),
    }
}

pub(crate) fn vote_response_from_pb(
    response: Option<pb::VoteResult>,
) -> DecodeResult<VoteResponse<TypeConfig>> {
    let response = required(response, "vote result")?;
    Ok(VoteResponse {
        vote: vote_from_pb(response.vote)?,
        vote_granted: response.vote_granted,
        last_log_id: log_id_from_pb(response.last_log_id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(term: u64, node_id: u64) -> LeaderId<u64, u64> {
        LeaderId { term, node_id }
    }

    fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
        LogId { leader_id: leader(term, node_id), index }
    }

    fn node(addr: &str) -> RaftNode {
        RaftNode { addr: addr.to_owned() }
    }

    fn joint_membership() -> Membership<u64, RaftNode> {
        let configs = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])];
        let nodes = BTreeMap::from([
            (1, node("10.0.0.1:7001")),
            (2, node("10.0.0.2:7001")),
            (3, node("10.0.0.3:7001")),
            (4, node("10.0.0.4:7001")),
            (5, node("10.0.0.5:7001")),
        ]);
        Membership::new(configs, nodes).unwrap()
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry { log_id: log_id(3, 1, 10), payload: EntryPayload::Blank },
            Entry { log_id: log_id(3, 1, 11), payload: EntryPayload::Normal(Command(vec![0, 1, 2, 255])) },
            Entry { log_id: log_id(3, 1, 12), payload: EntryPayload::Normal(Command(Vec::new())) },
            Entry { log_id: log_id(3, 1, 13), payload: EntryPayload::Membership(joint_membership()) },
        ]
    }

    fn vote(term: u64, node_id: u64, committed: bool) -> Vote {
        Vote { leader_id: leader(term, node_id), committed }
    }

    #[test]
    fn append_request_round_trips_every_payload_kind() {
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: vote(3, 1, true),
            prev_log_id: Some(log_id(2, 2, 9)),
            entries: entries(),
            leader_commit: Some(log_id(3, 1, 10)),
        };
        let wire = append_request_to_pb(request.clone()).encode_to_vec();
        let back = append_request_from_pb(pb::AppendRequest::decode(wire.as_slice()).unwrap()).unwrap();
        assert_eq!(back.vote, request.vote);
        assert_eq!(back.prev_log_id, request.prev_log_id);
        assert_eq!(back.entries, request.entries);
        assert_eq!(back.leader_commit, request.leader_commit);

        let first = AppendEntriesRequest::<TypeConfig> {
            vote: vote(1, 1, false),
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        };
        let back = append_request_from_pb(append_request_to_pb(first)).unwrap();
        assert_eq!((back.prev_log_id, back.leader_commit, back.entries.len()), (None, None, 0));
    }

    #[test]
    fn append_responses_and_votes_round_trip() {
        for response in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(None),
            AppendEntriesResponse::PartialSuccess(Some(log_id(4, 2, 77))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(vote(5, 3, false)),
        ] {
            let wire = append_response_to_pb(&response).encode_to_vec();
            let back = append_response_from_pb(Some(pb::AppendResult::decode(wire.as_slice()).unwrap()));
            assert_eq!(back.unwrap(), response);
        }

        let request = VoteRequest::<TypeConfig> {
            vote: vote(7, 2, false),
            last_log_id: Some(log_id(6, 1, 100)),
            leadership_transfer: true,
        };
        assert_eq!(vote_request_from_pb(vote_request_to_pb(&request)).unwrap(), request);
        for last_log_id in [None, Some(log_id(6, 1, 100))] {
            let response =
                VoteResponse::<TypeConfig> { vote: vote(7, 2, true), vote_granted: true, last_log_id };
            assert_eq!(vote_response_from_pb(Some(vote_response_to_pb(&response))).unwrap(), response);
        }
    }

    #[test]
    fn stored_entries_round_trip_and_earlier_json_entries_still_read() {
        for entry in entries() {
            assert_eq!(decode_stored_entry(&encode_stored_entry(entry.clone())).unwrap(), entry);
            // What an earlier build wrote: the serde_json document of the same entry.
            let json = crate::db::encode(&entry, "entry").unwrap();
            assert_eq!(json.first(), Some(&b'{'));
            assert_eq!(decode_stored_entry(&json).unwrap(), entry);
        }
    }

    #[test]
    fn debug_output_of_a_log_entry_hides_the_command() {
        let entry = Entry {
            log_id: log_id(3, 1, 11),
            payload: EntryPayload::Normal(Command(b"sealed-bytes".to_vec())),
        };
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: vote(3, 1, true),
            prev_log_id: None,
            entries: vec![entry],
            leader_commit: None,
        };
        let printed = format!("{:?}", append_request_to_pb(request));
        assert!(printed.contains("command_len: 12"), "{printed}");
        assert!(!printed.contains("115, 101, 97"), "{printed}"); // "sea" as bytes
    }

    #[test]
    fn debug_output_of_a_forwarded_command_and_its_response_hides_the_bytes() {
        let forwarded = format!("{:?}", pb::ForwardRequest { command: b"sealed-bytes".to_vec() });
        assert_eq!(forwarded, "ForwardRequest { command_len: 12 }");
        let applied = format!("{:?}", pb::Applied { response: b"key-record".to_vec(), log_index: 7 });
        assert_eq!(applied, "Applied { response_len: 10, log_index: 7 }");
    }

    #[test]
    fn debug_output_of_the_json_envelope_and_snapshot_data_hides_the_bytes() {
        let request = format!("{:?}", pb::RaftRequest { payload: b"{\"entries\":[]}".to_vec() });
        assert_eq!(request, "RaftRequest { payload_len: 14 }");
        let part = Some(pb::snapshot_chunk::Part::Data(b"state".to_vec()));
        assert_eq!(format!("{:?}", pb::SnapshotChunk { part }), "SnapshotChunk { data_len: 5 }");
    }

    #[test]
    fn malformed_messages_are_errors_naming_the_field() {
        let missing_vote = pb::AppendRequest::default();
        assert_eq!(append_request_from_pb(missing_vote).unwrap_err(), "vote is missing");

        let no_payload = pb::LogEntry { log_id: Some(log_id_to_pb(&log_id(1, 1, 1))), payload: None };
        assert_eq!(entry_from_pb(no_payload).unwrap_err(), "log entry payload is missing");

        let no_id = pb::LogEntry { log_id: None, payload: Some(pb::log_entry::Payload::Blank(pb::Blank {})) };
        assert_eq!(entry_from_pb(no_id).unwrap_err(), "log entry id is missing");

        let half_log_id = pb::LogId { leader_id: None, index: 4 };
        let request = pb::VoteRequest {
            vote: Some(vote_to_pb(&vote(1, 1, false))),
            last_log_id: Some(half_log_id),
            leadership_transfer: false,
        };
        assert_eq!(vote_request_from_pb(request).unwrap_err(), "log id leader id is missing");

        // A voter without a node entry: openraft's own validation refuses it.
        let voter_without_node = pb::Membership {
            configs: vec![pb::VoterSet { node_ids: vec![1, 2] }],
            nodes: [(1, pb::Node { addr: "a:1".into() })].into_iter().collect(),
        };
        assert!(membership_from_pb(voter_without_node).unwrap_err().starts_with("invalid membership"));

        assert_eq!(
            append_response_from_pb(Some(pb::AppendResult { result: None })).unwrap_err(),
            "append result is missing"
        );
        assert!(decode_stored_entry(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode_stored_entry(b"{not json").is_err());
    }
}
