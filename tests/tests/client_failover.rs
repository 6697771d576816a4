//! The client library against a 3-node region of real kmsd processes.
//!
//! First the server side of CreateKey's idempotency token: the same token (sent to two
//! different nodes) gives the same key, and the same token with other parameters is refused.
//! Then workers share one client given all three endpoints and loop CreateKey (each with its
//! own token) + Encrypt + Decrypt while the leader is SIGKILLed. No call may fail (retries and
//! failover must carry every one to the new leader), every acknowledged key must exist, and the
//! region must hold exactly one key per logical CreateKey: a CreateKey that committed but whose
//! answer was lost is retried with its token, never creating a duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_client::client::Client;
use kms_e2e::{Cluster, exception};
use kms_proto::v1 as pb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the workers were told.
#[derive(Default)]
struct Acked {
    /// Logical CreateKey calls started.
    creates: usize,
    keys: Vec<String>,
    /// Start times of the calls that succeeded.
    started: Vec<Instant>,
    failures: Vec<String>,
}

async fn token_is_honoured_on_every_node(cluster: &Cluster) {
    let request = |description: &str| pb::CreateKeyRequest {
        description: Some(description.into()),
        idempotency_token: Some("e2e-token-1".into()),
        ..Default::default()
    };
    let key_id = |response: pb::CreateKeyResponse| response.key_metadata.unwrap().key_id;
    let first =
        key_id(cluster.node(1).client().create_key(request("token check")).await.unwrap().into_inner());
    let again =
        key_id(cluster.node(2).client().create_key(request("token check")).await.unwrap().into_inner());
    assert_eq!(again, first, "the same token through another node answers the same key");
    let err = cluster.node(3).client().create_key(request("other parameters")).await.unwrap_err();
    assert_eq!(exception(&err), "ValidationException", "{err:?}");
    assert!(err.message().contains("different parameters"), "{}", err.message());
}

/// One worker: CreateKey with the run's description, Encrypt and Decrypt under it, until `stop`.
async fn worker(client: Client, run: String, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        acked.lock().unwrap().creates += 1;
        let request = pb::CreateKeyRequest { description: Some(run.clone()), ..Default::default() };
        let outcome = async {
            let key = client.create_key(request).await?;
            acked.lock().unwrap().keys.push(key.key_id.clone());
            let plaintext = format!("{run} {}", key.key_id).into_bytes();
            let encrypt =
                pb::EncryptRequest { key_id: key.key_id, plaintext: plaintext.clone(), ..Default::default() };
            let blob = client.encrypt(encrypt).await?.ciphertext_blob;
            let decrypt = pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() };
            let decrypted = client.decrypt(decrypt).await?;
            assert_eq!(decrypted.plaintext.expose(), plaintext.as_slice());
            Ok::<_, kms_client::client::Error>(())
        }
        .await;
        let mut acked = acked.lock().unwrap();
        match outcome {
            Ok(()) => acked.started.push(started),
            Err(err) => acked.failures.push(err.to_string()),
        }
    }
}

/// How many keys of the region carry `description`.
async fn keys_described(client: &Client, description: &str) -> usize {
    let mut count = 0;
    for entry in client.list_all_keys().await.unwrap() {
        if client.describe_key(&entry.key_id).await.unwrap().description == description {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rides_out_a_leader_sigkill_without_failures_or_duplicate_keys() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_converged(&[1, 2, 3], Duration::from_secs(30)).await;
    token_is_honoured_on_every_node(&cluster).await;

    let client = Client::builder().region("e2e-1", cluster.client_endpoints()).build().unwrap();
    let run = format!("client-failover-{}", kms_e2e::Rng::random_seed());
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(worker(client.clone(), run.clone(), acked.clone(), stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_kill = acked.lock().unwrap().keys.len();
    assert!(before_kill >= 3, "too little traffic before the kill: {before_kill} keys");
    let killed_at = Instant::now();
    cluster.node_mut(leader).kill();
    let pause = loop {
        let done_after_kill = acked.lock().unwrap().started.iter().filter(|s| **s >= killed_at).count();
        if done_after_kill >= 3 {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "the loop stalled after the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(60), worker).await.expect("worker hung").unwrap();
    }

    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(acked.failures.is_empty(), "calls failed despite retries: {:?}", acked.failures);
    assert_eq!(acked.keys.len(), acked.creates, "every logical CreateKey was acknowledged");
    for key_id in &acked.keys {
        let metadata =
            client.describe_key(key_id).await.unwrap_or_else(|e| panic!("acknowledged {key_id}: {e}"));
        assert_eq!(metadata.description, run);
    }
    let in_region = keys_described(&client, &run).await;
    assert_eq!(in_region, acked.creates, "one key per logical CreateKey: no duplicates, none lost");
    let stats = client.stats();
    assert!(stats.attempts > stats.calls, "the kill made no call retry: {stats:?}");
    println!(
        "leader {leader} SIGKILLed after {before_kill} keys; 3 calls completed {pause:?} after the kill; \
         {} logical CreateKeys, {in_region} keys in the region, no failed call; client {stats:?}; \
         test took {:?}",
        acked.creates,
        test_start.elapsed()
    );
}
