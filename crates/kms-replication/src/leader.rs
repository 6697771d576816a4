//! Writes and read barriers from any node: run them locally on the leader, or hand them to the
//! leader over the Raft transport (`Forward`, `ReadIndex`) and wait until this node has applied
//! the result, so the node that answers the client can read its own write.
//!
//! A request the leader refused, or that never reached it (the leader cannot be dialled: it
//! crashed, and its followers have not noticed yet), is tried again once the region shows another
//! leader or a later term, for as long as the request's deadline allows: with two survivors racing
//! through an election, a request may meet more than one refusing leader. A proposal whose outcome
//! is unknown (timeout, connection lost after sending, its entry appended and then discarded by a
//! leader change) is *not* retried here; like a timed-out local write it may still commit, which
//! is why KMS commands must be idempotent.

use std::time::Duration;

use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver as _;
use openraft::errors::ClientWriteError;
use tokio::time::Instant;
use tonic::Code;

use crate::error::ReplicationError;
use crate::network::pb;
use crate::region::{Region, wait_error};
use crate::types::Command;

/// Why the node this node handed a request to did not take it. Either way it never acted on the
/// request, so trying again cannot apply a command twice.
enum Refusal {
    /// The node asked is not the leader (any more), or is handing leadership over.
    NotLeader(Option<u64>),
    /// The node asked leads, but takes no request until a quorum confirms its lease: it was just
    /// elected, or is cut off from its followers. It is asked again after a pause.
    LeaseExpired,
    /// The node asked could not be dialled, so it never saw the request.
    Unreachable,
}

impl Refusal {
    fn of(not_leader: pb::NotLeader) -> Self {
        if not_leader.lease_expired { Self::LeaseExpired } else { Self::NotLeader(not_leader.leader_id) }
    }
}

/// How long a request waits before asking again a leader whose lease is not confirmed (about one
/// heartbeat round trip on a LAN).
const LEASE_PAUSE: Duration = Duration::from_millis(10);

/// A leader that refused a request, and the term this node knew at the time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stale {
    leader: u64,
    term: u64,
}

impl Stale {
    /// Whether `leader` in `term` is the leader that refused: it is asked again only once it
    /// leads in a later term (it lost the election and won the next one, say).
    fn names(&self, leader: u64, term: u64) -> bool {
        leader == self.leader && term <= self.term
    }
}

/// The leader changes a request rides out, shared by proposals and read barriers. Only the
/// request's deadline bounds them; each retry first waits for the region to move past the leader
/// that refused, so a retry never spins.
#[derive(Default)]
struct LeaderChanges {
    stale: Option<Stale>,
}

impl LeaderChanges {
    /// The other node to hand the request to: the one Raft names (`named`) unless it is the
    /// stale one, else the next one the region shows. `None` when that is this node: its Raft
    /// refused although its metrics name it leader (just elected, its lease not confirmed yet,
    /// or the metrics lag), so the caller asks its own Raft again after a pause.
    async fn remote_leader(
        &self,
        region: &Region,
        named: Option<u64>,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<Option<u64>, ReplicationError> {
        let term = region.current_term();
        let leader = match named.filter(|l| !self.stale.is_some_and(|s| s.names(*l, term))) {
            Some(leader) => leader,
            None => region.wait_for_leader(self.stale, deadline, doing).await?,
        };
        if leader == region.node_id() {
            pause(deadline).await;
            return Ok(None);
        }
        Ok(Some(leader))
    }

    /// After `leader`'s refusal: a leader still confirming its lease is asked again after a
    /// pause; any other is not asked again in the current term.
    async fn refused(
        &mut self,
        region: &Region,
        leader: u64,
        refusal: Refusal,
        deadline: Instant,
        doing: &'static str,
    ) {
        let hint = match refusal {
            Refusal::LeaseExpired => {
                tracing::debug!(
                    leader,
                    doing,
                    "the leader's lease is not confirmed; asking it again shortly"
                );
                return pause(deadline).await;
            }
            Refusal::NotLeader(hint) => hint,
            Refusal::Unreachable => None,
        };
        let stale = Stale { leader, term: region.current_term() };
        tracing::debug!(?stale, ?hint, doing, "the leader did not take the request; waiting for another one");
        self.stale = Some(stale);
    }
}

/// Sleeps [`LEASE_PAUSE`], or until `deadline` if that comes first.
async fn pause(deadline: Instant) {
    tokio::time::sleep_until(deadline.min(Instant::now() + LEASE_PAUSE)).await;
}

const PROPOSING: &str = "proposing a command";
const SYNCING: &str = "waiting for a linearizable read barrier";

impl Region {
    /// Proposes `command` to the region and returns the application's response once the command
    /// is applied on this node (a follower forwards it to the leader, then waits to apply it).
    pub async fn propose(&self, command: Vec<u8>) -> Result<Vec<u8>, ReplicationError> {
        let deadline = Instant::now() + self.inner.config.request_timeout();
        let mut changes = LeaderChanges::default();
        loop {
            let written =
                tokio::time::timeout_at(deadline, self.inner.raft.client_write(Command(command.clone())))
                    .await
                    .map_err(|_| self.timeout(PROPOSING))?;
            let fwd = match written {
                Ok(resp) => return Ok(resp.data.0),
                Err(e) => match e.api_error() {
                    Some(ClientWriteError::ForwardToLeader(fwd)) => fwd.leader_id,
                    Some(ClientWriteError::LogEntryDiscarded(fwd)) => {
                        // Outcome unknown: do not propose a second copy.
                        return Err(self.not_leader(fwd.leader_id, PROPOSING));
                    }
                    _ => return Err(ReplicationError::fatal(PROPOSING, e)),
                },
            };
            let Some(leader) = changes.remote_leader(self, fwd, deadline, PROPOSING).await? else {
                continue;
            };
            match self.forward(leader, &command, deadline).await? {
                Ok(response) => return Ok(response),
                Err(refusal) => changes.refused(self, leader, refusal, deadline, PROPOSING).await,
            }
        }
    }

