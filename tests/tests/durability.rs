//! A node killed with SIGKILL while clients create keys and encrypt comes back with every
//! acknowledged key, and every acknowledged ciphertext decrypts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::Node;
use kms_proto::v1 as pb;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    keys: Vec<String>,
    ciphertexts: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Creates keys and encrypts with them until the server stops answering.
async fn writer(mut client: kms_e2e::Client, worker: usize, acked: Arc<Mutex<Acknowledged>>) {
    for i in 0.. {
        let request =
            pb::CreateKeyRequest { description: Some(format!("w{worker}-{i}")), ..Default::default() };
        let Ok(response) = client.create_key(request).await else { return };
        let key_id = response.into_inner().key_metadata.unwrap().key_id;
        acked.lock().unwrap().keys.push(key_id.clone());
        for j in 0..3 {
            let plaintext = format!("worker {worker} key {i} message {j}").into_bytes();
            let request = pb::EncryptRequest {
                key_id: key_id.clone(),
                plaintext: plaintext.clone(),
                ..Default::default()
            };
            let Ok(response) = client.encrypt(request).await else { return };
            acked.lock().unwrap().ciphertexts.push((response.into_inner().ciphertext_blob, plaintext));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_keys_and_ciphertexts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("node")).await;
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        workers.push(tokio::spawn(writer(node.client().await, worker, acked.clone())));
    }
    // Let the writers get going, then pull the plug mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.kill();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("writer hung").unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.keys.len() >= 5, "too little traffic before the kill: {} keys", acked.keys.len());

    node.restart().await;
    let mut client = node.client().await;
    for key_id in &acked.keys {
        let request = pb::DescribeKeyRequest { key_id: key_id.clone(), ..Default::default() };
        let metadata =
            client.describe_key(request).await.unwrap_or_else(|s| panic!("key {key_id} lost: {s:?}"));
        assert_eq!(metadata.into_inner().key_metadata.unwrap().key_state, i32::from(pb::KeyState::Enabled));
    }
    for (blob, plaintext) in &acked.ciphertexts {
        let request = pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() };
        let response = client.decrypt(request).await.expect("acknowledged ciphertext no longer decrypts");
        assert_eq!(&response.into_inner().plaintext, plaintext);
    }
    eprintln!("{} keys and {} ciphertexts survived SIGKILL", acked.keys.len(), acked.ciphertexts.len());

    // And the node still takes writes after the crash.
    client.create_key(pb::CreateKeyRequest::default()).await.unwrap();
    node.stop();
}
