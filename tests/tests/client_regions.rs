//! The client library's multi-Region routing against two regions of real kmsd processes on
//! mutual TLS (A of three nodes, the client's home; B of one), the client authenticating with its
//! own certificate from the regions' CA.
//!
//! A multi-Region key is created in A and replicated to B through the client. Cryptographic
//! calls go to A (a key ARN naming B is rewritten for A); management calls on the bare key id
//! go to the primary. Then every node of A is frozen (SIGSTOP): Encrypt, Decrypt and
//! GenerateDataKey of the multi-Region key still succeed, from B, and once A's nodes are
//! suspect without waiting for them again; a single-Region key of A and management of the
//! multi-Region key (primary in A) fail, as they must.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_client::client::{CallOptions, Client, Settings};
use kms_e2e::{Cluster, binary};
use kms_proto::v1 as pb;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const A: &str = "region-a";
const B: &str = "region-b";

/// Runs `kmsctl ca <args>` (the CA and certificates of the test).
fn kmsctl_ca(args: &[&str], dir: &Path) {
    let output =
        Command::new(binary("kmsctl")).arg("ca").args(args).arg("--out-dir").arg(dir).output().unwrap();
    assert!(output.status.success(), "kmsctl ca {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Regions A (3 nodes) and B (1 node) on mutual TLS, each knowing the other's endpoints.
async fn two_regions(pki: &Path) -> (Cluster, Cluster) {
    let ca_dir = pki.join("ca");
    kmsctl_ca(&["create"], &ca_dir);
    let (mut a, mut b) = (Cluster::prepare(3, A), Cluster::prepare(1, B));
    a.enable_tls(&ca_dir);
    b.enable_tls(&ca_dir);
    let peer = |name: &str, region: &Cluster| {
        let endpoints: Vec<String> = region.client_endpoints().iter().map(|e| format!("{e:?}")).collect();
        format!("[regions.{name}]\nendpoints = [{}]", endpoints.join(", "))
    };
    let (to_b, to_a) = (peer(B, &b), peer(A, &a));
    a.append_config(&to_b);
    b.append_config(&to_a);
    a.launch().await;
    b.launch().await;
    (a, b)
}

/// The client: home A, then B; its own certificate (an application, not a node); short
/// attempt deadlines so that frozen nodes are given up on quickly.
fn client(a: &Cluster, b: &Cluster, pki: &Path) -> Client {
    let ca_dir = pki.join("ca");
    let ca_dir_arg = ca_dir.display().to_string();
    kmsctl_ca(&["issue", "--ca-dir", &ca_dir_arg, "--name", "app", "--uri", "spiffe://test/app"], pki);
    let settings = Settings { attempt_timeout: Duration::from_secs(1), ..Settings::default() };
    Client::builder()
        .region(A, a.client_endpoints())
        .region(B, b.client_endpoints())
        .tls_files(&ca_dir.join("ca.crt"), Some((&pki.join("app.crt"), &pki.join("app.key"))))
        .unwrap()
        .settings(settings)
        .build()
        .unwrap()
}

fn region_of(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap()
}

/// DescribeKey of `key_id` in `region` only.
async fn describe_in(
    client: &Client,
    region: &str,
    key_id: &str,
) -> Result<pb::KeyMetadata, kms_client::client::Error> {
    let request = pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() };
    let response = client.send_with(request, &CallOptions::default().region(region)).await?;
    Ok(response.key_metadata.unwrap())
}

async fn encrypt(client: &Client, key_id: &str, plaintext: &[u8]) -> pb::EncryptResponse {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    client.encrypt(request).await.unwrap()
}

async fn decrypt(
    client: &Client,
    blob: &[u8],
    options: &CallOptions,
) -> Result<pb::DecryptResponse, kms_client::client::Error> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    client.send_with(request, options).await
}

