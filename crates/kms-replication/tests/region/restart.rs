use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{config, get, open, wait_status};

const N: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_region_survives_restart() {
    let dir = tempfile::tempdir().unwrap();

    let region = open(config(1, dir.path())).await;
    let members = BTreeMap::from([(1, region.raft_addr().to_string())]);
    region.initialize(members.clone()).await.unwrap();
    // Idempotent: a second call is a no-op.
    region.initialize(members).await.unwrap();

    for i in 0..N {
        let previous = region.propose(format!("put k{i} v{i}").into_bytes()).await.unwrap();
        assert_eq!(previous, b"-");
        // Each command must see the previous one's write.
        region.propose(format!("append log {}", i % 10).into_bytes()).await.unwrap();
    }
    let expected_log: String = (0..N).map(|i| (i % 10).to_string()).collect();
    assert_eq!(get(&region, "log").as_deref(), Some(expected_log.as_str()));
    let applied_before = region.status().last_applied_index;
    region.shutdown().await.unwrap();
    drop(region);

    let region = open(config(1, dir.path())).await;
    // Everything committed before the restart is applied again before `open` returns.
    assert!(region.status().last_applied_index >= applied_before);
    for i in 0..N {
        assert_eq!(get(&region, &format!("k{i}")), Some(format!("v{i}")), "key k{i}");
    }
    assert_eq!(get(&region, "log").as_deref(), Some(expected_log.as_str()));
    // Re-initializing a node with state is a no-op.
    region.initialize(BTreeMap::new()).await.unwrap();

    // The single node elects itself again and takes writes.
    wait_status(&region, "re-election", Duration::from_secs(10), |s| s.is_leader).await;
    let previous = region.propose(b"put k0 changed".to_vec()).await.unwrap();
    assert_eq!(previous, b"v0");
    region.sync_reads().await.unwrap();
    assert_eq!(get(&region, "k0").as_deref(), Some("changed"));
    region.shutdown().await.unwrap();
}
