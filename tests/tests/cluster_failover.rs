//! A 3-node region of real kmsd processes: the leader is SIGKILLed while a workload (create
//! keys, encrypt on another node, rotate) runs against every node. A new leader takes over, the
//! workload continues after a bounded pause, and afterwards every acknowledged key exists and
//! every acknowledged ciphertext decrypts on every node (the killed one restarted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, Cluster, verify_on, workload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_under_load_fails_over_and_loses_nothing() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let old_leader = cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    let term_before = cluster.status(old_leader).await.unwrap().term;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let ids = [1u64, 2, 3];
    for (worker, id) in ids.iter().enumerate() {
        // Writes on node `id`, crypto reads on the next node.
        let reader = ids[(worker + 1) % ids.len()];
        workers.push(tokio::spawn(workload(
            worker,
            cluster.node(*id).client_with_timeout(Duration::from_secs(8)),
            cluster.node(reader).client_with_timeout(Duration::from_secs(8)),
            acked.clone(),
            stop.clone(),
            Duration::from_millis(50),
        )));
    }

    tokio::time::sleep(Duration::from_secs(4)).await;
    let before_kill = acked.lock().unwrap().keys.len();
    assert!(before_kill >= 5, "too little traffic before the kill: {before_kill} keys");
    let killed_at = Instant::now();
    cluster.node_mut(old_leader).kill();

    // Wait for the first write that started after the kill to be acknowledged.
    let pause = loop {
        let first =
            acked.lock().unwrap().writes.iter().filter(|(s, _)| *s >= killed_at).map(|(_, f)| *f).min();
        if let Some(done) = first {
            break done - killed_at;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(20), "no write succeeded within 20 s of the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Keep the workload running on the survivors for a while after the takeover.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("worker hung").unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let after_kill = acked.writes.iter().filter(|(s, _)| *s >= killed_at).count();

    let survivors: Vec<u64> = ids.iter().copied().filter(|id| *id != old_leader).collect();
    let new_leader = cluster.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, old_leader);
    let term_after = cluster.status(new_leader).await.unwrap().term;
    assert!(term_after > term_before);
    assert!(after_kill >= 5, "the workload did not continue after the kill: {after_kill} writes");

    // The killed leader comes back as a follower and catches up.
    cluster.restart(old_leader).await;
    cluster.wait_converged(&ids, Duration::from_secs(30)).await;
    for id in ids {
        verify_on(&cluster, id, &acked).await;
    }
    println!(
        "leader {old_leader} SIGKILLed (term {term_before}); node {new_leader} leads in term {term_after}; \
         survivors {survivors:?}; pause from kill to first acknowledged write: {pause:?}; \
         {} keys, {} ciphertexts, {} rotations acknowledged ({before_kill} keys before the kill, \
         {after_kill} writes after); failed calls: {:?}; all verified on nodes 1-3; test took {:?}",
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.rotations,
        acked.errors,
        test_start.elapsed()
    );
    assert!(pause < Duration::from_secs(10), "failover pause too long: {pause:?}");
}
