//! The data directory holds no plaintext key material and no plaintext of encrypted data.
//!
//! The test learns the raw key material the way only the node could (opening the stopped node's
//! state and unsealing with its root key), then scans every file of the data directory for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_core::command::KmsStateMachine;
use kms_core::state::Keys;
use kms_e2e::{Node, occurs_under};
use kms_proto::v1 as pb;
use kms_replication::{Region, RegionConfig};
use std::sync::Arc;

#[tokio::test]
async fn no_plaintext_key_material_or_data_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let mut node = Node::start(&data_dir).await;
    let mut client = node.client().await;
    let secret_plaintext = b"PLAINTEXT-CANARY-5b2f0c8e-never-on-disk".to_vec();
    for spec in [pb::KeySpec::SymmetricDefault, pb::KeySpec::SymmetricDefault] {
        let request = pb::CreateKeyRequest { key_spec: spec.into(), ..Default::default() };
        let key_id = client.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;
        let rotate = pb::RotateKeyOnDemandRequest { key_id: key_id.clone() };
        client.rotate_key_on_demand(rotate).await.unwrap();
        let request =
            pb::EncryptRequest { key_id, plaintext: secret_plaintext.clone(), ..Default::default() };
        client.encrypt(request).await.unwrap();
    }
    let request = pb::CreateKeyRequest {
        key_spec: pb::KeySpec::Hmac512.into(),
        key_usage: pb::KeyUsage::GenerateVerifyMac.into(),
        ..Default::default()
    };
    client.create_key(request).await.unwrap();
    drop(client);
    node.stop();

    // Unseal every material version with the node's own root key.
    let root_key = std::fs::read_to_string(data_dir.join("root.key")).unwrap();
    let root_bytes: Vec<u8> =
        (0..64).step_by(2).map(|i| u8::from_str_radix(&root_key[i..i + 2], 16).unwrap()).collect();
    let root = kms_crypto::RootKey::from_bytes(&root_bytes).unwrap();
    let raft_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = RegionConfig {
        node_id: 1,
        data_dir: data_dir.join("raft"),
        raft_listen: raft_port,
        raft_advertise: raft_port.to_string(),
        ..RegionConfig::default()
    };
    let region = Region::open(config, Arc::new(KmsStateMachine::new("e2e-1"))).await.unwrap();
    let keys = Keys::new(&region.reader()).keys_where(|_| true).unwrap();
    region.shutdown().await.unwrap();
    drop(region);
    let mut materials = Vec::new();
    for key in &keys {
        for material in &key.materials {
            let raw =
                kms_crypto::unseal(&root.clone().into(), &key.key_id, material.version, &material.sealed)
                    .unwrap();
            materials.push((key.key_id.clone(), material.version, raw.expose().to_vec()));
        }
    }
    assert_eq!(keys.len(), 3);
    assert_eq!(materials.len(), 5, "two rotated symmetric keys and one HMAC key");

    for (key_id, version, raw) in &materials {
        assert!(raw.len() >= 32);
        if let Some(file) = occurs_under(&data_dir, raw) {
            panic!("raw material of {key_id} v{version} found in {}", file.display());
        }
    }
    if let Some(file) = occurs_under(&data_dir, &secret_plaintext) {
        panic!("encrypted plaintext found in {}", file.display());
    }
    // The scan itself must be able to fail: the sealed bytes are on disk, somewhere.
    let sealed = &keys[0].materials[0].sealed;
    let encoded = base64_standard(sealed);
    assert!(
        occurs_under(&data_dir, sealed).is_some() || occurs_under(&data_dir, encoded.as_bytes()).is_some(),
        "the sealed material should be found on disk; is the scan looking in the right place?"
    );
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
