//! Cluster administration: membership and leadership changes from any node (handed to the leader
//! over the Raft transport, like proposals), and the status of every member.
//!
//! Every change is idempotent (re-adding the same learner at the same address, promoting a voter,
//! removing a non-member, transferring to the current leader all succeed), so a change whose
//! answer was lost is safely retried on the next leader.
//!
//! Changes are serialized on the leader by one lock, so two operators cannot interleave joint
//! consensus rounds into an unintended configuration. Node ids are never reused: `add_learner`
//! refuses any id not greater than the highest id the region ever had as a member (recorded by
//! the state machine when it applies a membership entry, carried by snapshots).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver as _;
use openraft::errors::{ClientWriteError, RaftError};
use tokio::time::Instant;

use crate::db::Db;
use crate::error::ReplicationError;
use crate::leader::remaining;
use crate::network::pb;
use crate::region::{NodeState, Region, RegionStatus, status_of};
use crate::state_machine::highest_node_id;
use crate::types::{Raft, RaftNode, TypeConfig};

/// Upper bound of one membership change: adding a learner waits until it has caught up, which
/// may take a snapshot transfer.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(25);
/// How long `cluster_status` waits for each member to describe itself.
const STATUS_TIMEOUT: Duration = Duration::from_millis(1500);
/// Pause before a cluster change is tried again after a leader change or an unreachable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long one leadership-transfer attempt is given before it is repeated.
const TRANSFER_RETRY: Duration = Duration::from_secs(2);

/// One membership or leadership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterChange {
    /// Add a non-voting member and wait until it has caught up.
    AddLearner { node_id: u64, raft_addr: String },
    /// Make a learner a voter.
    Promote { node_id: u64 },
    /// Remove a voter or a learner. Removing the leader hands leadership over first.
    Remove { node_id: u64 },
    /// Make the given voter the leader.
    TransferLeader { node_id: u64 },
}

/// The membership right after a change, as the leader saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipView {
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
    pub leader_id: Option<u64>,
}

/// What one member says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    pub state: NodeState,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
}

/// One member in [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub node_id: u64,
    pub raft_addr: String,
    pub voter: bool,
    /// The member's own report, or why it could not be asked.
    pub report: Result<NodeReport, String>,
}

/// Every member of the region, as seen from one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub reporting_node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub members: Vec<MemberStatus>,
}

impl From<&RegionStatus> for NodeReport {
    fn from(s: &RegionStatus) -> Self {
        Self {
            state: s.state,
            term: s.term,
            leader_id: s.leader_id,
            last_log_index: s.last_log_index,
            last_applied_index: s.last_applied_index,
            snapshot_index: s.snapshot_index,
        }
    }
}

/// The leader-side executor of changes, shared by the region and its admin RPC server.
#[derive(Clone)]
pub(crate) struct AdminCore {
    raft: Raft,
    db: Db,
    node_id: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
}

type WriteError = RaftError<TypeConfig, ClientWriteError<TypeConfig>>;

impl AdminCore {
    pub(crate) fn new(raft: Raft, db: Db, node_id: u64) -> Self {
        Self { raft, db, node_id, lock: Arc::new(tokio::sync::Mutex::new(())) }
    }

    pub(crate) fn status(&self) -> RegionStatus {
        status_of(&self.raft)
    }

    fn view(&self) -> MembershipView {
        let s = self.status();
        let learners = s.members.keys().filter(|id| !s.voters.contains(id)).copied().collect();
        MembershipView { voters: s.voters, learners, leader_id: s.leader_id }
    }

    fn not_leader(&self, doing: &'static str) -> ReplicationError {
        ReplicationError::NotLeader { node_id: self.node_id, leader_id: self.status().leader_id, doing }
    }

    /// Runs `change` if this node leads; `NotLeader` (with the known leader) otherwise.
    pub(crate) async fn apply(&self, change: &ClusterChange) -> Result<MembershipView, ReplicationError> {
        let doing = doing(change);
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        let _serialized = tokio::time::timeout_at(deadline, self.lock.lock())
            .await
            .map_err(|_| ReplicationError::Timeout { doing, after: CHANGE_TIMEOUT })?;
        if !self.raft.is_leader() {
            return Err(self.not_leader(doing));
        }
        let status = self.status();
        match change {
            ClusterChange::AddLearner { node_id, raft_addr } => {
                self.add_learner(&status, *node_id, raft_addr, deadline).await?;
            }
            ClusterChange::Promote { node_id } => {
                if !status.voters.contains(node_id) {
                    if !status.members.contains_key(node_id) {
                        return Err(invalid(doing, format!("node {node_id} is not a learner; add it first")));
                    }
                    let change = ChangeMembers::AddVoterIds(BTreeSet::from([*node_id]));
                    self.write(self.raft.change_membership(change, false), deadline, doing).await?;
                }
            }
            ClusterChange::Remove { node_id } => self.remove(&status, *node_id, deadline).await?,
            ClusterChange::TransferLeader { node_id } => {
                if *node_id != self.node_id {
                    if !status.voters.contains(node_id) {
                        return Err(invalid(doing, format!("node {node_id} is not a voter")));
                    }
                    self.transfer_leader(*node_id, deadline, doing).await?;
                }
            }
        }
        Ok(self.view())
    }

