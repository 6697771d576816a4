use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kms_replication::{RaftTuning, RegionConfig};

use crate::common::{config, get, open, wait_status};

const N: usize = 40;

fn snapshotting(node_id: u64, dir: &std::path::Path) -> RegionConfig {
    let base = config(node_id, dir);
    RegionConfig {
        tuning: RaftTuning {
            snapshot_logs_since_last: 10,
            // Purge everything a snapshot covers, so a new node can only catch up by snapshot.
            logs_kept_after_snapshot: 0,
            ..base.tuning.clone()
        },
        ..base
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_node_catches_up_by_snapshot_and_keeps_it_across_restart() {
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();

    let node1 = open(snapshotting(1, dir1.path())).await;
    node1.initialize(BTreeMap::from([(1, node1.raft_addr().to_string())])).await.unwrap();
    for i in 0..N {
        node1.propose(format!("put k{i} v{i}").into_bytes()).await.unwrap();
    }
    let s1 = wait_status(&node1, "a snapshot on node 1", Duration::from_secs(10), |s| {
        s.snapshot_index.is_some_and(|i| i >= 30)
    })
    .await;
    assert!(s1.snapshot_index.is_some());

    // Node 2 starts empty; the log it would need is purged, so it must install a snapshot.
    let node2 = open(snapshotting(2, dir2.path())).await;
    node1.add_learner(2, node2.raft_addr().to_string()).await.unwrap();
    let applied1 = node1.status().last_applied_index;
    let s2 = wait_status(&node2, "node 2 caught up", Duration::from_secs(10), |s| {
        s.last_applied_index >= applied1
    })
    .await;
    assert!(s2.snapshot_index.is_some(), "node 2 did not install a snapshot: {s2:?}");
    for i in 0..N {
        assert_eq!(get(&node2, &format!("k{i}")), Some(format!("v{i}")), "key k{i} on node 2");
    }

    // Make node 2 a voter and write through it.
    node1.change_membership(BTreeSet::from([1, 2])).await.unwrap();
    node2.propose(b"put after snapshot".to_vec()).await.unwrap();
    assert_eq!(get(&node2, "after").as_deref(), Some("snapshot"));

    // Node 2's installed snapshot and state survive its restart.
    node2.shutdown().await.unwrap();
    drop(node2);
    let node2 = open(snapshotting(2, dir2.path())).await;
    assert!(node2.status().snapshot_index.is_some());
    for i in 0..N {
        assert_eq!(get(&node2, &format!("k{i}")), Some(format!("v{i}")), "key k{i} after restart");
    }
    node2.shutdown().await.unwrap();
    node1.shutdown().await.unwrap();
}
