//! A 3-node region where nodes are frozen with SIGSTOP (no answers, no heartbeats, sockets kept
//! open, as in a network cut):
//! - one frozen follower: the majority keeps accepting writes; thawed, the follower converges
//!   (by a snapshot when it fell behind the leader's log) and its reads show every write;
//! - a node left alone (the other two frozen): writes on it fail with a retriable UNAVAILABLE
//!   within the request deadline instead of hanging, crypto on keys it already has still works,
//!   and writes succeed again once the majority is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, Cluster, exception, verify_on, workload};
use kms_proto::v1 as pb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn run_workload(cluster: &Cluster, ids: &[u64], for_how_long: Duration, acked: &Arc<Mutex<Acked>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (worker, id) in ids.iter().enumerate() {
        let reader = ids[(worker + 1) % ids.len()];
        workers.push(tokio::spawn(workload(
            worker,
            cluster.node(*id).client(),
            cluster.node(reader).client(),
            acked.clone(),
            stop.clone(),
            Duration::from_millis(50),
        )));
    }
    tokio::time::sleep(for_how_long).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("worker hung").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_cannot_write_majority_continues_and_the_minority_converges() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    run_workload(&cluster, &[1, 2, 3], Duration::from_secs(1), &acked).await;

    // 1. Freeze one follower; the other two keep going.
    let frozen = others[0];
    let frozen_applied_before = applied(&cluster, frozen).await;
    cluster.node_mut(frozen).sigstop();
    let majority = [leader, others[1]];
    let before = acked.lock().unwrap().keys.len();
    run_workload(&cluster, &majority, Duration::from_secs(4), &acked).await;
    let during = acked.lock().unwrap().keys.len() - before;
    assert!(during >= 20, "the majority should keep writing: {during} keys");
    let leader_status = cluster.status(leader).await.unwrap();
    assert!(
        leader_status.nodes.iter().any(|n| n.node_id == frozen && n.state == "Unreachable"),
        "status should show the frozen node unreachable: {leader_status:?}"
    );

    // Thawed, it catches up (the leader purged its log past it: a snapshot) and reads everything.
    cluster.node_mut(frozen).sigcont();
    cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    let frozen_status = cluster.status(frozen).await.unwrap();
    let me = frozen_status.nodes.iter().find(|n| n.node_id == frozen).unwrap().clone();
    let acked_now = acked.lock().unwrap().clone();
    verify_on(&cluster, frozen, &acked_now).await;
    println!(
        "follower {frozen} frozen while the majority wrote {during} keys; thawed, it went from applied \
         {frozen_applied_before:?} to {:?} (snapshot index {:?}) and reads all {} keys / {} ciphertexts",
        me.last_applied_index,
        me.snapshot_index,
        acked_now.keys.len(),
        acked_now.ciphertexts.len()
    );

    // 2. Leave one node alone: freeze the other two (including the leader).
    let alone = frozen;
    let existing_key = acked_now.keys[0].clone();
    for id in [leader, others[1]] {
        cluster.node_mut(id).sigstop();
    }
    let mut client = cluster.node(alone).client_with_timeout(Duration::from_secs(20));
    for attempt in 0..2 {
        let started = Instant::now();
        let result = client.create_key(pb::CreateKeyRequest::default()).await;
        let took = started.elapsed();
        let status = result.expect_err("a node without a majority must not accept a write");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(exception(&status), "DependencyTimeoutException");
        // request_timeout_ms = 3000 in the test tuning, plus slack for a loaded machine.
        assert!(took < Duration::from_secs(6), "the write hung for {took:?}");
        println!(
            "isolated node {alone}, write attempt {attempt}: {:?} after {took:?}: {}",
            status.code(),
            status.message()
        );
    }
    // Crypto on a key it already has needs no quorum.
    let encrypted = client
        .encrypt(pb::EncryptRequest {
            key_id: existing_key,
            plaintext: b"still here".to_vec(),
            ..Default::default()
        })
        .await;
    assert!(encrypted.is_ok(), "local crypto on the isolated node: {encrypted:?}");

    // The majority comes back: writes on the formerly isolated node succeed again.
    let thawed_at = Instant::now();
    for id in [leader, others[1]] {
        cluster.node_mut(id).sigcont();
    }
    let recovered = loop {
        if client.create_key(pb::CreateKeyRequest::default()).await.is_ok() {
            break thawed_at.elapsed();
        }
        assert!(thawed_at.elapsed() < Duration::from_secs(20), "writes did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    let acked = acked.lock().unwrap().clone();
    for id in [1, 2, 3] {
        verify_on(&cluster, id, &acked).await;
    }
    println!(
        "after the majority came back, a write on node {alone} succeeded within {recovered:?}; \
         {} keys verified on every node; failed calls during the test: {:?}; test took {:?}",
        acked.keys.len(),
        acked.errors,
        test_start.elapsed()
    );
}

async fn applied(cluster: &Cluster, id: u64) -> Option<u64> {
    let s = cluster.status(id).await.unwrap();
    s.nodes.iter().find(|n| n.node_id == id).and_then(|n| n.last_applied_index)
}
