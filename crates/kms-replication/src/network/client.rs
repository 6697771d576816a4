//! The openraft side of the transport: `RaftNetworkFactory` + `RaftNetworkV2` over tonic.

use std::future::Future;
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tonic::{Code, Status};

use super::peers::{Peers, RaftClient};
use super::{SNAPSHOT_CHUNK_BYTES, from_json, pb, to_json};
use crate::codec;
use crate::types::{RaftNode, Snapshot, SnapshotData, TypeConfig, Vote};

/// Largest message accepted from a peer (append-entries batches of sealed key material).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

type RpcError = RPCError<TypeConfig>;

/// Hands openraft one client per peer, all sharing the cached channels.
pub(crate) struct NetworkFactory {
    peers: Peers,
}

impl NetworkFactory {
    pub(crate) fn new(peers: Peers) -> Self {
        Self { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &RaftNode) -> PeerClient {
        PeerClient { self_id: self.peers.self_id(), target, client: self.peers.client(target, &node.addr) }
    }
}

/// The connection openraft uses to replicate to one peer.
pub(crate) struct PeerClient {
    self_id: u64,
    target: u64,
    /// `Err` when no client can exist (bad address, or the local node): every RPC reports the
    /// peer unreachable so openraft backs off instead of crashing.
    client: Result<RaftClient, String>,
}

/// Maps a gRPC failure: connection-level failures, and a node at the peer's address that is not
/// the peer (`super::addressing`), make openraft back off (`Unreachable`); a deadline becomes
/// `Timeout`; anything else is a plain network error.
fn status_to_rpc_error(status: &Status, timeout: Timeout<TypeConfig>) -> RpcError {
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::FailedPrecondition => {
            RPCError::Unreachable(Unreachable::from_string(status.message()))
        }
        Code::DeadlineExceeded => RPCError::Timeout(timeout),
        _ => {
            RPCError::Network(NetworkError::from_string(format!("{:?}: {}", status.code(), status.message())))
        }
    }
}

impl PeerClient {
    fn timeout(&self, action: RPCTypes, after: Duration) -> Timeout<TypeConfig> {
        Timeout { action, id: self.self_id, target: self.target, timeout: after }
    }

    fn client(&self) -> Result<RaftClient, Unreachable<TypeConfig>> {
        self.client
            .clone()
            .map(|c| c.max_decoding_message_size(MAX_MESSAGE_BYTES))
            .map_err(Unreachable::from_string)
    }

    /// One unary RPC with a deadline of `option.soft_ttl()`, gRPC failures mapped for openraft.
    async fn call<Req, Reply, F, Fut>(
        &self,
        action: RPCTypes,
        request: Req,
        option: &RPCOption,
        send: F,
    ) -> Result<Reply, RpcError>
    where
        F: FnOnce(RaftClient, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Reply>, Status>>,
    {
        let client = self.client()?;
        let deadline = option.soft_ttl();
        let mut request = tonic::Request::new(request);
        request.set_timeout(deadline);
        match tokio::time::timeout(deadline, send(client, request)).await {
            Err(_) => Err(RPCError::Timeout(self.timeout(action, deadline))),
            Ok(Err(status)) => Err(status_to_rpc_error(&status, self.timeout(action, deadline))),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }

    /// Turns a reply's `error` (the peer is up but its Raft refused, typically while stopping)
    /// into a reason to back off like for a dead peer, or decodes the reply.
    fn accept<T>(&self, error: &str, decode: impl FnOnce() -> Result<T, String>) -> Result<T, RpcError> {
        if !error.is_empty() {
            return Err(RPCError::Unreachable(Unreachable::from_string(format!(
                "node {} raft error: {error}",
                self.target
            ))));
        }
        decode().map_err(|e| RPCError::Network(NetworkError::from_string(format!("decode reply: {e}"))))
    }

    async fn request_vote(
        &self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
        pre_vote: bool,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        let request = codec::vote_request_to_pb(&rpc);
        let reply = self
            .call(RPCTypes::Vote, request, &option, |mut c, r| async move {
                if pre_vote { c.request_pre_vote(r).await } else { c.request_vote(r).await }
            })
            .await?;
        self.accept(&reply.error, || codec::vote_response_from_pb(reply.result))
    }

    fn snapshot_chunks(vote: &Vote, snapshot: &Snapshot) -> Result<Vec<pb::SnapshotChunk>, String> {
        let header = pb::SnapshotHeader {
            vote: to_json(vote)?,
            meta: to_json(&snapshot.meta)?,
            total_len: snapshot.snapshot.len() as u64,
        };
        let mut chunks = vec![pb::SnapshotChunk { part: Some(pb::snapshot_chunk::Part::Header(header)) }];
        chunks.extend(
            snapshot
                .snapshot
                .chunks(SNAPSHOT_CHUNK_BYTES)
                .map(|data| pb::SnapshotChunk { part: Some(pb::snapshot_chunk::Part::Data(data.to_vec())) }),
        );
        Ok(chunks)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcError> {
        let request = codec::append_request_to_pb(rpc);
        let reply = self
            .call(RPCTypes::AppendEntries, request, &option, |mut c, r| async move { c.append(r).await })
            .await?;
        self.accept(&reply.error, || codec::append_response_from_pb(reply.result))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        self.request_vote(rpc, option, false).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        self.request_vote(rpc, option, true).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcError> {
        let payload = to_json(&req).map_err(|e| RPCError::Network(NetworkError::from_string(e)))?;
        let request = pb::RaftRequest { payload };
        let reply =
            self.call(RPCTypes::TransferLeader, request, &option, |mut c, r| async move {
                c.transfer_leader(r).await
            })
            .await?;
        self.accept(&reply.error, || from_json(&reply.payload))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // Snapshot data always starts with its format's magic. Empty data is the metadata-only
        // answer of a node still starting (`StateMachine::starting`): refuse to send it, and
        // openraft asks the state machine again after its backoff.
        if snapshot.snapshot.is_empty() {
            return Err(NetworkError::from_string("snapshot data is not made yet; will retry").into());
        }
        let mut client = self.client()?;
        let chunks = Self::snapshot_chunks(&vote, &snapshot).map_err(NetworkError::from_string)?;
        // The soft TTL bounds each chunk, not the whole transfer: a large snapshot must be able
        // to finish.
        let chunk_count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        let deadline = option.soft_ttl().saturating_mul(chunk_count);
        let call = client.install_snapshot(tokio_stream::iter(chunks));
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = tokio::time::timeout(deadline, call) => reply,
        };
        let reply = match reply {
            Err(_) => return Err(self.timeout(RPCTypes::InstallSnapshot, deadline).into()),
            Ok(Err(status)) => {
                let err = status_to_rpc_error(&status, self.timeout(RPCTypes::InstallSnapshot, deadline));
                return Err(err.into());
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        if !reply.error.is_empty() {
            return Err(Unreachable::from_string(format!(
                "node {} refused snapshot: {}",
                self.target, reply.error
            ))
            .into());
        }
        tracing::info!(target_node = self.target, bytes = snapshot.snapshot.len(), "sent snapshot");
        from_json(&reply.payload).map_err(|e| NetworkError::from_string(e).into())
    }
}
