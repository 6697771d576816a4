//! Membership of a region of real kmsd processes, driven through `kmsctl cluster` and the
//! kms.admin.v1 gRPC API, under a light workload:
//! - grow 3 -> 5 (add-learner + promote, sent to followers, which hand them to the leader);
//! - transfer leadership, then shrink back to 3 (removing the leader hands leadership over first);
//! - replace a node whose data directory was wiped: remove it, add a fresh node with a NEW id;
//!   reusing an id is refused. Every acknowledged write is on the final members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, Cluster, admin_pb, verify_on, workload};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn kmsctl_json(cluster: &Cluster, via: u64, args: &[&str]) -> serde_json::Value {
    let out = cluster.node(via).kmsctl(args);
    assert!(
        out.status.success(),
        "kmsctl {args:?} via node {via} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(v: &serde_json::Value) -> BTreeSet<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

/// The voters as node `via` reports them.
async fn voters(cluster: &Cluster, via: u64) -> BTreeSet<u64> {
    let s = cluster.status(via).await.unwrap();
    s.nodes.iter().filter(|n| n.voter).map(|n| n.node_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_shrink_and_replace_a_wiped_node() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    // Light load on nodes 1 and 2 for the whole test (neither is removed below... except that
    // node 3's replacement may change who leads; the workload follows its own node).
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (worker, (w, r)) in [(1u64, 2u64), (2, 1)].into_iter().enumerate() {
        workers.push(tokio::spawn(workload(
            worker,
            cluster.node(w).client(),
            cluster.node(r).client(),
            acked.clone(),
            stop.clone(),
            Duration::from_millis(200),
        )));
    }

    // --- Grow 3 -> 5. Node 4 through kmsctl on a follower, node 5 through the gRPC API. ---
    let raft4 = cluster.spawn_joining(4).await.raft_listen.to_string();
    let added = kmsctl_json(
        &cluster,
        follower,
        &["cluster", "add-learner", "--node-id", "4", "--raft-address", &raft4],
    );
    assert!(ids(&added["Learners"]).contains(&4), "{added}");
    let promoted = kmsctl_json(&cluster, follower, &["cluster", "promote", "--node-id", "4"]);
    assert_eq!(ids(&promoted["Voters"]), BTreeSet::from([1, 2, 3, 4]), "{promoted}");

    let raft5 = cluster.spawn_joining(5).await.raft_listen.to_string();
    let mut admin = cluster.node(leader).admin();
    admin.add_learner(admin_pb::AddLearnerRequest { node_id: 5, raft_address: raft5 }).await.unwrap();
    let m = admin.promote_learner(admin_pb::PromoteLearnerRequest { node_id: 5 }).await.unwrap().into_inner();
    assert_eq!(m.voters, vec![1, 2, 3, 4, 5]);
    cluster.wait_converged(&[1, 2, 3, 4, 5], Duration::from_secs(30)).await;
    let status = kmsctl_json(&cluster, 5, &["cluster", "status"]);
    let nodes = status["Nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5, "{status}");
    for n in nodes {
        assert_eq!(n["Role"], "Voter", "{status}");
        assert!(n["State"] == "Leader" || n["State"] == "Follower", "{status}");
        assert_eq!(n["LeaderId"], status["LeaderId"], "{status}");
    }
    println!("grown to 5 voters: {}", serde_json::to_string(&status).unwrap());

    // --- Transfer leadership to node 5, then shrink back to 3 by removing 5 (the leader: it
    // hands leadership over first) and 4. ---
    let moved = kmsctl_json(&cluster, 4, &["cluster", "transfer-leader", "--node-id", "5"]);
    assert_eq!(moved["LeaderId"], 5, "{moved}");
    assert_eq!(cluster.wait_leader(Duration::from_secs(10)).await, 5);
    let removed = kmsctl_json(&cluster, 5, &["cluster", "remove-node", "--node-id", "5"]);
    assert!(!ids(&removed["Voters"]).contains(&5), "{removed}");
    cluster.discard(5);
    let removed = kmsctl_json(&cluster, 1, &["cluster", "remove-node", "--node-id", "4"]);
    assert_eq!(ids(&removed["Voters"]), BTreeSet::from([1, 2, 3]), "{removed}");
    cluster.discard(4);
    cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    assert_eq!(voters(&cluster, 1).await, BTreeSet::from([1, 2, 3]));
    assert_eq!(cluster.status(1).await.unwrap().nodes.len(), 3);

    // --- Replace node 3 after its disk was wiped. ---
    cluster.node_mut(3).kill();
    std::fs::remove_dir_all(cluster.node(3).data_dir()).unwrap();
    cluster.discard(3);
    let removed = kmsctl_json(&cluster, 2, &["cluster", "remove-node", "--node-id", "3"]);
    assert_eq!(ids(&removed["Voters"]), BTreeSet::from([1, 2]), "{removed}");
    // Ids are never reused: the old id (or any id not above the members') is refused.
    let raft6 = cluster.spawn_joining(6).await.raft_listen.to_string();
    let reuse =
        cluster.node(1).kmsctl(&["cluster", "add-learner", "--node-id", "3", "--raft-address", &raft6]);
    assert!(!reuse.status.success());
    let stderr = String::from_utf8_lossy(&reuse.stderr);
    assert!(stderr.contains("never reused"), "{stderr}");
    kmsctl_json(&cluster, 1, &["cluster", "add-learner", "--node-id", "6", "--raft-address", &raft6]);
    let promoted = kmsctl_json(&cluster, 1, &["cluster", "promote", "--node-id", "6"]);
    assert_eq!(ids(&promoted["Voters"]), BTreeSet::from([1, 2, 6]), "{promoted}");

    // Let the load run a little on the final membership, then check everything everywhere.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("worker hung").unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.keys.len() >= 10, "too little traffic: {} keys", acked.keys.len());
    cluster.wait_converged(&[1, 2, 6], Duration::from_secs(30)).await;
    for id in [1, 2, 6] {
        verify_on(&cluster, id, &acked).await;
    }
    let status = kmsctl_json(&cluster, 6, &["cluster", "status"]);
    let s6 = status["Nodes"].as_array().unwrap().iter().find(|n| n["NodeId"] == 6).unwrap().clone();
    println!(
        "replaced wiped node 3 by node 6 (snapshot index on 6: {}); final status: {}; {} keys, {} \
         ciphertexts, {} rotations verified on nodes 1, 2, 6; failed calls: {:?}; test took {:?}",
        s6["SnapshotIndex"],
        serde_json::to_string(&status).unwrap(),
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.rotations,
        acked.errors,
        test_start.elapsed()
    );
}
