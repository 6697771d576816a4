//! The Kubernetes KMS v2 plugin service against a real single-node region: key_id follows
//! rotation, old seeds still open, the alias is created once, health is reported honestly, and
//! the plugin opens only what it sealed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::kubernetes::KubernetesPlugin;
use kms_api::{Caller, Kms};
use kms_proto::k8s_kms_v2 as k8s;
use kms_proto::k8s_kms_v2::key_management_service_server::KeyManagementService;
use kms_proto::v1 as pb;
use std::collections::HashMap;
use tonic::{Code, Request};

async fn status(plugin: &KubernetesPlugin) -> k8s::StatusResponse {
    plugin.status(Request::new(k8s::StatusRequest {})).await.unwrap().into_inner()
}

async fn encrypt(plugin: &KubernetesPlugin, plaintext: &[u8]) -> Result<k8s::EncryptResponse, tonic::Status> {
    let request = k8s::EncryptRequest { plaintext: plaintext.to_vec(), uid: "uid-1".into() };
    plugin.encrypt(Request::new(request)).await.map(tonic::Response::into_inner)
}

async fn decrypt(
    plugin: &KubernetesPlugin,
    ciphertext: &[u8],
    key_id: &str,
) -> Result<Vec<u8>, tonic::Status> {
    let request = k8s::DecryptRequest {
        ciphertext: ciphertext.to_vec(),
        key_id: key_id.into(),
        uid: "uid-2".into(),
        annotations: HashMap::new(),
    };
    plugin.decrypt(Request::new(request)).await.map(|r| r.into_inner().plaintext)
}

async fn start() -> (tempfile::TempDir, Kms) {
    let dir = tempfile::tempdir().unwrap();
    let kms = single_node(dir.path(), ManualClock::starting_at(1_700_000_000_000)).await;
    (dir, kms)
}

#[tokio::test]
async fn key_id_follows_rotation_and_every_seed_still_opens() {
    let (_dir, kms) = start().await;
    let plugin = KubernetesPlugin::new(kms.clone(), "alias/kubernetes");
    let caller = Caller::anonymous();

    let first = status(&plugin).await;
    assert_eq!((first.version.as_str(), first.healthz.as_str()), ("v2", "ok"));
    let key = kms
        .describe_key(
            &caller,
            pb::DescribeKeyRequest { key_id: "alias/kubernetes".into(), ..Default::default() },
        )
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(first.key_id, format!("{}/v0", key.arn));

    let seed = [7u8; 32];
    let sealed = encrypt(&plugin, &seed).await.unwrap();
    assert_eq!(sealed.key_id, first.key_id);
    assert!(sealed.ciphertext.len() <= 1024 && sealed.annotations.is_empty());
    assert_eq!(decrypt(&plugin, &sealed.ciphertext, &sealed.key_id).await.unwrap(), seed);

    kms.rotate_key_on_demand(&caller, pb::RotateKeyOnDemandRequest { key_id: key.key_id.clone() })
        .await
        .unwrap();
    let second = status(&plugin).await;
    assert_eq!(second.key_id, format!("{}/v1", key.arn));
    let resealed = encrypt(&plugin, &seed).await.unwrap();
    assert_eq!(resealed.key_id, second.key_id);
    assert_eq!(decrypt(&plugin, &sealed.ciphertext, &sealed.key_id).await.unwrap(), seed, "old key_id");
    assert_eq!(decrypt(&plugin, &resealed.ciphertext, &resealed.key_id).await.unwrap(), seed);
    let swapped = decrypt(&plugin, &sealed.ciphertext, &resealed.key_id).await.unwrap_err();
    assert_eq!(swapped.code(), Code::InvalidArgument, "{swapped:?}");

    // A second plugin (another node, a restart) finds the alias and creates nothing.
    let again = KubernetesPlugin::new(kms.clone(), "alias/kubernetes");
    assert_eq!(status(&again).await.key_id, second.key_id);
    let keys = kms.list_keys(&caller, pb::ListKeysRequest::default()).await.unwrap();
    assert_eq!(keys.keys.len(), 1);
}

