//! A region node: RocksDB + Raft + the Raft RPC server, behind a plain-Rust API.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_core::store::{StateMachineApp, StateRead};
use openraft::async_runtime::WatchReceiver as _;
use openraft::errors::{InitializeError, RaftError};
use openraft::metrics::WaitError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::AdminCore;
use crate::config::RegionConfig;
use crate::db::{self, Db};
use crate::error::ReplicationError;
use crate::log_store::LogStore;
use crate::network::addressing::{self, LocalNode};
use crate::network::client::NetworkFactory;
use crate::network::peers::Peers;
use crate::network::server::{RaftAdminServer, RaftServer};
use crate::reader::{RegionReader, StateVersion};
use crate::state_machine::StateMachine;
use crate::types::{Raft, RaftNode, TypeConfig};

/// What openraft's membership calls fail with.
type WriteError = RaftError<TypeConfig, openraft::errors::ClientWriteError<TypeConfig>>;

/// What a node is doing in its region's Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Leader,
    Follower,
    Learner,
    Candidate,
    Shutdown,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "Leader",
            Self::Follower => "Follower",
            Self::Learner => "Learner",
            Self::Candidate => "Candidate",
            Self::Shutdown => "Shutdown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Leader, Self::Follower, Self::Learner, Self::Candidate, Self::Shutdown]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    fn of(state: openraft::ServerState) -> Self {
        match state {
            openraft::ServerState::Leader => Self::Leader,
            openraft::ServerState::Follower => Self::Follower,
            openraft::ServerState::Learner => Self::Learner,
            openraft::ServerState::Candidate => Self::Candidate,
            openraft::ServerState::Shutdown => Self::Shutdown,
        }
    }
}

/// A snapshot of a node's view of its region, in plain Rust types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionStatus {
    pub node_id: u64,
    pub state: NodeState,
    pub is_leader: bool,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// Last log index covered by this node's current snapshot, if it has one.
    pub snapshot_index: Option<u64>,
    /// Voting members.
    pub voters: BTreeSet<u64>,
    /// Every member (voters and learners) with its Raft address.
    pub members: BTreeMap<u64, String>,
}

struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

pub(crate) struct Inner {
    pub(crate) config: RegionConfig,
    pub(crate) raft: Raft,
    pub(crate) peers: Peers,
    pub(crate) admin: AdminCore,
    db: Db,
    state_version: StateVersion,
    raft_addr: SocketAddr,
    server: Mutex<Option<ServerHandle>>,
}

/// One node of a region (a Raft group). Cheap to clone.
#[derive(Clone)]
pub struct Region {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("node_id", &self.inner.config.node_id)
            .field("raft_addr", &self.inner.raft_addr)
            .finish()
    }
}

/// How long `open` waits for the state machine to re-apply what was committed before a restart.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