    /// Returns once this node's applied state includes everything committed in the region before
    /// the call: a ReadIndex round on the leader, or (on a follower) the leader's read index
    /// followed by a wait for the local state machine.
    pub async fn sync_reads(&self) -> Result<(), ReplicationError> {
        let deadline = Instant::now() + self.inner.config.request_timeout();
        let mut changes = LeaderChanges::default();
        loop {
            let local =
                tokio::time::timeout_at(deadline, self.inner.raft.ensure_linearizable(ReadPolicy::ReadIndex))
                    .await
                    .map_err(|_| self.timeout(SYNCING))?;
            let fwd = match local {
                Ok(_) => return Ok(()),
                Err(e) => match e.forward_to_leader() {
                    Some(fwd) => fwd.leader_id,
                    None => return Err(self.unavailable(SYNCING, e)),
                },
            };
            let Some(leader) = changes.remote_leader(self, fwd, deadline, SYNCING).await? else {
                continue;
            };
            match self.remote_read_index(leader, deadline).await? {
                Ok(index) => return self.wait_applied(index, deadline, SYNCING).await,
                Err(refusal) => changes.refused(self, leader, refusal, deadline, SYNCING).await,
            }
        }
    }

    /// Hands a proposal to `leader`; on success waits until this node applied it too.
    async fn forward(
        &self,
        leader: u64,
        command: &[u8],
        deadline: Instant,
    ) -> Result<Result<Vec<u8>, Refusal>, ReplicationError> {
        let mut client = self.leader_client(leader, deadline, PROPOSING).await?;
        let mut request = tonic::Request::new(pb::ForwardRequest { command: command.to_vec() });
        crate::trace_context::inject(request.metadata_mut());
        request.set_timeout(remaining(deadline));
        tracing::debug!(leader, len = command.len(), "forwarding proposal to the leader");
        let call = tokio::time::timeout_at(deadline, client.forward(request));
        let Some(reply) = self.rpc_result(leader, call.await, PROPOSING)? else {
            return Ok(Err(Refusal::Unreachable));
        };
        match reply.result {
            Some(pb::forward_reply::Result::Applied(applied)) => {
                self.wait_applied(applied.log_index, deadline, PROPOSING).await?;
                Ok(Ok(applied.response))
            }
            Some(pb::forward_reply::Result::NotLeader(n)) => Ok(Err(Refusal::of(n))),
            // Outcome unknown: do not propose a second copy.
            Some(pb::forward_reply::Result::Discarded(n)) => Err(self.not_leader(n.leader_id, PROPOSING)),
            None => Err(self.bad_reply(leader, PROPOSING)),
        }
    }

    /// Asks `leader` for its read index.
    async fn remote_read_index(
        &self,
        leader: u64,
        deadline: Instant,
    ) -> Result<Result<u64, Refusal>, ReplicationError> {
        let mut client = self.leader_client(leader, deadline, SYNCING).await?;
        let mut request = tonic::Request::new(pb::ReadIndexRequest {});
        crate::trace_context::inject(request.metadata_mut());
        request.set_timeout(remaining(deadline));
        let call = tokio::time::timeout_at(deadline, client.read_index(request));
        let Some(reply) = self.rpc_result(leader, call.await, SYNCING)? else {
            return Ok(Err(Refusal::Unreachable));
        };
        match reply.result {
            Some(pb::read_index_reply::Result::ReadIndex(index)) => Ok(Ok(index)),
            Some(pb::read_index_reply::Result::NotLeader(n)) => Ok(Err(Refusal::of(n))),
            None => Err(self.bad_reply(leader, SYNCING)),
        }
    }

