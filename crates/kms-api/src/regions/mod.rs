//! Multi-Region keys between regions: the other regions a region knows, the service through
//! which they deliver updates to it ([`service`]), and the replicator through which its leader
//! delivers its own ([`replicator`]). The rules of what an update means are kms-core's
//! (`kms_core::multi_region`); this module moves updates and rewraps their material.

pub mod replicator;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Mutex;
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

/// What this node's replicator last saw of each destination (in memory; the leader's is the one
/// that moves).
#[derive(Default)]
pub(crate) struct DeliveryLog {
    destinations: Mutex<BTreeMap<String, Delivery>>,
}

#[derive(Clone, Default)]
pub(crate) struct Delivery {
    pub last_success_ms: u64,
    pub last_error: String,
}

impl DeliveryLog {
    pub(crate) fn record(&self, destination: &str, now_ms: u64, result: &Result<(), String>) {
        let mut destinations = self.destinations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let delivery = destinations.entry(destination.to_string()).or_default();
        match result {
            Ok(()) => {
                delivery.last_success_ms = now_ms;
                delivery.last_error.clear();
            }
            Err(err) => delivery.last_error = err.clone(),
        }
    }

    pub(crate) fn get(&self, destination: &str) -> Delivery {
        let destinations = self.destinations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        destinations.get(destination).cloned().unwrap_or_default()
    }
}