impl Region {
    /// Opens the node's RocksDB under `data_dir/raft`, starts Raft and the Raft RPC server, and
    /// returns once the state committed before a restart has been re-applied locally and shows
    /// in [`Region::status`].
    pub async fn open(
        config: RegionConfig,
        app: Arc<dyn StateMachineApp>,
    ) -> Result<Region, ReplicationError> {
        let region_header = addressing::region_header(&config.region)
            .map_err(|message| ReplicationError::Invalid { doing: "checking the region name", message })?;
        let path = config.data_dir.join("raft");
        std::fs::create_dir_all(&path)
            .map_err(|e| ReplicationError::storage("creating the raft data directory", e))?;
        let db =
            db::open_with_retry(&path).await.map_err(|e| ReplicationError::storage("opening RocksDB", e))?;
        let raft_config = config.raft_config().map_err(|e| ReplicationError::Invalid {
            doing: "building the raft configuration",
            message: e.to_string(),
        })?;

        let log_store =
            LogStore::new(db.clone()).map_err(|e| ReplicationError::storage("starting the log store", e))?;
        let committed = log_store
            .committed_index()
            .map_err(|e| ReplicationError::storage("reading the committed index", e))?;
        let (state_machine, started) = StateMachine::starting(db.clone(), app);
        let state_version = state_machine.version();
        let applied = state_machine
            .applied_meta()
            .map_err(|e| ReplicationError::storage("reading the last applied log id", e))?
            .last_log_id
            .map(|id| id.index);
        let peers =
            Peers::new(config.node_id, region_header, config.tls.as_ref().map(|tls| tls.client.clone()));
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            NetworkFactory::new(peers.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ReplicationError::fatal("starting raft", e))?;
        started.mark();

        let admin = AdminCore::new(raft.clone(), db.clone(), config.node_id);
        let (raft_addr, server) = serve(&config, raft.clone(), admin.clone()).await?;
        tracing::info!(node_id = config.node_id, %raft_addr, "raft node started");
        let region = Region {
            inner: Arc::new(Inner {
                config,
                raft,
                peers,
                admin,
                db,
                state_version,
                raft_addr,
                server: Mutex::new(Some(server)),
            }),
        };
        region.wait_for_local_replay(committed.max(applied)).await?;
        Ok(region)
    }

