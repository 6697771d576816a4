//! Root key rotation on a 3-node region of real kmsd processes, without downtime:
//!
//! 1. every node learns the new root key as a previous one (rolling restart);
//! 2. every node makes it active, the old one previous (rolling restart); the leader re-seals
//!    all key material under it until `kms_root_key_stale_sealed_values` reads 0;
//! 3. every node drops the old root key (rolling restart).
//!
//! A client runs crypto against the region all along, moving to another node when the one it
//! asked is restarting; no round of it may fail on every node. Afterwards every ciphertext made
//! before, during and after the rotation decrypts on every node, and signing and MAC keys still
//! work, with only the new root key left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, Cluster, write_root_key};
use kms_proto::v1 as pb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [u64; 3] = [1, 2, 3];

/// What the background client saw.
#[derive(Default)]
struct Traffic {
    /// (key id, ciphertext) made during the rotation.
    ciphertexts: Vec<(String, Vec<u8>)>,
    rounds: usize,
    /// Rounds in which no node answered.
    failed_rounds: usize,
    /// Answers refused by one node (one restarting, say) that another node then gave.
    moved: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_key_rotation_reseals_everything_without_downtime() {
    let test_start = Instant::now();
    let mut cluster = Cluster::prepare(3, "e2e-1");
    cluster.set_maintenance_interval(1);
    cluster.launch().await;
    let old_root = cluster.root_key_file().to_path_buf();
    let new_root = old_root.with_file_name("root-2.key");
    write_root_key(&new_root);

    // Key material of every kind the re-seal must move: two versions of a symmetric key, an
    // asymmetric private key, an HMAC key.
    let mut client = cluster.node(1).client();
    let symmetric =
        create_key(&mut client, pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt).await;
    let mut before = vec![(symmetric.clone(), encrypt(&mut client, &symmetric, b"before rotation").await)];
    client.rotate_key_on_demand(pb::RotateKeyOnDemandRequest { key_id: symmetric.clone() }).await.unwrap();
    before.push((symmetric.clone(), encrypt(&mut client, &symmetric, b"second version").await));
    let signing = create_key(&mut client, pb::KeySpec::EccNistP256, pb::KeyUsage::SignVerify).await;
    let mac = create_key(&mut client, pb::KeySpec::Hmac256, pb::KeyUsage::GenerateVerifyMac).await;
    let mac_before = generate_mac(&mut client, &mac).await;

    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<Client> =
        NODES.iter().map(|id| cluster.node(*id).client_with_timeout(Duration::from_secs(3))).collect();
    let worker = tokio::spawn(crypto_traffic(
        clients,
        symmetric.clone(),
        before[0].1.clone(),
        traffic.clone(),
        stop.clone(),
    ));

    // 1. The new root key, known everywhere but not yet used.
    cluster.set_config(&previous_root_keys(&[&new_root]));
    rolling_restart(&mut cluster).await;
    // 2. The new root key active, the old one previous.
    cluster.set_root_key_file(&new_root);
    cluster.set_config(&previous_root_keys(&[&old_root]));
    rolling_restart(&mut cluster).await;
    let during = create_key(
        &mut cluster.node(1).client(),
        pb::KeySpec::SymmetricDefault,
        pb::KeyUsage::EncryptDecrypt,
    )
    .await;
    let resealed_in = cluster.wait_resealed(Duration::from_secs(60)).await;
    // 3. The old root key gone.
    cluster.set_config("");
    rolling_restart(&mut cluster).await;

    for id in NODES {
        let log = cluster.node(id).log_text();
        let loaded: Vec<&str> = log.lines().filter(|line| line.contains("root keys loaded")).collect();
        assert_eq!(loaded.len(), 4, "node {id}: a start and three restarts:\n{log}");
        assert!(loaded[3].contains("previous=[]"), "node {id} still holds the old root key: {}", loaded[3]);
        assert!(!loaded[2].contains("previous=[]"), "node {id} lost a root key in step 2: {}", loaded[2]);
    }
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(30), worker).await.expect("traffic hung").unwrap();
    let traffic = std::mem::take(&mut *traffic.lock().unwrap());
    assert!(traffic.rounds >= 20, "too little traffic during the rotation: {} rounds", traffic.rounds);
    assert_eq!(traffic.failed_rounds, 0, "rounds no node could serve, of {}", traffic.rounds);