    async fn leader_client(
        &self,
        leader: u64,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<crate::network::peers::RaftClient, ReplicationError> {
        let addr = self.leader_addr(leader, deadline, doing).await?;
        self.inner.peers.client(leader, &addr).map_err(|message| ReplicationError::Transport {
            peer: leader,
            doing,
            message,
        })
    }

    /// Unwraps a leader RPC, mapping deadline and transport failures; `None` when the leader
    /// could not be dialled at all.
    fn rpc_result<T>(
        &self,
        leader: u64,
        result: Result<Result<tonic::Response<T>, tonic::Status>, tokio::time::error::Elapsed>,
        doing: &'static str,
    ) -> Result<Option<T>, ReplicationError> {
        match result {
            Err(_) => Err(self.timeout(doing)),
            Ok(Ok(reply)) => Ok(Some(reply.into_inner())),
            Ok(Err(status)) if status.code() == Code::DeadlineExceeded => Err(self.timeout(doing)),
            Ok(Err(status)) if never_connected(&status) => {
                tracing::debug!(leader, doing, "the leader cannot be dialled; waiting for another one");
                Ok(None)
            }
            Ok(Err(status)) => Err(ReplicationError::Transport {
                peer: leader,
                doing,
                message: format!("{:?}: {}", status.code(), status.message()),
            }),
        }
    }

    /// Waits until this node has applied log index `index`.
    async fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<(), ReplicationError> {
        let budget = remaining(deadline);
        self.inner
            .raft
            .wait(Some(budget))
            .applied_index_at_least(Some(index), doing)
            .await
            .map(|_| ())
            .map_err(|e| wait_error(e, doing, budget))
    }

    /// Waits until a leader is known that is not the `stale` one.
    pub(crate) async fn wait_for_leader(
        &self,
        stale: Option<Stale>,
        deadline: Instant,
        doing: &'static str,
    ) -> Result<u64, ReplicationError> {
        let metrics = self
            .wait_until_known(deadline, doing, "a leader", |m| {
                m.current_leader.is_some_and(|l| !stale.is_some_and(|s| s.names(l, m.current_term)))
            })
            .await?;
        metrics.current_leader.ok_or(ReplicationError::NoLeader { node_id: self.node_id(), doing })
    }

    fn current_term(&self) -> u64 {
        self.inner.raft.metrics().borrow_watched().current_term
    }

    fn timeout(&self, doing: &'static str) -> ReplicationError {
        ReplicationError::Timeout { doing, after: self.inner.config.request_timeout() }
    }

    fn not_leader(&self, leader_id: Option<u64>, doing: &'static str) -> ReplicationError {
        ReplicationError::NotLeader { node_id: self.node_id(), leader_id, doing }
    }

    /// A leader that could not confirm its leadership (no quorum) is transient, not fatal,
    /// unless Raft itself stopped.
    fn unavailable<E>(
        &self,
        doing: &'static str,
        e: openraft::errors::RaftError<crate::types::TypeConfig, E>,
    ) -> ReplicationError
    where
        E: std::fmt::Debug + std::fmt::Display,
    {
        match e {
            openraft::errors::RaftError::Fatal(f) => ReplicationError::fatal(doing, f),
            openraft::errors::RaftError::APIError(_) => {
                ReplicationError::NoLeader { node_id: self.node_id(), doing }
            }
        }
    }

    fn bad_reply(&self, leader: u64, doing: &'static str) -> ReplicationError {
        ReplicationError::Transport { peer: leader, doing, message: "reply without a result".to_string() }
    }
}

/// Whether a failed RPC never reached the peer because no connection could be made: tonic turns
/// every failure of its connector into UNAVAILABLE carrying the connector's message, and the
/// TCP connector (under TLS too) says "tcp connect error" for a refused, unreachable or timed-out
/// dial. Other UNAVAILABLE answers (a keep-alive timeout on an open connection, the peer's own
/// refusal) may follow a delivered request, so they do not count.
fn never_connected(status: &tonic::Status) -> bool {
    status.code() == Code::Unavailable && status.message().contains("tcp connect error")
}

pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_that_refused_is_asked_again_only_in_a_later_term() {
        let stale = Stale { leader: 3, term: 2 };
        assert!(stale.names(3, 2));
        assert!(stale.names(3, 1), "metrics that lag behind the refusal still name it");
        assert!(!stale.names(3, 3), "re-elected in a later term");
        assert!(!stale.names(2, 2), "another leader");
    }

    #[test]
    fn a_leader_confirming_its_lease_is_told_apart_from_a_follower() {
        let lease = Refusal::of(pb::NotLeader { leader_id: None, lease_expired: true });
        assert!(matches!(lease, Refusal::LeaseExpired));
        let follower = Refusal::of(pb::NotLeader { leader_id: Some(2), lease_expired: false });
        assert!(matches!(follower, Refusal::NotLeader(Some(2))));
    }
}