    /// Waits until the state machine has re-applied everything this node knew was committed
    /// when it stopped, so reads right after a restart never go back in time, and until Raft's
    /// metrics show at least what the state machine already held (`recovered` is the larger of
    /// the two), so the status right after a restart is not the blank one of a new node.
    async fn wait_for_local_replay(&self, recovered: Option<u64>) -> Result<(), ReplicationError> {
        if recovered.is_none() {
            return Ok(());
        }
        match self
            .inner
            .raft
            .wait(Some(RECOVERY_TIMEOUT))
            .applied_index_at_least(recovered, "replay committed log after restart")
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(wait_error(e, "replaying the committed log after restart", RECOVERY_TIMEOUT)),
        }
    }

    /// The address the Raft RPC server is bound to (useful with port 0 in `raft_listen`).
    pub fn raft_addr(&self) -> SocketAddr {
        self.inner.raft_addr
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.config.node_id
    }

    /// Forms the region with `members` (node id → Raft address) if this node has no Raft state
    /// yet; a no-op otherwise. Call it on one node only (node 1 of a fresh cluster, or the only
    /// node of a dev region). If `members` omits this node, it is added with its
    /// `raft_advertise` address (so an empty map forms a single-node region).
    pub async fn initialize(&self, mut members: BTreeMap<u64, String>) -> Result<(), ReplicationError> {
        const DOING: &str = "initializing the region";
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(|e| ReplicationError::fatal(DOING, e))? {
            return Ok(());
        }
        let config = &self.inner.config;
        if !config.raft_advertise.is_empty() {
            members.entry(config.node_id).or_insert_with(|| config.raft_advertise.clone());
        }
        if !members.contains_key(&self.inner.config.node_id) {
            return Err(ReplicationError::Invalid {
                doing: DOING,
                message: format!("members do not include this node {}", self.inner.config.node_id),
            });
        }
        let nodes: BTreeMap<u64, RaftNode> =
            members.into_iter().map(|(id, addr)| (id, RaftNode { addr })).collect();
        match raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            // Another call won the race: the region is formed, which is what was asked.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ReplicationError::fatal(DOING, e)),
        }
    }

    /// Adds a node as a non-voting learner and waits until it has caught up (leader only).
    pub async fn add_learner(&self, node_id: u64, raft_addr: String) -> Result<(), ReplicationError> {
        const DOING: &str = "adding a learner";
        let written = tokio::time::timeout(
            self.inner.config.request_timeout(),
            self.inner.raft.add_learner(node_id, RaftNode { addr: raft_addr }, true),
        )
        .await;
        membership_result(self.node_id(), written, DOING, self.inner.config.request_timeout())
    }

    /// Makes `voters` the voting members (leader only); members left out stay learners.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), ReplicationError> {
        const DOING: &str = "changing the membership";
        let written = tokio::time::timeout(
            self.inner.config.request_timeout(),
            self.inner.raft.change_membership(voters, true),
        )
        .await;
        membership_result(self.node_id(), written, DOING, self.inner.config.request_timeout())
    }

    /// Reads the latest state applied on this node straight from RocksDB.
    pub fn reader(&self) -> impl StateRead + Send + Sync + 'static {
        RegionReader::new(self.inner.db.clone())
    }

    /// A number that changes whenever this node's applied state does. Taken before a read, it
    /// says for as long as it stays the same that what was read is still the state: a cache of
    /// values derived from the state can skip the read.
    pub fn state_version(&self) -> u64 {
        self.inner.state_version.current()
    }

    /// Whether this node currently believes it is the leader.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.is_leader()
    }

    /// This node's view of the region.
    pub fn status(&self) -> RegionStatus {
        status_of(&self.inner.raft)
    }

    /// The Raft address of `leader`, waiting (until `deadline`) for the membership that names it.
    ///
    /// A follower can learn who leads (the leader's first heartbeat commits its vote) before the
    /// log entries carrying the membership arrive, most often right after the region starts; a
    /// request in that gap waits for them instead of failing.
    pub(crate) async fn leader_addr(
        &self,
        leader: u64,
        deadline: tokio::time::Instant,
        doing: &'static str,
    ) -> Result<String, ReplicationError> {
        let metrics = self
            .wait_until_known(deadline, doing, "the leader's address", |m| {
                m.membership_config.get_node(&leader).is_some()
            })
            .await?;
        metrics
            .membership_config
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .ok_or(ReplicationError::NoLeader { node_id: self.node_id(), doing })
    }

    /// Waits (until `deadline`) for this node's Raft metrics to satisfy `known`: something about
    /// the leader this node has not learnt yet. Running out of time means no usable leader.
    pub(crate) async fn wait_until_known(
        &self,
        deadline: tokio::time::Instant,
        doing: &'static str,
        what: &'static str,
        known: impl Fn(&openraft::RaftMetrics<crate::types::TypeConfig>) -> bool + Send,
    ) -> Result<openraft::RaftMetrics<crate::types::TypeConfig>, ReplicationError> {
        self.inner
            .raft
            .wait(Some(deadline.saturating_duration_since(tokio::time::Instant::now())))
            .metrics(known, what)
            .await
            .map_err(|e| match e {
                WaitError::Timeout(..) => ReplicationError::NoLeader { node_id: self.node_id(), doing },
                other => wait_error(other, doing, Duration::ZERO),
            })
    }

    /// Stops Raft and the RPC server and syncs the WAL. Idempotent. The database closes once the
    /// last `Region` clone and reader are dropped.
    pub async fn shutdown(&self) -> Result<(), ReplicationError> {
        const DOING: &str = "shutting down";
        self.inner.raft.shutdown().await.map_err(|e| ReplicationError::fatal(DOING, e))?;
        let server = self.inner.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(server) = server {
            // The receiver is gone only if the server already stopped, which is what we want.
            let _ = server.stop.send(());
            match server.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "raft rpc server stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "raft rpc server task failed"),
            }
        }
        self.inner
            .db
            .flush_wal(true)
            .map_err(|e| ReplicationError::storage("syncing the WAL at shutdown", e))?;
        tracing::info!(node_id = self.node_id(), "raft node stopped");
        Ok(())
    }
}

/// A node's view of its region, from its Raft metrics.
pub(crate) fn status_of(raft: &Raft) -> RegionStatus {
    let metrics = raft.metrics();
    let m = metrics.borrow_watched();
    let membership = m.membership_config.membership();
    RegionStatus {
        node_id: m.id,
        state: NodeState::of(m.state),
        is_leader: m.state.is_leader(),
        leader_id: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.as_ref().map(|id| id.index),
        snapshot_index: m.snapshot.as_ref().map(|id| id.index),
        voters: membership.voter_ids().collect(),
        members: membership.nodes().map(|(id, node)| (*id, node.addr.clone())).collect(),
    }
}

