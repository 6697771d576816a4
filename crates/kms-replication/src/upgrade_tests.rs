//! What a node must still accept from an earlier build: a Raft log whose entries are serde_json
//! documents, and the serde_json RPC envelopes a not-yet-upgraded leader sends (rolling upgrade).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kms_core::store::StateRead;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use rocksdb::{IteratorMode, WriteBatch};

use crate::db::{self, CF_LOG};
use crate::network::pb;
use crate::network::pb::raft_service_client::RaftServiceClient;
use crate::replay_tests::{PutApp, config, wipe_state_machine};
use crate::types::{TypeConfig, Vote};
use crate::{Region, codec};

/// Rewrites every stored log entry the way builds before the protobuf log stored it.
async fn rewrite_log_as_json(dir: &std::path::Path) -> usize {
    let db = db::open_with_retry(&dir.join("raft")).await.unwrap();
    let cf = db::cf(&db, CF_LOG).unwrap();
    let mut batch = WriteBatch::default();
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (key, value) = item.unwrap();
        assert_ne!(value.first(), Some(&b'{'), "this build stores protobuf entries");
        let entry = codec::decode_stored_entry(&value).unwrap();
        batch.put_cf(cf, key, db::encode(&entry, "entry").unwrap());
    }
    let rewritten = batch.len();
    db.write(batch).unwrap();
    rewritten
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stored_as_json_by_an_earlier_build_is_replayed_and_extended() {
    let dir = tempfile::tempdir().unwrap();
    let region = Region::open(config(dir.path()), Arc::new(PutApp)).await.unwrap();
    region.initialize(BTreeMap::from([(1, region.raft_addr().to_string())])).await.unwrap();
    for i in 0..20 {
        region.propose(format!("k{i}=v{i}").into_bytes()).await.unwrap();
    }
    region.shutdown().await.unwrap();
    drop(region);

    // Blank, membership and normal entries, all in the earlier format; the state machine must
    // be rebuilt from them.
    assert!(rewrite_log_as_json(dir.path()).await >= 22);
    wipe_state_machine(dir.path()).await;

    let region = Region::open(config(dir.path()), Arc::new(PutApp)).await.unwrap();
    let reader = region.reader();
    for i in 0..20 {
        assert_eq!(reader.get(format!("k{i}").as_bytes()).unwrap(), Some(format!("v{i}").into_bytes()));
    }
    drop(reader);
    // And the mixed log (earlier entries JSON, new ones protobuf) keeps working.
    region.propose(b"after=upgrade".to_vec()).await.unwrap();
    assert_eq!(region.reader().get(b"after").unwrap(), Some(b"upgrade".to_vec()));
    region.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // the deprecated JSON RPCs are what this test is about
async fn the_earlier_builds_json_rpcs_are_still_served_alongside_the_typed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let region = Region::open(config(dir.path()), Arc::new(PutApp)).await.unwrap();
    region.initialize(BTreeMap::from([(1, region.raft_addr().to_string())])).await.unwrap();
    region.propose(b"k=v".to_vec()).await.unwrap();
    let mut client = RaftServiceClient::connect(format!("http://{}", region.raft_addr())).await.unwrap();

    // A peer from term 0, behind the node's own term: refused, with the node's newer vote.
    let stale = Vote { leader_id: LeaderId { term: 0, node_id: 9 }, committed: false };
    let vote = VoteRequest::<TypeConfig>::new(stale, None);
    let payload = serde_json::to_vec(&vote).unwrap();
    let reply = client.vote(pb::RaftRequest { payload }).await.unwrap().into_inner();
    assert_eq!(reply.error, "");
    let json: VoteResponse<TypeConfig> = serde_json::from_slice(&reply.payload).unwrap();
    assert!(!json.vote_granted);
    assert!(json.vote.leader_id.term >= 1);

    let reply = client.request_vote(codec::vote_request_to_pb(&vote)).await.unwrap().into_inner();
    let typed = codec::vote_response_from_pb(reply.result).unwrap();
    assert!(!typed.vote_granted);
    assert_eq!(typed.vote, json.vote);

    let append = AppendEntriesRequest::<TypeConfig> {
        vote: stale,
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let payload = serde_json::to_vec(&append).unwrap();
    let reply = client.append_entries(pb::RaftRequest { payload }).await.unwrap().into_inner();
    let json: AppendEntriesResponse<TypeConfig> = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(json, AppendEntriesResponse::HigherVote(typed.vote));

    let reply = client.append(codec::append_request_to_pb(append)).await.unwrap().into_inner();
    assert_eq!(codec::append_response_from_pb(reply.result).unwrap(), json);

    // Malformed peer input is refused as such, and the node goes on serving.
    let status = client.append(pb::AppendRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("vote is missing"), "{}", status.message());
    region.propose(b"still=serving".to_vec()).await.unwrap();
    region.shutdown().await.unwrap();
}