/// Waits until the replica in B is usable.
async fn replica_enabled(client: &Client, key_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = describe_in(client, B, key_id).await.map(|m| m.key_state);
        if state.as_ref().ok() == Some(&(pb::KeyState::Enabled as i32)) {
            return;
        }
        assert!(Instant::now() < deadline, "the replica in {B} is not Enabled after 30 s: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_region_keys_fail_over_to_a_replica_region_and_management_goes_to_the_primary() {
    let test_start = Instant::now();
    let pki = tempfile::tempdir().unwrap();
    let (mut a, b) = two_regions(pki.path()).await;
    let client = client(&a, &b, pki.path());

    // Create in the home region, replicate through the client (routed to the primary).
    let mrk = client
        .create_key(pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(region_of(&mrk.arn), A);
    let replicate = pb::ReplicateKeyRequest {
        key_id: mrk.key_id.clone(),
        replica_region: B.into(),
        ..Default::default()
    };
    client.send(replicate).await.unwrap();
    replica_enabled(&client, &mrk.key_id).await;
    assert_eq!(client.primary_region(&mrk.key_id).await.unwrap(), A);
    let single = client.create_key(pb::CreateKeyRequest::default()).await.unwrap();

    // Crypto goes home: even a key ARN naming B is sent to A, rewritten.
    let arn_in_b = mrk.arn.replace(&format!(":{A}:"), &format!(":{B}:"));
    let sealed = encrypt(&client, &arn_in_b, b"sealed while A was up").await;
    assert_eq!(region_of(&sealed.key_id), A, "{}", sealed.key_id);
    let single_sealed = encrypt(&client, &single.key_id, b"single-Region").await;

    // Management on the bare id goes to the primary (A); the replica keeps its own description.
    let update =
        pb::UpdateKeyDescriptionRequest { key_id: mrk.key_id.clone(), description: "primary's".into() };
    client.send(update).await.unwrap();
    assert_eq!(describe_in(&client, A, &mrk.key_id).await.unwrap().description, "primary's");
    assert_eq!(describe_in(&client, B, &mrk.key_id).await.unwrap().description, "");

    // Region A freezes.
    for id in a.live_ids() {
        a.node_mut(id).sigstop();
    }
    let failover_started = Instant::now();
    let opened = decrypt(&client, &sealed.ciphertext_blob, &CallOptions::default()).await.unwrap();
    let first_failover = failover_started.elapsed();
    assert_eq!(opened.plaintext, b"sealed while A was up");
    assert_eq!(region_of(&opened.key_id), B, "decrypted by the replica");

    // A's nodes are now suspect: B answers without waiting for them.
    let started = Instant::now();
    let fresh = encrypt(&client, &mrk.key_id, b"sealed while A was frozen").await;
    assert_eq!(region_of(&fresh.key_id), B);
    let data_key = pb::GenerateDataKeyRequest {
        key_id: mrk.arn.clone(),
        key_spec: pb::DataKeySpec::Aes256.into(),
        ..Default::default()
    };
    let data_key = client.generate_data_key(data_key).await.unwrap();
    assert_eq!((region_of(&data_key.key_id), data_key.plaintext.len()), (B, 32));
    let reopened = decrypt(&client, &fresh.ciphertext_blob, &CallOptions::default()).await.unwrap();
    assert_eq!(reopened.plaintext, b"sealed while A was frozen");
    let warm_failover = started.elapsed();
    assert!(warm_failover < Duration::from_secs(1), "suspect nodes were waited for again: {warm_failover:?}");

    // What only A can do fails: a single-Region key's ciphertext, and managing the primary.
    let short = CallOptions::default().timeout(Duration::from_secs(3));
    let err = decrypt(&client, &single_sealed.ciphertext_blob, &short).await.unwrap_err();
    assert!(err.endpoint().unwrap().contains(A), "{err}");
    let update =
        pb::UpdateKeyDescriptionRequest { key_id: mrk.key_id.clone(), description: "while frozen".into() };
    let err = client.send_with(update, &short).await.unwrap_err();
    assert!(err.endpoint().unwrap().contains(A), "management went to the primary: {err}");
    assert_eq!(describe_in(&client, B, &mrk.key_id).await.unwrap().description, "", "B was not touched");

    for id in a.nodes.keys().copied().collect::<Vec<_>>() {
        a.node_mut(id).sigcont();
    }
    println!(
        "region A frozen: first Decrypt answered by B after {first_failover:?}, then Encrypt + \
         GenerateDataKey + Decrypt in {warm_failover:?}; client {:?}; test took {:?}",
        client.stats(),
        test_start.elapsed()
    );
}
