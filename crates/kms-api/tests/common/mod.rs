//! Shared by the kms-api integration tests: a real single-node region (Raft + RocksDB in a temp
//! dir) behind a `Kms` whose clock the test moves by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use kms_api::{Clock, Kms};
use kms_core::command::KmsStateMachine;
use kms_core::ids::RegionScope;
use kms_core::key::DAY_MILLIS;
use kms_replication::{Region, RegionConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A clock the test sets by hand (only in tests; kmsd uses the system clock).
pub struct ManualClock(pub AtomicU64);

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    pub fn starting_at(millis: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(millis)))
    }

    pub fn advance_days(&self, days: u64) {
        self.0.fetch_add(days * DAY_MILLIS, Ordering::SeqCst);
    }
}

pub fn scope() -> RegionScope {
    RegionScope::new("test-1", "111122223333")
}

/// A single-node region in `dir`, initialized and leading, served by a `Kms` on `clock`.
pub async fn single_node(dir: &std::path::Path, clock: Arc<ManualClock>) -> Kms {
    let root = kms_crypto::RootKey::generate().unwrap();
    Kms::with_clock(leading_region(dir).await, root, scope(), clock)
}

/// A single-node region in `dir`, initialized and leading.
pub async fn leading_region(dir: &std::path::Path) -> Region {
    let config = RegionConfig {
        node_id: 1,
        data_dir: dir.join("raft"),
        raft_listen: "127.0.0.1:0".parse().unwrap(),
        raft_advertise: "127.0.0.1:0".into(),
        ..RegionConfig::default()
    };
    let region = Region::open(config, Arc::new(KmsStateMachine::new(scope().region))).await.unwrap();
    let members = BTreeMap::from([(1, region.raft_addr().to_string())]);
    region.initialize(members).await.unwrap();
    for _ in 0..100 {
        if region.is_leader() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    region
}