    async fn add_learner(
        &self,
        status: &RegionStatus,
        node_id: u64,
        raft_addr: &str,
        deadline: Instant,
    ) -> Result<(), ReplicationError> {
        const DOING: &str = "adding a learner";
        if node_id == 0 {
            return Err(invalid(DOING, "node id 0 is not allowed".to_string()));
        }
        validate_addr(raft_addr).map_err(|m| invalid(DOING, m))?;
        if let Some(addr) = status.members.get(&node_id) {
            // A retry of the same request is fine; anything else would reuse an id.
            if addr == raft_addr && !status.voters.contains(&node_id) {
                return Ok(());
            }
            return Err(invalid(
                DOING,
                format!("node id {node_id} is already a member (at {addr}); node ids are never reused"),
            ));
        }
        let ever = highest_node_id(&self.db).map_err(|e| ReplicationError::storage(DOING, e))?;
        let highest = status.members.keys().max().copied().unwrap_or(0).max(ever);
        if node_id <= highest {
            return Err(invalid(
                DOING,
                format!(
                    "node id {node_id} is not greater than {highest}, the highest id the region has \
                     used; give a new node a new, larger id (ids are never reused)"
                ),
            ));
        }
        let node = RaftNode { addr: raft_addr.to_string() };
        self.write(self.raft.add_learner(node_id, node, true), deadline, DOING).await
    }

    async fn remove(
        &self,
        status: &RegionStatus,
        node_id: u64,
        deadline: Instant,
    ) -> Result<(), ReplicationError> {
        const DOING: &str = "removing a node";
        if !status.members.contains_key(&node_id) {
            // Already gone: a retried removal succeeds.
            return Ok(());
        }
        if !status.voters.contains(&node_id) {
            let change = ChangeMembers::RemoveNodes(BTreeSet::from([node_id]));
            return self.write(self.raft.change_membership(change, false), deadline, DOING).await;
        }
        if status.voters.len() == 1 {
            return Err(invalid(DOING, format!("node {node_id} is the last voter of the region")));
        }
        if node_id == self.node_id {
            // Hand leadership to the most caught-up other voter first, so the region is never
            // left leaderless; the caller retries the removal on the new leader.
            let target = self.best_successor(status).ok_or(ReplicationError::NoLeader {
                node_id: self.node_id,
                doing: "choosing a voter to take over leadership",
            })?;
            self.transfer_leader(target, deadline, DOING).await?;
            return Err(self.not_leader(DOING));
        }
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([node_id]));
        self.write(self.raft.change_membership(change, false), deadline, DOING).await
    }

    /// The voter other than this node with the highest replicated index.
    fn best_successor(&self, status: &RegionStatus) -> Option<u64> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let matched = |id: &u64| {
            m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|log_id| log_id.index)
        };
        status.voters.iter().filter(|id| **id != self.node_id).max_by_key(|id| matched(id)).copied()
    }

    async fn transfer_leader(
        &self,
        to: u64,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<(), ReplicationError> {
        // The target refuses while it has not flushed the leader's last log entry (likely under
        // load), so the request is repeated until the target leads or the deadline passes.
        loop {
            tracing::info!(from = self.node_id, to, "transferring leadership");
            self.raft.trigger().transfer_leader(to).await.map_err(|e| ReplicationError::fatal(doing, e))?;
            let budget = remaining(deadline).min(TRANSFER_RETRY);
            let waited = self
                .raft
                .wait(Some(budget))
                .metrics(|m| m.current_leader == Some(to), "leadership transferred")
                .await;
            match waited {
                Ok(_) => return Ok(()),
                Err(openraft::metrics::WaitError::Timeout(..)) if remaining(deadline) > Duration::ZERO => {
                    if !self.raft.is_leader() {
                        // Someone else won an election meanwhile; the caller re-routes.
                        return Err(self.not_leader(doing));
                    }
                }
                Err(e) => return Err(crate::region::wait_error(e, doing, CHANGE_TIMEOUT)),
            }
        }
    }

    async fn write<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, WriteError>>,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<(), ReplicationError> {
        let written = tokio::time::timeout_at(deadline, write).await;
        crate::region::membership_result(self.node_id, written, doing, CHANGE_TIMEOUT)
    }
}