#[tokio::test]
async fn health_is_honest_and_nothing_is_created_for_a_key_arn() {
    let (_dir, kms) = start().await;
    let caller = Caller::anonymous();
    let missing = "arn:aws:kms:test-1:111122223333:key/00000000-0000-4000-8000-000000000000";
    let plugin = KubernetesPlugin::new(kms.clone(), missing);
    let unhealthy = status(&plugin).await;
    assert_eq!(unhealthy.version, "v2");
    assert!(unhealthy.healthz.contains("NotFoundException"), "{}", unhealthy.healthz);
    assert!(unhealthy.key_id.is_empty());
    assert!(kms.list_keys(&caller, pb::ListKeysRequest::default()).await.unwrap().keys.is_empty());

    let key = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap().key_metadata.unwrap();
    let plugin = KubernetesPlugin::new(kms.clone(), key.arn.clone());
    assert_eq!(status(&plugin).await.healthz, "ok");
    kms.disable_key(&caller, pb::DisableKeyRequest { key_id: key.key_id.clone() }).await.unwrap();
    let disabled = status(&plugin).await;
    assert!(disabled.healthz.contains("DisabledException"), "{}", disabled.healthz);
    let refused = encrypt(&plugin, &[1; 32]).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().starts_with(&format!("Encrypt with {}: DisabledException", key.arn)),
        "{refused:?}"
    );
    kms.enable_key(&caller, pb::EnableKeyRequest { key_id: key.key_id }).await.unwrap();
    assert_eq!(status(&plugin).await.healthz, "ok");
}

#[tokio::test]
async fn it_opens_only_what_it_sealed_and_enforces_the_limits() {
    let (_dir, kms) = start().await;
    let caller = Caller::anonymous();
    let key = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap().key_metadata.unwrap();
    let plugin = KubernetesPlugin::new(kms.clone(), key.key_id.clone());
    let key_id = status(&plugin).await.key_id;

    // Same key, ordinary Encrypt (no plugin encryption context): the plugin refuses it.
    let plain =
        pb::EncryptRequest { key_id: key.key_id.clone(), plaintext: vec![9; 32], ..Default::default() };
    let foreign = kms.encrypt(&caller, plain).await.unwrap().ciphertext_blob;
    assert_eq!(decrypt(&plugin, &foreign, &key_id).await.unwrap_err().code(), Code::InvalidArgument);
    // Another key's blob under this key_id: IncorrectKeyException.
    let other = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap().key_metadata.unwrap();
    let other_plugin = KubernetesPlugin::new(kms.clone(), other.key_id);
    let other_sealed = encrypt(&other_plugin, &[3; 32]).await.unwrap();
    let wrong_key = decrypt(&plugin, &other_sealed.ciphertext, &key_id).await.unwrap_err();
    assert_eq!(wrong_key.code(), Code::InvalidArgument);
    assert!(wrong_key.message().contains("IncorrectKeyException"), "{wrong_key:?}");

    assert_eq!(encrypt(&plugin, &[]).await.unwrap_err().code(), Code::InvalidArgument);
    let biggest = encrypt(&plugin, &[1; 954]).await.unwrap();
    assert_eq!(biggest.ciphertext.len(), 1024, "70 bytes of blob overhead");
    let too_big = encrypt(&plugin, &[1; 955]).await.unwrap_err();
    assert_eq!(too_big.code(), Code::InvalidArgument);
    assert!(too_big.message().contains("ciphertext is 1025 bytes"), "{too_big:?}");
    assert_eq!(encrypt(&plugin, &[1; 4096]).await.unwrap_err().code(), Code::InvalidArgument);

    let sealed = encrypt(&plugin, &[5; 32]).await.unwrap();
    let mut annotated = k8s::DecryptRequest {
        ciphertext: sealed.ciphertext.clone(),
        key_id: sealed.key_id.clone(),
        uid: "u".repeat(500),
        annotations: HashMap::from([("kms.example.io".to_string(), vec![0; 1000])]),
    };
    let opened = plugin.decrypt(Request::new(annotated.clone())).await.unwrap().into_inner();
    assert_eq!(opened.plaintext, [5; 32], "valid annotations and an overlong uid are accepted");
    annotated.annotations = HashMap::from([("Not_A_Domain".to_string(), Vec::new())]);
    assert_eq!(plugin.decrypt(Request::new(annotated)).await.unwrap_err().code(), Code::InvalidArgument);
    for bad_key_id in ["", "alias/kubernetes", &format!("{}/v", key.arn), &"x".repeat(1025)] {
        let refused = decrypt(&plugin, &sealed.ciphertext, bad_key_id).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad_key_id}");
    }
    assert_eq!(decrypt(&plugin, &[0; 1025], &key_id).await.unwrap_err().code(), Code::InvalidArgument);
}
