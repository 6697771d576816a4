//! Multi-Region keys between regions: the other regions a region knows, the service through
//! which they deliver updates to it ([`service`]), and the replicator through which its leader
//! delivers its own ([`replicator`]). The rules of what an update means are kms-core's
//! (`kms_core::multi_region`); this module moves updates and rewraps their material.

pub mod replicator;
pub mod service;

use std::collections::BTreeMap;
use tonic::transport::Channel;

/// The other regions of the deployment, by name, each with a channel to its client endpoints
/// (over mutual TLS with this node's certificate when the deployment runs on TLS).
#[derive(Clone, Default)]
pub struct PeerRegions {
    regions: BTreeMap<String, Channel>,
}

impl PeerRegions {
    pub fn new(regions: BTreeMap<String, Channel>) -> Self {
        Self { regions }
    }

    pub fn contains(&self, region: &str) -> bool {
        self.regions.contains_key(region)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.regions.keys().map(String::as_str)
    }

    pub(crate) fn channel(&self, region: &str) -> Option<Channel> {
        self.regions.get(region).cloned()
    }
}