fn doing(change: &ClusterChange) -> &'static str {
    match change {
        ClusterChange::AddLearner { .. } => "adding a learner",
        ClusterChange::Promote { .. } => "promoting a learner",
        ClusterChange::Remove { .. } => "removing a node",
        ClusterChange::TransferLeader { .. } => "transferring leadership",
    }
}

fn invalid(doing: &'static str, message: String) -> ReplicationError {
    ReplicationError::Invalid { doing, message }
}

/// `host:port`, as peers dial it.
fn validate_addr(addr: &str) -> Result<(), String> {
    let (host, port) =
        addr.rsplit_once(':').ok_or_else(|| format!("raft address '{addr}' is not host:port"))?;
    if host.is_empty() || host.contains(['/', ' ', '@']) || port.parse::<u16>().is_err() {
        return Err(format!("raft address '{addr}' is not host:port"));
    }
    Ok(())
}

// ---- The wire form of changes and answers (kms.raft.v1 AdminRequest / AdminReply) ----

pub(crate) fn change_to_pb(change: &ClusterChange) -> pb::AdminRequest {
    use pb::admin_request::Op;
    let op = match change {
        ClusterChange::AddLearner { node_id, raft_addr } => {
            Op::AddLearner(pb::AddLearnerOp { node_id: *node_id, raft_addr: raft_addr.clone() })
        }
        ClusterChange::Promote { node_id } => Op::Promote(*node_id),
        ClusterChange::Remove { node_id } => Op::RemoveNode(*node_id),
        ClusterChange::TransferLeader { node_id } => Op::TransferLeader(*node_id),
    };
    pb::AdminRequest { op: Some(op) }
}

pub(crate) fn change_from_pb(req: pb::AdminRequest) -> Option<ClusterChange> {
    use pb::admin_request::Op;
    Some(match req.op? {
        Op::AddLearner(a) => ClusterChange::AddLearner { node_id: a.node_id, raft_addr: a.raft_addr },
        Op::Promote(node_id) => ClusterChange::Promote { node_id },
        Op::RemoveNode(node_id) => ClusterChange::Remove { node_id },
        Op::TransferLeader(node_id) => ClusterChange::TransferLeader { node_id },
    })
}

pub(crate) fn reply_to_pb(result: Result<MembershipView, ReplicationError>) -> pb::AdminReply {
    use pb::admin_reply::Result as R;
    let result = match result {
        Ok(view) => R::Done(pb::AdminDone {
            voters: view.voters.into_iter().collect(),
            learners: view.learners.into_iter().collect(),
            leader_id: view.leader_id,
        }),
        Err(ReplicationError::NotLeader { leader_id, .. }) => {
            R::NotLeader(pb::NotLeader { leader_id, lease_expired: false })
        }
        Err(e) => {
            let kind = match &e {
                ReplicationError::Invalid { .. } => "invalid",
                ReplicationError::Timeout { .. } => "timeout",
                ReplicationError::NoLeader { .. } | ReplicationError::Transport { .. } => "no_leader",
                ReplicationError::Storage { .. } => "storage",
                ReplicationError::NotLeader { .. } | ReplicationError::Fatal { .. } => "fatal",
            };
            R::Error(pb::AdminError { kind: kind.to_string(), message: e.to_string() })
        }
    };
    pb::AdminReply { result: Some(result) }
}

pub(crate) fn report_to_pb(s: &RegionStatus) -> pb::NodeStatusReply {
    pb::NodeStatusReply {
        node_id: s.node_id,
        state: s.state.as_str().to_string(),
        term: s.term,
        leader_id: s.leader_id,
        last_log_index: s.last_log_index,
        last_applied_index: s.last_applied_index,
        snapshot_index: s.snapshot_index,
    }
}

/// Peer input: an unknown state string is reported as such, never trusted.
fn report_from_pb(r: pb::NodeStatusReply) -> Result<NodeReport, String> {
    let state = NodeState::parse(&r.state).ok_or_else(|| "the node reported an unknown state".to_string())?;
    Ok(NodeReport {
        state,
        term: r.term,
        leader_id: r.leader_id,
        last_log_index: r.last_log_index,
        last_applied_index: r.last_applied_index,
        snapshot_index: r.snapshot_index,
    })
}

