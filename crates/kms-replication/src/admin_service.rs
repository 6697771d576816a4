//! The client-facing `kms.admin.v1.ClusterAdmin` gRPC service, served by kmsd on its client port
//! next to kms.v1. Thin: validates the request, calls [`Region`], maps errors to gRPC codes.
//!
//! Error codes: UNAVAILABLE for transient failures (no leader, no quorum, timeout, a peer not
//! reachable: retry), FAILED_PRECONDITION for a change the region refuses as asked,
//! INVALID_ARGUMENT for a malformed request, INTERNAL for storage or fatal Raft errors.

use kms_proto::admin::v1 as pb;
use kms_proto::admin::v1::cluster_admin_server::{ClusterAdmin, ClusterAdminServer};
use tonic::{Request, Response, Status};

use crate::admin::{ClusterChange, MembershipView};
use crate::error::ReplicationError;
use crate::region::Region;

/// `ClusterAdmin` over one node's [`Region`].
#[derive(Debug, Clone)]
pub struct ClusterAdminService {
    region: Region,
}

impl ClusterAdminService {
    pub fn new(region: Region) -> Self {
        Self { region }
    }

    pub fn into_server(self) -> ClusterAdminServer<Self> {
        ClusterAdminServer::new(self)
    }

    async fn change(&self, change: ClusterChange) -> Result<Response<pb::MembershipResponse>, Status> {
        tracing::info!(?change, "cluster change requested");
        match self.region.change_cluster(change).await {
            Ok(view) => Ok(Response::new(membership_response(view))),
            Err(e) => Err(status(e)),
        }
    }
}

fn membership_response(view: MembershipView) -> pb::MembershipResponse {
    pb::MembershipResponse {
        voters: view.voters.into_iter().collect(),
        learners: view.learners.into_iter().collect(),
        leader_id: view.leader_id,
    }
}

/// Maps a replication error to a gRPC status; messages carry ids and reasons only. The
/// `x-kms-exception` metadata is set as on the KMS API, so clients (kmsctl) tell a service
/// answer from a connection failure.
pub fn status(e: ReplicationError) -> Status {
    let message = e.to_string();
    let (mut status, exception) = match e {
        ReplicationError::NotLeader { .. }
        | ReplicationError::NoLeader { .. }
        | ReplicationError::Timeout { .. }
        | ReplicationError::Transport { .. } => (Status::unavailable(message), "DependencyTimeoutException"),
        ReplicationError::Invalid { .. } => (Status::failed_precondition(message), "ValidationException"),
        ReplicationError::Storage { .. } | ReplicationError::Fatal { .. } => {
            (Status::internal(message), "KMSInternalException")
        }
    };
    status
        .metadata_mut()
        .insert(kms_proto::EXCEPTION_METADATA_KEY, tonic::metadata::MetadataValue::from_static(exception));
    status
}

fn node_id(id: u64) -> Result<u64, Status> {
    if id == 0 { Err(Status::invalid_argument("node_id must be at least 1")) } else { Ok(id) }
}

#[tonic::async_trait]
impl ClusterAdmin for ClusterAdminService {
    async fn get_cluster_status(
        &self,
        _request: Request<pb::GetClusterStatusRequest>,
    ) -> Result<Response<pb::GetClusterStatusResponse>, Status> {
        let status = self.region.cluster_status().await;
        let nodes = status
            .members
            .into_iter()
            .map(|m| {
                let mut node = pb::NodeStatus {
                    node_id: m.node_id,
                    raft_address: m.raft_addr,
                    voter: m.voter,
                    ..Default::default()
                };
                match m.report {
                    Ok(r) => {
                        node.state = r.state.as_str().to_string();
                        node.term = r.term;
                        node.leader_id = r.leader_id;
                        node.last_log_index = r.last_log_index;
                        node.last_applied_index = r.last_applied_index;
                        node.snapshot_index = r.snapshot_index;
                    }
                    Err(error) => {
                        node.state = "Unreachable".to_string();
                        node.error = error;
                    }
                }
                node
            })
            .collect();
        Ok(Response::new(pb::GetClusterStatusResponse {
            reporting_node_id: status.reporting_node_id,
            leader_id: status.leader_id,
            term: status.term,
            nodes,
        }))
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        if req.raft_address.trim().is_empty() {
            return Err(Status::invalid_argument(
                "raft_address is required (host:port of the node's Raft listener)",
            ));
        }
        self.change(ClusterChange::AddLearner { node_id: node_id(req.node_id)?, raft_addr: req.raft_address })
            .await
    }

    async fn promote_learner(
        &self,
        request: Request<pb::PromoteLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.change(ClusterChange::Promote { node_id: node_id(request.into_inner().node_id)? }).await
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.change(ClusterChange::Remove { node_id: node_id(request.into_inner().node_id)? }).await
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.change(ClusterChange::TransferLeader { node_id: node_id(request.into_inner().node_id)? }).await
    }
}
