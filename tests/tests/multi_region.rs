//! Multi-Region keys across three regions of real kmsd processes: A and B of three nodes, C of
//! one, each with its own root key, knowing the others from configuration, all on mutual TLS
//! with certificates from one CA (regions admit each other's node certificates only).
//!
//! Phases: replicate, decrypt everywhere, rotate; kill a leader on either side mid-replication;
//! cut region B off while A keeps working, then let its backlog arrive; finally lose region A
//! entirely, promote B by force, measure RPO and RTO, and bring A back as a replica.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, ClientIdentity, Cluster, binary, eventually, exception, lazy_channel_with};
use kms_proto::region::v1 as region_pb;
use kms_proto::region::v1::region_replication_client::RegionReplicationClient;
use kms_proto::v1 as pb;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const A: &str = "region-a";
const B: &str = "region-b";
const C: &str = "region-c";

/// Starts the three regions on mutual TLS, each configured with the other two's client
/// endpoints. Returns the CA's directory too (it lives as long as the returned TempDir).
async fn three_regions() -> (Cluster, Cluster, Cluster, tempfile::TempDir) {
    let pki = tempfile::tempdir().unwrap();
    let ca_dir = pki.path().join("ca");
    let made = std::process::Command::new(binary("kmsctl"))
        .args(["ca", "create", "--out-dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "kmsctl ca create: {}", String::from_utf8_lossy(&made.stderr));
    let mut regions = [Cluster::prepare(3, A), Cluster::prepare(3, B), Cluster::prepare(1, C)];
    for region in &mut regions {
        region.enable_tls(&ca_dir);
    }
    let endpoints: Vec<(String, Vec<String>)> =
        [A, B, C].iter().zip(&regions).map(|(name, r)| (name.to_string(), r.client_endpoints())).collect();
    for (i, region) in regions.iter_mut().enumerate() {
        for (j, (name, list)) in endpoints.iter().enumerate() {
            if i != j {
                let quoted: Vec<String> = list.iter().map(|e| format!("{e:?}")).collect();
                region.append_config(&format!("[regions.{name}]\nendpoints = [{}]", quoted.join(", ")));
            }
        }
    }
    for region in &mut regions {
        region.launch().await;
    }
    let [a, b, c] = regions;
    (a, b, c, pki)
}

/// Outbox entries and lag (seconds) that `region` owes `destination`, from `kmsctl cluster status`.
fn owed_to(region: &Cluster, destination: &str) -> (u64, f64) {
    let output = region.node(region.live_ids()[0]).kmsctl(&["cluster", "status"]);
    assert!(output.status.success(), "kmsctl cluster status: {}", String::from_utf8_lossy(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let destinations = status["Replication"]["Destinations"].as_array().unwrap();
    let entry = destinations.iter().find(|d| d["Region"] == destination).unwrap();
    (entry["OutboxEntries"].as_u64().unwrap(), entry["LagSeconds"].as_str().unwrap().parse().unwrap())
}

/// A push to `to` with `caller`'s identity claiming to come from `source`.
async fn push_as(caller: &ClientIdentity, to: &Cluster, source: &str) -> tonic::Status {
    let channel = lazy_channel_with(&to.node(1).endpoint(), Duration::from_secs(5), Some(caller));
    let request = region_pb::PushRequest {
        source_region: source.into(),
        destination_region: A.into(),
        ..Default::default()
    };
    RegionReplicationClient::new(channel).push(request).await.unwrap_err()
}

/// A client of some live node of `region`.
fn client(region: &Cluster) -> Client {
    let id = region.live_ids()[0];
    region.node(id).client_with_timeout(Duration::from_secs(5))
}

async fn describe(mut client: Client, key_id: &str) -> Result<pb::KeyMetadata, tonic::Status> {
    let request = pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() };
    Ok(client.describe_key(request).await?.into_inner().key_metadata.unwrap())
}

/// The shared properties of a key as one region shows them: current material, rotated
/// materials in order, primary region and replica regions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shared {
    current_material: String,
    rotations: Vec<String>,
    primary: String,
    replicas: BTreeSet<String>,
}

async fn shared(mut client: Client, key_id: &str) -> Option<Shared> {
    let metadata = describe(client.clone(), key_id).await.ok()?;
    let config = metadata.multi_region_configuration?;
    let request =
        pb::ListKeyRotationsRequest { key_id: key_id.into(), limit: Some(1000), ..Default::default() };
    let rotations = client.list_key_rotations(request).await.ok()?.into_inner().rotations;
    Some(Shared {
        current_material: metadata.current_key_material_id,
        rotations: rotations.into_iter().map(|r| r.key_material_id).collect(),
        primary: config.primary_key?.region,
        replicas: config.replica_keys.into_iter().map(|k| k.region).collect(),
    })
}

/// Waits until every region shows the same shared properties for every key; returns them.
async fn converged(regions: &[&Cluster], keys: &[String], timeout: Duration) -> Vec<Shared> {
    let mut settled = Vec::new();
    for key_id in keys {
        let what = format!("the shared properties of {key_id} to converge");
        settled.push(
            eventually(&what, timeout, || async {
                let mut seen = Vec::new();
                for region in regions {
                    seen.push(shared(client(region), key_id).await?);
                }
                seen.windows(2).all(|w| w[0] == w[1]).then(|| seen[0].clone())
            })
            .await,
        );
    }
    settled
}

async fn create_mrk(client: &mut Client) -> String {
    let request = pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() };
    client.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id
}

async fn replicate(client: &mut Client, key_id: &str, region: &str) -> pb::ReplicateKeyResponse {
    let request = pb::ReplicateKeyRequest {
        key_id: key_id.into(),
        replica_region: region.into(),
        description: Some(format!("replica in {region}")),
        tags: vec![pb::Tag { tag_key: "region".into(), tag_value: region.into() }],
        ..Default::default()
    };
    client.replicate_key(request).await.unwrap().into_inner()
}

async fn encrypt(client: &mut Client, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    client.encrypt(request).await.unwrap().into_inner().ciphertext_blob
}

async fn decrypt(mut client: Client, blob: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    Ok(client.decrypt(request).await?.into_inner().plaintext)
}

async fn rotate(mut client: Client, key_id: &str) -> Result<(), tonic::Status> {
    client.rotate_key_on_demand(pb::RotateKeyOnDemandRequest { key_id: key_id.into() }).await.map(|_| ())
}

async fn decrypts_everywhere(regions: &[&Cluster], ciphertexts: &[(Vec<u8>, Vec<u8>)]) {
    for region in regions {
        for id in region.live_ids() {
            for (plaintext, blob) in ciphertexts {
                let client = region.node(id).client_with_timeout(Duration::from_secs(5));
                assert_eq!(&decrypt(client, blob).await.unwrap(), plaintext, "node {id}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_region_keys_replicate_survive_faults_and_fail_over() {
    let test_start = Instant::now();
    let (mut a, mut b, c, pki) = three_regions().await;
    let mut in_a = client(&a);
    let slow = Duration::from_secs(30);

    // Replicate: the replica starts Creating, then shows up Enabled with its own properties.
    let mut keys = Vec::new();
    for _ in 0..3 {
        let key_id = create_mrk(&mut in_a).await;
        assert!(key_id.starts_with("mrk-") && key_id.len() == 36, "{key_id}");
        let answer = replicate(&mut in_a, &key_id, B).await;
        let metadata = answer.replica_key_metadata.unwrap();
        assert_eq!(metadata.key_state, pb::KeyState::Creating as i32);
        assert!(metadata.arn.contains(":region-b:"), "{}", metadata.arn);
        // B holds the replica as soon as ReplicateKey answers: Creating until the material
        // arrives (or already Enabled).
        let state = describe(client(&b), &key_id).await.unwrap().key_state;
        let settling = [pb::KeyState::Creating as i32, pb::KeyState::Enabled as i32];
        assert!(settling.contains(&state), "replica state {state}");
        replicate(&mut in_a, &key_id, C).await;
        keys.push(key_id);
    }
    let key_id = keys[0].clone();
    let again =
        pb::ReplicateKeyRequest { key_id: key_id.clone(), replica_region: B.into(), ..Default::default() };
    let err = client(&a).replicate_key(again).await.unwrap_err();
    assert_eq!(exception(&err), "AlreadyExistsException");
    let replica = eventually("the replica in B", slow, || async {
        describe(client(&b), &key_id).await.ok().filter(|m| m.key_state == pb::KeyState::Enabled as i32)
    })
    .await;
    assert_eq!(replica.description, "replica in region-b");
    let config = replica.multi_region_configuration.unwrap();
    assert_eq!(config.multi_region_key_type, pb::MultiRegionKeyType::Replica as i32);
    assert_eq!(config.primary_key.unwrap().region, A);
    let settled = converged(&[&a, &b, &c], &keys, slow).await;
    assert_eq!(settled[0].replicas, BTreeSet::from([B.to_string(), C.to_string()]));

    // Only a region's own nodes may deliver its updates: B's node identity claiming to be C is
    // refused, and so is an ordinary client certificate.
    let b_node = b.client_identity().unwrap();
    assert_eq!(push_as(&b_node, &a, C).await.code(), tonic::Code::PermissionDenied);
    let made = std::process::Command::new(binary("kmsctl"))
        .args(["ca", "issue", "--ca-dir"])
        .arg(pki.path().join("ca"))
        .args(["--out-dir"])
        .arg(pki.path())
        .args(["--name", "app", "--uri", "spiffe://test/app"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let app = ClientIdentity {
        cert: pki.path().join("app.crt"),
        key: pki.path().join("app.key"),
        ..b_node.clone()
    };
    assert_eq!(push_as(&app, &a, B).await.code(), tonic::Code::PermissionDenied);

    // A ciphertext from A decrypts in B and C; a rotation in A reaches them; replicas refuse it.
    let mut ciphertexts =
        vec![(b"before rotation".to_vec(), encrypt(&mut in_a, &key_id, b"before rotation").await)];
    rotate(client(&a), &key_id).await.unwrap();
    ciphertexts.push((b"after rotation".to_vec(), encrypt(&mut in_a, &key_id, b"after rotation").await));
    let settled = converged(&[&a, &b, &c], &keys, slow).await;
    assert_eq!(settled[0].rotations.len(), 1);
    decrypts_everywhere(&[&a, &b, &c], &ciphertexts).await;
    let refused = rotate(client(&b), &key_id).await.unwrap_err();
    assert_eq!(exception(&refused), "UnsupportedOperationException");
    // Per-region properties stay each region's own.
    client(&b).disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    assert_eq!(describe(client(&a), &key_id).await.unwrap().key_state, pb::KeyState::Enabled as i32);
    client(&b).enable_key(pb::EnableKeyRequest { key_id: key_id.clone() }).await.unwrap();

    // The leaders of the source and of the destination die while updates are in flight.
    let phase = Instant::now();
    for key in &keys {
        rotate(client(&a), key).await.unwrap();
    }
    let a_leader = a.wait_leader(slow).await;
    let b_leader = b.wait_leader(slow).await;
    a.node_mut(a_leader).kill();
    b.node_mut(b_leader).kill();
    let mut in_a = client(&a);
    ciphertexts.push((b"leaders killed".to_vec(), encrypt(&mut in_a, &key_id, b"leaders killed").await));
    let settled = converged(&[&a, &b, &c], &keys, slow).await;
    let rotations: Vec<usize> = settled.iter().map(|s| s.rotations.len()).collect();
    assert_eq!(rotations, [2, 1, 1], "each rotation applied exactly once");
    println!("leaders of both sides killed: converged after {:?}", phase.elapsed());
    a.restart(a_leader).await;
    b.restart(b_leader).await;

    // Region B cut off (every node stopped) while A keeps rotating and encrypting; on its
    // return the backlog arrives in order.
    let phase = Instant::now();
    for id in b.live_ids() {
        b.node_mut(id).sigstop();
    }
    for round in 0..3 {
        for key in &keys {
            rotate(client(&a), key).await.unwrap();
        }
        let text = format!("while B was away {round}").into_bytes();
        ciphertexts.push((text.clone(), encrypt(&mut in_a, &key_id, &text).await));
        // Long enough for pushes to B to time out and be retried.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let in_c = converged(&[&a, &c], &keys, slow).await;
    let owed = owed_to(&a, B);
    assert!(owed.0 >= 1 && owed.1 > 0.0, "kmsctl cluster status shows the backlog for B: {owed:?}");
    for id in b.nodes.keys().copied().collect::<Vec<_>>() {
        if b.node(id).is_stopped() {
            b.node_mut(id).sigcont();
        }
    }
    let returned_at = Instant::now();
    let settled = converged(&[&a, &b, &c], &keys, slow).await;
    assert_eq!(settled, in_c, "B caught up with exactly what A and C hold");
    eventually("A's outbox for B to be trimmed", slow, || async { (owed_to(&a, B).0 == 0).then_some(()) })
        .await;
    assert_eq!(settled[0].rotations.len(), 5);
    decrypts_everywhere(&[&a, &b, &c], &ciphertexts).await;
    println!(
        "region B cut off for {:?} (3 rounds of rotations): caught up {:?} after it returned",
        returned_at - phase,
        returned_at.elapsed()
    );

    // Disaster: region A is lost. Updates A acknowledged but had not delivered are the RPO.
    let unreplicated = keys[1].clone();
    rotate(client(&a), &unreplicated).await.unwrap();
    let lost = shared(client(&a), &unreplicated).await.unwrap();
    for id in a.live_ids() {
        a.node_mut(id).kill();
    }
    let b_view = shared(client(&b), &unreplicated).await.unwrap();
    let rpo = lost.rotations.len().saturating_sub(b_view.rotations.len());
    println!("RPO: {rpo} of 1 rotation made just before region A was lost had not reached B");

    let promote_at = Instant::now();
    for key in &keys {
        let request = pb::UpdatePrimaryRegionRequest {
            key_id: key.clone(),
            primary_region: B.into(),
            force: Some(true),
        };
        client(&b).update_primary_region(request).await.unwrap();
    }
    rotate(client(&b), &key_id).await.unwrap();
    let rto = promote_at.elapsed();
    println!("RTO: {rto:?} from the promotion command to the first rotation in B");
    let mut in_b = client(&b);
    ciphertexts.push((b"after promotion".to_vec(), encrypt(&mut in_b, &key_id, b"after promotion").await));
    let settled = converged(&[&b, &c], &keys, slow).await;
    assert!(settled.iter().all(|s| s.primary == B));
    decrypts_everywhere(&[&b, &c], &ciphertexts).await;

    // Region A returns: it learns it is no longer primary and converges.
    for id in a.nodes.keys().copied().collect::<Vec<_>>() {
        a.restart(id).await;
    }
    let settled = converged(&[&a, &b, &c], &keys, Duration::from_secs(60)).await;
    assert!(settled.iter().all(|s| s.primary == B && s.replicas.contains(A)));
    assert_eq!(exception(&rotate(client(&a), &key_id).await.unwrap_err()), "UnsupportedOperationException");
    decrypts_everywhere(&[&a, &b, &c], &ciphertexts).await;
    println!("multi-region test done in {:?}", test_start.elapsed());
}
