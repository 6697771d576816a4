//! Automatic join on scale-up: a node started with `join` (the client endpoints of existing
//! members) and no `initial_members` adds itself to a running region through the cluster admin
//! API, learner first, then voter, and serves keys created before it joined. Restarting it,
//! and restarting a node that stopped halfway (added as a learner, never promoted), both end
//! with the node a voter and nothing else changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Cluster, admin_pb, eventually};
use kms_proto::v1 as pb;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The voters as node `via` reports them.
async fn voters(cluster: &Cluster, via: u64) -> BTreeSet<u64> {
    match cluster.status(via).await {
        Ok(s) => s.nodes.iter().filter(|n| n.voter).map(|n| n.node_id).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Waits until node `via` reports exactly `want` as the voters.
async fn wait_voters(cluster: &Cluster, via: u64, want: &[u64], timeout: Duration) {
    let want: BTreeSet<u64> = want.iter().copied().collect();
    let deadline = Instant::now() + timeout;
    loop {
        let seen = voters(cluster, via).await;
        if seen == want {
            return;
        }
        assert!(Instant::now() < deadline, "voters are {seen:?}, not {want:?}, after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Node `id` knows key `key_id` and decrypts `blob` to `plaintext`.
async fn serves(cluster: &Cluster, id: u64, key_id: &str, blob: &[u8], plaintext: &[u8]) {
    let mut client = cluster.node(id).client();
    let request = pb::DescribeKeyRequest { key_id: key_id.to_string(), ..Default::default() };
    let meta = client.describe_key(request).await.unwrap().into_inner().key_metadata.unwrap();
    assert_eq!(meta.key_id, key_id);
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    assert_eq!(client.decrypt(request).await.unwrap().into_inner().plaintext, plaintext);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_join_endpoints_becomes_a_voter_and_stays_one() {
    let mut cluster = Cluster::start(3).await;
    let mut client = cluster.node(1).client();
    let key = client.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner();
    let key_id = key.key_metadata.unwrap().key_id;
    let plaintext = b"written before node 4 existed".to_vec();
    let request =
        pb::EncryptRequest { key_id: key_id.clone(), plaintext: plaintext.clone(), ..Default::default() };
    let blob = client.encrypt(request).await.unwrap().into_inner().ciphertext_blob;

    // Scale up: node 4 only knows whom to ask.
    cluster.spawn_auto_joining(4).await;
    wait_voters(&cluster, 1, &[1, 2, 3, 4], Duration::from_secs(60)).await;
    cluster.wait_converged(&[1, 2, 3, 4], Duration::from_secs(30)).await;
    serves(&cluster, 4, &key_id, &blob, &plaintext).await;
    // The promotion commits (and node 1 reports it) before node 4's join call returns and says so.
    let node4 = cluster.node(4);
    let said = || async { node4.log_text().contains("joined the region as a voter").then_some(()) };
    eventually("node 4 to log that it joined as a voter", Duration::from_secs(10), said).await;

    // Restarted, it sees itself a voter in its own state and asks nobody.
    cluster.node_mut(4).kill();
    cluster.restart(4).await;
    cluster.wait_converged(&[1, 2, 3, 4], Duration::from_secs(30)).await;
    assert_eq!(voters(&cluster, 4).await, BTreeSet::from([1, 2, 3, 4]));
    serves(&cluster, 4, &key_id, &blob, &plaintext).await;

    // Halfway: node 5 was added as a learner (by hand, as if its first start died right after
    // that step), then restarted with `join`; it promotes itself.
    let raft5 = cluster.spawn_joining(5).await.raft_listen.to_string();
    let mut admin = cluster.node(2).admin();
    admin.add_learner(admin_pb::AddLearnerRequest { node_id: 5, raft_address: raft5 }).await.unwrap();
    cluster.node_mut(5).kill();
    cluster.set_join(5);
    cluster.restart(5).await;
    wait_voters(&cluster, 3, &[1, 2, 3, 4, 5], Duration::from_secs(60)).await;
    cluster.wait_converged(&[1, 2, 3, 4, 5], Duration::from_secs(30)).await;
    serves(&cluster, 5, &key_id, &blob, &plaintext).await;
    let log = cluster.node(5).log_text();
    assert!(log.contains("asking to be promoted") && !log.contains("asking to be added"), "{log}");

    // The region still takes writes, on the new voters too.
    let mut client = cluster.node(5).client();
    client.create_key(pb::CreateKeyRequest::default()).await.unwrap();
}
