//! One cached tonic `Channel` per peer, shared by Raft replication and by the region's own
//! Forward / ReadIndex calls.
//!
//! A channel multiplexes every RPC to that peer over one HTTP/2 connection and reconnects by
//! itself. HTTP/2 keepalive (also while idle) makes a half-open connection after a network fault
//! fail fast instead of wedging the channel; the connect timeout bounds a dial to a dead host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::addressing::Addressee;
use super::pb::raft_admin_service_client::RaftAdminServiceClient;
use super::pb::raft_service_client::RaftServiceClient;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer's channel, every request on it addressed to that peer.
pub(crate) type AddressedChannel = InterceptedService<Channel, Addressee>;
pub(crate) type RaftClient = RaftServiceClient<AddressedChannel>;
pub(crate) type AdminClient = RaftAdminServiceClient<AddressedChannel>;

#[derive(Clone)]
pub(crate) struct Peers {
    self_id: u64,
    /// This node's region, which every peer it talks to belongs to.
    region: AsciiMetadataValue,
    /// Mutual TLS towards peers; plaintext when absent.
    tls: Option<ClientTlsConfig>,
    channels: Arc<Mutex<HashMap<u64, (String, Channel)>>>,
}

impl Peers {
    pub(crate) fn new(self_id: u64, region: AsciiMetadataValue, tls: Option<ClientTlsConfig>) -> Self {
        Self { self_id, region, tls, channels: Arc::new(Mutex::new(HashMap::new())) }
    }

    pub(crate) fn self_id(&self) -> u64 {
        self.self_id
    }

    /// A client for `peer` at `addr`, reusing the cached channel while the address is unchanged.
    /// Refuses the local node: openraft must never replicate to itself, and a forward to
    /// ourselves would loop.
    pub(crate) fn client(&self, peer: u64, addr: &str) -> Result<RaftClient, String> {
        self.channel(peer, addr).map(RaftServiceClient::new)
    }

    /// A client of `peer`'s admin service (node status, membership changes), on the same cached
    /// channel as Raft traffic.
    pub(crate) fn admin_client(&self, peer: u64, addr: &str) -> Result<AdminClient, String> {
        self.channel(peer, addr).map(RaftAdminServiceClient::new)
    }

    /// The cached channel to `peer`, stamping each request with the peer's address
    /// (`super::addressing`).
    fn channel(&self, peer: u64, addr: &str) -> Result<AddressedChannel, String> {
        let addressee = Addressee::new(self.region.clone(), peer);
        self.connection(peer, addr).map(|channel| InterceptedService::new(channel, addressee))
    }

    fn connection(&self, peer: u64, addr: &str) -> Result<Channel, String> {
        if peer == self.self_id {
            return Err(format!("refusing a raft client to the local node {peer}"));
        }
        // A poisoned lock only means another thread panicked while inserting; the map is still
        // a valid cache.
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached_addr, channel)) = channels.get(&peer)
            && cached_addr == addr
        {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("invalid raft address of node {peer}: {e}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS settings for node {peer} at {addr}: {e}"))?;
        }
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(peer, (addr.to_string(), channel.clone()));
        Ok(channel)
    }
}