/// Maps the outcome of an openraft membership call bounded by a timeout.
pub(crate) fn membership_result<T>(
    node_id: u64,
    written: Result<Result<T, WriteError>, tokio::time::error::Elapsed>,
    doing: &'static str,
    after: Duration,
) -> Result<(), ReplicationError> {
    match written {
        Err(_) => Err(ReplicationError::Timeout { doing, after }),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => match e.forward_to_leader() {
            Some(fwd) => Err(ReplicationError::NotLeader { node_id, leader_id: fwd.leader_id, doing }),
            None => match e {
                RaftError::Fatal(f) => Err(ReplicationError::fatal(doing, f)),
                RaftError::APIError(api) => {
                    Err(ReplicationError::Invalid { doing, message: api.to_string() })
                }
            },
        },
    }
}

/// Binds the Raft listener and serves the Raft RPCs on it until told to stop.
async fn serve(
    config: &RegionConfig,
    raft: Raft,
    admin: AdminCore,
) -> Result<(SocketAddr, ServerHandle), ReplicationError> {
    const DOING: &str = "starting the raft rpc server";
    let listener = tokio::net::TcpListener::bind(config.raft_listen).await.map_err(|e| {
        ReplicationError::Invalid { doing: DOING, message: format!("bind {}: {e}", config.raft_listen) }
    })?;
    let addr = listener.local_addr().map_err(|e| ReplicationError::fatal(DOING, e))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let service = RaftServer::into_service(raft, config.request_timeout());
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server.clone()).map_err(|e| ReplicationError::Invalid {
            doing: DOING,
            message: format!("raft port TLS settings: {e}"),
        })?;
    }
    let is_peer = config.tls.as_ref().map(|tls| tls.is_peer.clone());
    let local = LocalNode { region: config.region.clone(), node_id: config.node_id };
    let router = builder
        .layer(tonic::service::InterceptorLayer::new(move |request: tonic::Request<()>| {
            local.admit(request.metadata())?;
            admit_peer(is_peer.as_ref(), request)
        }))
        .http2_keepalive_interval(Some(Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .add_service(service)
        .add_service(RaftAdminServer::into_service(admin));
    let task = tokio::spawn(router.serve_with_incoming_shutdown(raft_connections(listener), async move {
        // Either a stop signal or the region being dropped ends the server.
        let _ = stopped.await;
    }));
    Ok((addr, ServerHandle { stop, task }))
}

/// The Raft port's accepted connections, with TCP_NODELAY. The server builder's `tcp_nodelay`
/// does not reach connections from a listener of our own. Left to Nagle, a follower's small
/// replies waited for the leader's delayed ACK, and a few percent of writes took 40 ms more.
fn raft_connections(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// With TLS, only certificates that `is_peer` recognises as this region's nodes may use the Raft
/// port; the TLS layer has already checked that they chain to the cluster CA.
fn admit_peer(
    is_peer: Option<&crate::config::PeerCheck>,
    request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let Some(is_peer) = is_peer else { return Ok(request) };
    match request.peer_certs() {
        Some(chain) if is_peer(&chain) => Ok(request),
        _ => Err(tonic::Status::permission_denied("only the nodes of this region may use its raft port")),
    }
}

/// Maps a failed wait on Raft metrics.
pub(crate) fn wait_error(e: WaitError, doing: &'static str, after: Duration) -> ReplicationError {
    match e {
        WaitError::Timeout(..) => ReplicationError::Timeout { doing, after },
        WaitError::ShuttingDown => {
            ReplicationError::Fatal { doing, message: "raft is shutting down".to_string() }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::StreamExt as _;

    #[tokio::test]
    async fn raft_connections_are_accepted_with_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = super::raft_connections(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "Raft replies must not wait for delayed ACKs");
    }
}