    // Everything decrypts on every node with the new root key alone.
    let all: Vec<(String, Vec<u8>)> =
        before.iter().cloned().chain(traffic.ciphertexts.iter().cloned()).collect();
    for id in NODES {
        let mut client = cluster.node(id).client();
        for (key_id, blob) in &all {
            let answer = client
                .decrypt(pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() })
                .await
                .unwrap_or_else(|e| panic!("node {id}: a ciphertext of {key_id} does not decrypt: {e}"));
            assert_eq!(&answer.into_inner().key_id, &cluster_arn(key_id));
        }
        assert!(!encrypt(&mut client, &during, b"after").await.is_empty());
        sign_and_verify(&mut client, &signing).await;
        let mac_after = generate_mac(&mut client, &mac).await;
        assert_eq!(mac_before, mac_after, "node {id}: the HMAC key changed");
    }
    println!(
        "root key rotated on 3 nodes in 3 rolling restarts: {} crypto rounds, 0 failed, {} answers moved \
         to another node; re-seal finished {resealed_in:?} after the switch; {} ciphertexts verified \
         on every node with the new root key alone; test took {:?}",
        traffic.rounds,
        traffic.moved,
        all.len(),
        test_start.elapsed()
    );
}

fn previous_root_keys(paths: &[&std::path::Path]) -> String {
    paths
        .iter()
        .map(|path| format!("[[previous_root_keys]]\nprovider = \"file\"\npath = {path:?}\n"))
        .collect()
}

/// Restarts every node in turn with the cluster's current configuration, waiting for the region
/// to converge after each, as an operator (or a StatefulSet rollout) does.
async fn rolling_restart(cluster: &mut Cluster) {
    for id in NODES {
        cluster.restart_reconfigured(id).await;
        cluster.wait_converged(&NODES, Duration::from_secs(30)).await;
    }
}

/// Encrypt, decrypt what it made and decrypt a ciphertext from before the rotation, on the first
/// node that answers, round after round.
async fn crypto_traffic(
    mut clients: Vec<Client>,
    key_id: String,
    old_blob: Vec<u8>,
    traffic: Arc<Mutex<Traffic>>,
    stop: Arc<AtomicBool>,
) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let plaintext = format!("round {round}").into_bytes();
        let mut served = None;
        for attempt in 0..clients.len() {
            let client = &mut clients[(round + attempt) % NODES.len()];
            if let Ok(blob) = crypto_round(client, &key_id, &plaintext, &old_blob).await {
                served = Some((attempt, blob));
                break;
            }
        }
        record(&traffic, &key_id, served);
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn record(traffic: &Mutex<Traffic>, key_id: &str, served: Option<(usize, Vec<u8>)>) {
    let mut traffic = traffic.lock().unwrap();
    traffic.rounds += 1;
    match served {
        Some((attempt, blob)) => {
            traffic.moved += usize::from(attempt > 0);
            traffic.ciphertexts.push((key_id.to_string(), blob));
        }
        None => traffic.failed_rounds += 1,
    }
}

async fn crypto_round(
    client: &mut Client,
    key_id: &str,
    plaintext: &[u8],
    old_blob: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    let blob = client.encrypt(request).await?.into_inner().ciphertext_blob;
    for (ciphertext, expected) in [(&blob[..], plaintext), (old_blob, &b"before rotation"[..])] {
        let request = pb::DecryptRequest { ciphertext_blob: ciphertext.to_vec(), ..Default::default() };
        let answer = client.decrypt(request).await?.into_inner();
        assert_eq!(answer.plaintext, expected, "decrypted to something else");
    }
    Ok(blob)
}

async fn create_key(client: &mut Client, spec: pb::KeySpec, usage: pb::KeyUsage) -> String {
    let request =
        pb::CreateKeyRequest { key_spec: spec as i32, key_usage: usage as i32, ..Default::default() };
    client.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id
}

async fn encrypt(client: &mut Client, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    client.encrypt(request).await.unwrap().into_inner().ciphertext_blob
}

async fn generate_mac(client: &mut Client, key_id: &str) -> Vec<u8> {
    let request = pb::GenerateMacRequest {
        key_id: key_id.into(),
        message: b"the same message".to_vec(),
        mac_algorithm: pb::MacAlgorithmSpec::HmacSha256 as i32,
        ..Default::default()
    };
    client.generate_mac(request).await.unwrap().into_inner().mac
}

async fn sign_and_verify(client: &mut Client, key_id: &str) {
    let algorithm = pb::SigningAlgorithmSpec::EcdsaSha256 as i32;
    let message = b"signed after the rotation".to_vec();
    let request = pb::SignRequest {
        key_id: key_id.into(),
        message: message.clone(),
        signing_algorithm: algorithm,
        ..Default::default()
    };
    let signature = client.sign(request).await.unwrap().into_inner().signature;
    let request = pb::VerifyRequest {
        key_id: key_id.into(),
        message,
        signature,
        signing_algorithm: algorithm,
        ..Default::default()
    };
    assert!(client.verify(request).await.unwrap().into_inner().signature_valid);
}

fn cluster_arn(key_id: &str) -> String {
    format!("arn:aws:kms:e2e-1:111122223333:key/{key_id}")
}
