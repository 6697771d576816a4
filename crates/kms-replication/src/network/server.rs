//! The receiving side: the tonic service that feeds peer RPCs into the local `Raft`.
//!
//! Everything arriving here is peer input: it is decoded defensively and errors go back as
//! messages, never as panics (a malformed message or a short snapshot is an `invalid_argument`).

use std::time::Duration;

use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, ForwardReason, ForwardToLeader};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use super::pb::raft_service_server::{RaftService, RaftServiceServer};
use super::{MAX_SNAPSHOT_BYTES, from_json, pb, to_json};
use crate::codec;
use crate::network::client::MAX_MESSAGE_BYTES;
use crate::types::{Command, Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// Serves one node's Raft RPCs.
pub(crate) struct RaftServer {
    raft: Raft,
    /// Upper bound of a forwarded proposal or a read-index round on this (leader) node.
    request_timeout: Duration,
}

impl RaftServer {
    pub(crate) fn into_service(raft: Raft, request_timeout: Duration) -> RaftServiceServer<Self> {
        RaftServiceServer::new(Self { raft, request_timeout })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn reply<T: serde::Serialize, E: std::fmt::Display>(
    result: Result<T, E>,
) -> Result<Response<pb::RaftReply>, Status> {
    let reply = match result {
        Ok(value) => {
            pb::RaftReply { payload: to_json(&value).map_err(Status::internal)?, error: String::new() }
        }
        Err(e) => pb::RaftReply { payload: Vec::new(), error: e.to_string() },
    };
    Ok(Response::new(reply))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    from_json(bytes).map_err(Status::invalid_argument)
}

fn not_leader(fwd: &ForwardToLeader<TypeConfig>) -> pb::NotLeader {
    pb::NotLeader { leader_id: fwd.leader_id, lease_expired: fwd.reason == ForwardReason::LeaseExpired }
}

/// Reads a whole snapshot stream: one header, then data chunks adding up to `total_len`.
async fn receive_snapshot(mut stream: Streaming<pb::SnapshotChunk>) -> Result<(Vote, Snapshot), Status> {
    let header = match stream.message().await?.and_then(|c| c.part) {
        Some(pb::snapshot_chunk::Part::Header(header)) => header,
        _ => return Err(Status::invalid_argument("snapshot stream must start with a header")),
    };
    let vote: Vote = decode(&header.vote)?;
    let meta: SnapshotMeta = decode(&header.meta)?;
    let total = usize::try_from(header.total_len)
        .ok()
        .filter(|len| *len <= MAX_SNAPSHOT_BYTES)
        .ok_or_else(|| Status::invalid_argument("snapshot too large"))?;
    // Reserve from the declared length only up to one chunk's worth: the length is peer input.
    let mut data = Vec::with_capacity(total.min(super::SNAPSHOT_CHUNK_BYTES));
    while let Some(chunk) = stream.message().await? {
        match chunk.part {
            Some(pb::snapshot_chunk::Part::Data(bytes)) if data.len() + bytes.len() <= total => {
                data.extend_from_slice(&bytes);
            }
            Some(pb::snapshot_chunk::Part::Data(_)) => {
                return Err(Status::invalid_argument("snapshot longer than its header says"));
            }
            _ => return Err(Status::invalid_argument("unexpected message in snapshot stream")),
        }
    }
    if data.len() != total {
        return Err(Status::invalid_argument("snapshot stream ended early"));
    }
    Ok((vote, Snapshot { meta, snapshot: data }))
}

impl RaftServer {
    /// Proposes a command a follower forwarded, as the leader.
    async fn apply_forwarded(&self, command: Command) -> Result<Response<pb::ForwardReply>, Status> {
        let len = command.0.len();
        let written = tokio::time::timeout(self.request_timeout, self.raft.client_write(command))
            .await
            .map_err(|_| Status::deadline_exceeded("forwarded proposal timed out on the leader"))?;
        let result = match written {
            Ok(resp) => {
                tracing::debug!(len, log_index = resp.log_id.index, "applied forwarded proposal");
                pb::forward_reply::Result::Applied(pb::Applied {
                    response: resp.data.0,
                    log_index: resp.log_id.index,
                })
            }
            Err(e) => match e.api_error() {
                Some(ClientWriteError::ForwardToLeader(fwd)) => {
                    pb::forward_reply::Result::NotLeader(not_leader(fwd))
                }
                Some(ClientWriteError::LogEntryDiscarded(fwd)) => {
                    pb::forward_reply::Result::Discarded(not_leader(fwd))
                }
                _ => return Err(Status::unavailable(format!("forwarded proposal failed: {e}"))),
            },
        };
        Ok(Response::new(pb::ForwardReply { result: Some(result) }))
    }

    /// A read index from this node as the leader (for a follower's read barrier).
    async fn leader_read_index(&self) -> Result<Response<pb::ReadIndexReply>, Status> {
        let linearizer =
            tokio::time::timeout(self.request_timeout, self.raft.get_read_linearizer(ReadPolicy::ReadIndex))
                .await
                .map_err(|_| Status::deadline_exceeded("read index timed out on the leader"))?;
        let result = match linearizer {
            Ok(linearizer) => pb::read_index_reply::Result::ReadIndex(linearizer.read_log_id().index()),
            Err(e) => match e.forward_to_leader() {
                Some(fwd) => pb::read_index_reply::Result::NotLeader(not_leader(fwd)),
                None => return Err(Status::unavailable(format!("read index failed: {e}"))),
            },
        };
        Ok(Response::new(pb::ReadIndexReply { result: Some(result) }))
    }
}

fn invalid(reason: String) -> Status {
    Status::invalid_argument(format!("malformed raft message: {reason}"))
}

/// A typed reply's two fields: the result converted by `to_pb`, or the reason the local Raft
/// refused (never data).
fn outcome<T, P, E: std::fmt::Display>(
    result: Result<T, E>,
    to_pb: impl FnOnce(&T) -> P,
) -> (Option<P>, String) {
    match result {
        Ok(value) => (Some(to_pb(&value)), String::new()),
        Err(e) => (None, e.to_string()),
    }
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append(&self, request: Request<pb::AppendRequest>) -> Result<Response<pb::AppendReply>, Status> {
        let req = codec::append_request_from_pb(request.into_inner()).map_err(invalid)?;
        let (result, error) = outcome(self.raft.append_entries(req).await, codec::append_response_to_pb);
        Ok(Response::new(pb::AppendReply { result, error }))
    }

    async fn request_vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteReply>, Status> {
        let req = codec::vote_request_from_pb(request.into_inner()).map_err(invalid)?;
        let (result, error) = outcome(self.raft.vote(req).await, codec::vote_response_to_pb);
        Ok(Response::new(pb::VoteReply { result, error }))
    }

    async fn request_pre_vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteReply>, Status> {
        let req = codec::vote_request_from_pb(request.into_inner()).map_err(invalid)?;
        let (result, error) = outcome(self.raft.pre_vote(req).await, codec::vote_response_to_pb);
        Ok(Response::new(pb::VoteReply { result, error }))
    }

    // The earlier build's serde_json RPCs, kept for rolling upgrades (see raft.proto).

    async fn vote(&self, request: Request<pb::RaftRequest>) -> Result<Response<pb::RaftReply>, Status> {
        let req: VoteRequest<_> = decode(&request.into_inner().payload)?;
        reply(self.raft.vote(req).await)
    }

    async fn pre_vote(&self, request: Request<pb::RaftRequest>) -> Result<Response<pb::RaftReply>, Status> {
        let req: VoteRequest<_> = decode(&request.into_inner().payload)?;
        reply(self.raft.pre_vote(req).await)
    }

    async fn append_entries(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let req: AppendEntriesRequest<_> = decode(&request.into_inner().payload)?;
        reply(self.raft.append_entries(req).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let (vote, snapshot) = receive_snapshot(request.into_inner()).await?;
        tracing::info!(
            last_log_index = snapshot.meta.last_log_id.as_ref().map(|id| id.index),
            bytes = snapshot.snapshot.len(),
            "received snapshot"
        );
        reply(self.raft.install_full_snapshot(vote, snapshot).await)
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let req: TransferLeaderRequest<_> = decode(&request.into_inner().payload)?;
        tracing::info!(from = %req.from_leader(), "asked to take over leadership");
        reply(self.raft.handle_transfer_leader(req).await)
    }

    async fn forward(
        &self,
        request: Request<pb::ForwardRequest>,
    ) -> Result<Response<pb::ForwardReply>, Status> {
        let span = tracing::info_span!(target: crate::trace_context::REQUEST_SPAN_TARGET, "raft.forward", otel.kind = "server");
        crate::trace_context::adopt_parent(&span, request.metadata());
        self.apply_forwarded(Command(request.into_inner().command)).instrument(span).await
    }

    async fn read_index(
        &self,
        request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexReply>, Status> {
        let span = tracing::info_span!(target: crate::trace_context::REQUEST_SPAN_TARGET, "raft.read_index", otel.kind = "server");
        crate::trace_context::adopt_parent(&span, request.metadata());
        self.leader_read_index().instrument(span).await
    }
}

/// Serves a node's status and membership changes to its peers (`kms.raft.v1.RaftAdminService`).
pub(crate) struct RaftAdminServer {
    admin: crate::admin::AdminCore,
}

impl RaftAdminServer {
    pub(crate) fn into_service(
        admin: crate::admin::AdminCore,
    ) -> pb::raft_admin_service_server::RaftAdminServiceServer<Self> {
        pb::raft_admin_service_server::RaftAdminServiceServer::new(Self { admin })
    }
}

#[tonic::async_trait]
impl pb::raft_admin_service_server::RaftAdminService for RaftAdminServer {
    async fn node_status(
        &self,
        _request: Request<pb::NodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatusReply>, Status> {
        Ok(Response::new(crate::admin::report_to_pb(&self.admin.status())))
    }

    async fn admin(&self, request: Request<pb::AdminRequest>) -> Result<Response<pb::AdminReply>, Status> {
        let change = crate::admin::change_from_pb(request.into_inner())
            .ok_or_else(|| Status::invalid_argument("admin request without an operation"))?;
        tracing::info!(?change, "cluster change handed over by a peer");
        Ok(Response::new(crate::admin::reply_to_pb(self.admin.apply(&change).await)))
    }
}
