//! The nodes of each region, what the client remembers of their health, and the order in which
//! a call tries them.
//!
//! A node that failed in a way that blames it (no connection, UNAVAILABLE, a deadline) is
//! *suspect* for a while, longer with every consecutive fault: calls try the healthy nodes of
//! every region in their plan first and the suspect ones last, so a dead node costs one timeout,
//! not one per call. A success clears it. Within a region, calls start at the node that last
//! answered, so they keep using one warm connection.

use super::transport::Svc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long faults make a node suspect: `base * 2^(consecutive faults - 1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    pub base: Duration,
    pub max: Duration,
}

/// Suspicion only moves a node to the end of the order, never out of it, so erring long costs
/// little (a recovered node waits a little before it is preferred again), while erring short
/// makes calls pay a dead node's timeout again.
impl Default for Cooldown {
    fn default() -> Self {
        Self { base: Duration::from_secs(5), max: Duration::from_secs(60) }
    }
}

/// What the client remembers of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Health {
    consecutive_faults: u32,
    suspect_until: Option<Instant>,
}

impl Health {
    pub(crate) fn is_suspect(&self, now: Instant) -> bool {
        self.suspect_until.is_some_and(|until| now < until)
    }

    fn fault(&mut self, now: Instant, cooldown: Cooldown) {
        self.consecutive_faults = self.consecutive_faults.saturating_add(1);
        let doublings = (self.consecutive_faults - 1).min(16);
        let pause = cooldown.base.saturating_mul(1u32 << doublings).min(cooldown.max);
        self.suspect_until = Some(now + pause);
    }
}

/// One node: its endpoint, its connection and its health.
pub(crate) struct Node {
    pub url: String,
    pub svc: Svc,
    health: Mutex<Health>,
}

impl Node {
    pub(crate) fn new(url: String, svc: Svc) -> Self {
        Self { url, svc, health: Mutex::new(Health::default()) }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // Health is two plain fields; a panic elsewhere cannot leave it half-written.
        self.health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Health {
        *self.health()
    }
}

/// The nodes of one region.
pub(crate) struct RegionNodes {
    pub name: String,
    pub nodes: Vec<Node>,
    /// The node that answered last: where the next call starts.
    preferred: AtomicUsize,
}

impl RegionNodes {
    pub(crate) fn new(name: String, nodes: Vec<Node>) -> Self {
        Self { name, nodes, preferred: AtomicUsize::new(0) }
    }

    pub(crate) fn succeeded(&self, node: usize) {
        *self.nodes[node].health() = Health::default();
        self.preferred.store(node, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, node: usize, now: Instant, cooldown: Cooldown) {
        self.nodes[node].health().fault(now, cooldown);
    }

    /// `(preferred node, health of every node)`, for [`round_order`].
    pub(crate) fn view(&self) -> (usize, Vec<Health>) {
        (self.preferred.load(Ordering::Relaxed), self.nodes.iter().map(Node::snapshot).collect())
    }
}

/// The order in which one round of a call tries nodes: `regions` are `(region, preferred node,
/// healths)` in the plan's order. Healthy nodes of every region first, region by region, each
/// region's starting at its preferred node; then the suspect ones, those that recover soonest
/// first. Returns `(region, node)` pairs.
pub(crate) fn round_order(regions: &[(usize, usize, Vec<Health>)], now: Instant) -> Vec<(usize, usize)> {
    let mut healthy = Vec::new();
    let mut suspect = Vec::new();
    for (region, preferred, healths) in regions {
        let count = healths.len();
        for node in (0..count).map(|i| (preferred + i) % count) {
            if healths[node].is_suspect(now) {
                suspect.push((healths[node].suspect_until, *region, node));
            } else {
                healthy.push((*region, node));
            }
        }
    }
    suspect.sort_by_key(|(until, _, _)| *until);
    healthy.extend(suspect.into_iter().map(|(_, region, node)| (region, node)));
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspect_for(now: Instant, seconds: u64) -> Health {
        Health { consecutive_faults: 1, suspect_until: Some(now + Duration::from_secs(seconds)) }
    }

    #[test]
    fn faults_make_a_node_suspect_for_longer_each_time() {
        let now = Instant::now();
        let cooldown = Cooldown { base: Duration::from_millis(100), max: Duration::from_millis(350) };
        let mut health = Health::default();
        let mut pauses = Vec::new();
        for _ in 0..4 {
            health.fault(now, cooldown);
            pauses.push(health.suspect_until.unwrap() - now);
        }
        let millis: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 350, 350]);
        assert!(health.is_suspect(now) && !health.is_suspect(now + Duration::from_millis(350)));
    }

    #[test]
    fn healthy_nodes_of_every_region_come_before_suspect_ones() {
        let now = Instant::now();
        let ok = Health::default();
        let regions = vec![(0, 1, vec![ok, ok, suspect_for(now, 5)]), (1, 0, vec![suspect_for(now, 2), ok])];
        assert_eq!(round_order(&regions, now), [(0, 1), (0, 0), (1, 1), (1, 0), (0, 2)]);
    }

    #[test]
    fn a_region_whose_nodes_are_all_suspect_is_tried_last() {
        let now = Instant::now();
        let down = vec![suspect_for(now, 1), suspect_for(now, 1)];
        let regions = vec![(0, 0, down), (1, 0, vec![Health::default()])];
        assert_eq!(round_order(&regions, now), [(1, 0), (0, 0), (0, 1)]);
        let recovered = round_order(&regions, now + Duration::from_secs(1));
        assert_eq!(recovered, [(0, 0), (0, 1), (1, 0)], "suspicion ends by itself");
    }
}