impl Region {
    /// Runs a membership or leadership change on the leader, handing it over from a follower.
    /// While the leader is unknown, changing or unreachable, it retries (every change is
    /// idempotent) until one deadline passes.
    pub async fn change_cluster(&self, change: ClusterChange) -> Result<MembershipView, ReplicationError> {
        let doing = doing(&change);
        let deadline = Instant::now() + CHANGE_TIMEOUT + Duration::from_secs(2);
        let mut hint: Option<u64> = None;
        loop {
            let leader = match hint.take().or(self.status().leader_id) {
                Some(leader) => leader,
                None => self.wait_for_leader(None, deadline, doing).await?,
            };
            let result = if leader == self.node_id() {
                self.inner.admin.apply(&change).await
            } else {
                self.forward_change(leader, &change, deadline, doing).await
            };
            match result {
                // Asked a node that no longer leads, or one that is gone (e.g. killed), or one
                // that knows no leader: ask again after a pause, following the hint if any.
                Err(
                    e @ (ReplicationError::NotLeader { .. }
                    | ReplicationError::Transport { .. }
                    | ReplicationError::NoLeader { .. }),
                ) if remaining(deadline) > RETRY_PAUSE => {
                    if let ReplicationError::NotLeader { leader_id: Some(next), .. } = &e {
                        hint = Some(*next).filter(|next| *next != leader);
                    }
                    tracing::debug!(leader, error = %e, "cluster change not done yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Ok(view) => {
                    self.see_own_change(&change).await;
                    return Ok(view);
                }
                other => return other,
            }
        }
    }

    /// Read-your-writes for membership, as `propose` gives for commands: the node that was asked
    /// waits until it has applied the change before answering, so its own status shows it. A node
    /// that removed itself has nothing left to catch up with.
    async fn see_own_change(&self, change: &ClusterChange) {
        if matches!(change, ClusterChange::Remove { node_id } if *node_id == self.node_id()) {
            return;
        }
        if let Err(e) = self.sync_reads().await {
            tracing::debug!(error = %e, "catching up after a cluster change failed; status may lag");
        }
    }

    async fn forward_change(
        &self,
        leader: u64,
        change: &ClusterChange,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<MembershipView, ReplicationError> {
        let addr = self.leader_addr(leader, deadline, doing).await?;
        let mut client = self
            .inner
            .peers
            .admin_client(leader, &addr)
            .map_err(|message| ReplicationError::Transport { peer: leader, doing, message })?;
        let mut request = tonic::Request::new(change_to_pb(change));
        request.set_timeout(remaining(deadline));
        let reply = match tokio::time::timeout_at(deadline, client.admin(request)).await {
            Err(_) => return Err(ReplicationError::Timeout { doing, after: CHANGE_TIMEOUT }),
            Ok(Err(status)) => {
                return Err(ReplicationError::Transport {
                    peer: leader,
                    doing,
                    message: format!("{:?}: {}", status.code(), status.message()),
                });
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        use pb::admin_reply::Result as R;
        match reply.result {
            Some(R::Done(done)) => Ok(MembershipView {
                voters: done.voters.into_iter().collect(),
                learners: done.learners.into_iter().collect(),
                leader_id: done.leader_id,
            }),
            Some(R::NotLeader(n)) => {
                Err(ReplicationError::NotLeader { node_id: leader, leader_id: n.leader_id, doing })
            }
            Some(R::Error(e)) => Err(match e.kind.as_str() {
                "invalid" => ReplicationError::Invalid { doing, message: e.message },
                "timeout" => ReplicationError::Timeout { doing, after: CHANGE_TIMEOUT },
                "no_leader" => ReplicationError::NoLeader { node_id: leader, doing },
                _ => ReplicationError::Transport { peer: leader, doing, message: e.message },
            }),
            None => Err(ReplicationError::Transport {
                peer: leader,
                doing,
                message: "reply without a result".to_string(),
            }),
        }
    }

    /// Every member of the region (as this node knows the membership), each asked for its own
    /// state concurrently; a member that does not answer within a short deadline is reported
    /// unreachable.
    pub async fn cluster_status(&self) -> ClusterStatus {
        let local = self.status();
        let asks = local.members.iter().map(|(id, addr)| {
            let (id, addr) = (*id, addr.clone());
            let local = &local;
            async move {
                let report = if id == local.node_id {
                    Ok(NodeReport::from(local))
                } else {
                    self.ask_status(id, &addr).await
                };
                MemberStatus { node_id: id, voter: local.voters.contains(&id), raft_addr: addr, report }
            }
        });
        let members = futures::future::join_all(asks).await;
        ClusterStatus {
            reporting_node_id: local.node_id,
            leader_id: local.leader_id,
            term: local.term,
            members,
        }
    }

    async fn ask_status(&self, id: u64, addr: &str) -> Result<NodeReport, String> {
        let mut client = self.inner.peers.admin_client(id, addr)?;
        let mut request = tonic::Request::new(pb::NodeStatusRequest {});
        request.set_timeout(STATUS_TIMEOUT);
        match tokio::time::timeout(STATUS_TIMEOUT, client.node_status(request)).await {
            Err(_) => Err(format!("no answer within {STATUS_TIMEOUT:?}")),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                if reply.node_id != id {
                    return Err(format!("the node at {addr} says it is node {}", reply.node_id));
                }
                report_from_pb(reply)
            }
        }
    }

    /// The Raft addresses of every member, by id.
    pub fn members(&self) -> BTreeMap<u64, String> {
        self.status().members
    }
}
