//! Joining an existing region on start (scale-up): a node that is not one of the region's
//! `initial_members` and has `join` endpoints asks the cluster admin API of those members to add
//! it as a learner and then promote it to a voter, retrying with backoff until it is a voter.
//!
//! Every step is idempotent, so a node restarted halfway simply runs the loop again: it first
//! asks where it stands (not a member, learner, voter) and continues from there. A node that
//! already sees itself as a voter in its own Raft state does nothing.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kms_proto::admin::v1 as pb;
use kms_proto::admin::v1::cluster_admin_client::ClusterAdminClient;
use kms_replication::Region;
use tokio::sync::watch;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::Config;
use crate::tls::TlsMaterial;

/// First pause after a failed attempt; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Bounds one admin call: adding a learner waits until it has caught up (the leader allows 25 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(40);

/// Starts joining in the background if this node is configured to join; the task ends when the
/// node is a voter or when `stop` turns true. Fails if peers could not reach the address this
/// node would register.
pub fn start(
    config: &Config,
    region: &Region,
    tls: Option<&TlsMaterial>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    if !config.joins_through_admin_api() {
        return Ok(());
    }
    if config.raft_advertise.is_none() && config.raft_listen.ip().is_unspecified() {
        bail!(
            "joining through `join` needs raft_advertise (or KMSD_RAFT_ADVERTISE): peers cannot \
             reach raft_listen {}",
            config.raft_listen
        );
    }
    let joiner = Joiner {
        region: region.clone(),
        node_id: config.node_id,
        raft_address: config.raft_advertise(),
        endpoints: config.join.clone(),
        // With TLS, the node presents its own certificate: node identities may administer.
        tls: tls.map(TlsMaterial::node_client),
    };
    tokio::spawn(joiner.run(stop));
    Ok(())
}

/// A channel to a member's client port for the `kms.admin.v1.ClusterAdmin` service; over mutual
/// TLS when `tls` is given (a bare `host:port` then means https).
pub async fn connect_admin(endpoint: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel> {
    client_endpoint(endpoint, tls)?
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

struct Joiner {
    region: Region,
    node_id: u64,
    raft_address: String,
    endpoints: Vec<String>,
    tls: Option<ClientTlsConfig>,
}

impl Joiner {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = FIRST_BACKOFF;
        // Round robin over the endpoints: one that is down must not stall the join.
        for endpoint in self.endpoints.iter().cycle() {
            if self.region.status().voters.contains(&self.node_id) {
                tracing::info!(node_id = self.node_id, "this node is a voter of the region");
                return;
            }
            match self.attempt(endpoint).await {
                Ok(()) => {
                    tracing::info!(node_id = self.node_id, via = %endpoint, "joined the region as a voter");
                    return;
                }
                Err(err) => tracing::warn!(
                    node_id = self.node_id,
                    via = %endpoint,
                    retry_in = ?backoff,
                    error = format!("{err:#}"),
                    "joining the region failed; retrying"
                ),
            }
            if tokio::time::timeout(backoff, stop.wait_for(|stopped| *stopped)).await.is_ok() {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One pass through the steps that are still missing, via one member.
    async fn attempt(&self, endpoint: &str) -> Result<()> {
        let mut admin = ClusterAdminClient::new(connect_admin(endpoint, self.tls.as_ref()).await?);
        let status = admin
            .get_cluster_status(pb::GetClusterStatusRequest {})
            .await
            .context("asking for the region's membership")?
            .into_inner();
        match status.nodes.iter().find(|node| node.node_id == self.node_id) {
            Some(me) if me.raft_address != self.raft_address => bail!(
                "node id {} is already a member at {}, not at this node's {}: node ids are never \
                 reused, so a node that lost its data must join under a new id",
                self.node_id,
                me.raft_address,
                self.raft_address
            ),
            Some(me) if me.voter => return Ok(()),
            Some(_) => {}
            None => {
                tracing::info!(node_id = self.node_id, raft_address = %self.raft_address, via = %endpoint, "asking to be added as a learner");
                let request =
                    pb::AddLearnerRequest { node_id: self.node_id, raft_address: self.raft_address.clone() };
                admin.add_learner(request).await.context("adding this node as a learner")?;
            }
        }
        tracing::info!(node_id = self.node_id, via = %endpoint, "caught up as a learner; asking to be promoted");
        let request = pb::PromoteLearnerRequest { node_id: self.node_id };
        admin.promote_learner(request).await.context("promoting this node to a voter")?;
        Ok(())
    }
}

/// The tonic endpoint of another node's client port, `host:port` or a URL; over mutual TLS
/// when `tls` is given (a bare `host:port` then means https).
pub fn client_endpoint(endpoint: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = if endpoint.contains("://") { endpoint.to_string() } else { format!("{scheme}://{endpoint}") };
    let mut channel =
        Endpoint::from_shared(url).with_context(|| format!("endpoint '{endpoint}' is not a valid URI"))?;
    if let Some(tls) = tls {
        channel = channel.tls_config(tls.clone()).with_context(|| format!("TLS settings for {endpoint}"))?;
    }
    Ok(channel.connect_timeout(Duration::from_secs(3)))
}
