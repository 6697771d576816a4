//! A 3-node region SIGKILLed all at once while a workload runs, then restarted: it elects a
//! leader again and every acknowledged key and ciphertext is intact on every node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, Cluster, verify_on, workload};
use kms_proto::v1 as pb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_region_sigkill_and_restart_keeps_every_acknowledged_write() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let ids = [1u64, 2, 3];
    cluster.wait_converged(&ids, Duration::from_secs(30)).await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (worker, id) in ids.iter().enumerate() {
        workers.push(tokio::spawn(workload(
            worker,
            cluster.node(*id).client_with_timeout(Duration::from_secs(5)),
            cluster.node(ids[(worker + 1) % 3]).client_with_timeout(Duration::from_secs(5)),
            acked.clone(),
            stop.clone(),
            Duration::from_millis(100),
        )));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Pull the plug on every node at once, mid-stream.
    for id in ids {
        cluster.node_mut(id).kill();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("worker hung").unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.keys.len() >= 10, "too little traffic: {} keys", acked.keys.len());

    let restarted_at = Instant::now();
    for id in ids {
        cluster.restart(id).await;
    }
    let leader = cluster.wait_converged(&ids, Duration::from_secs(30)).await;
    let back_after = restarted_at.elapsed();
    for id in ids {
        verify_on(&cluster, id, &acked).await;
    }
    // And it takes new writes.
    let mut client = cluster.node(ids[0]).client();
    let key = client.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner();
    let key_id = key.key_metadata.unwrap().key_id;
    for id in ids {
        let request = pb::DescribeKeyRequest { key_id: key_id.clone(), ..Default::default() };
        cluster.node(id).client().describe_key(request).await.unwrap();
    }
    println!(
        "all 3 nodes SIGKILLed together; restarted and converged (leader {leader}) in {back_after:?}; \
         {} keys, {} ciphertexts, {} rotations acknowledged before the kill all verified on every node; \
         test took {:?}",
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.rotations,
        test_start.elapsed()
    );
}
