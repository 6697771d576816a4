//! Service keys (AWS managed keys) against a real single-node region: created once on first use
//! even by concurrent callers, visible to users, closed to management and to other principals,
//! usable by their service, rotated yearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::kubernetes::{KubernetesPlugin, SERVICE_KEY};
use kms_api::{Caller, Kms};
use kms_core::key::KeyRecord;
use kms_core::{ErrorKind, KmsResult};
use kms_proto::k8s_kms_v2 as k8s;
use kms_proto::k8s_kms_v2::key_management_service_server::KeyManagementService;
use kms_proto::v1 as pb;
use std::sync::Arc;

const ALIAS: &str = "alias/aws/kubernetes";

async fn start() -> (tempfile::TempDir, Arc<ManualClock>, Kms) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let kms = single_node(dir.path(), clock.clone()).await;
    (dir, clock, kms)
}

fn kind<T: std::fmt::Debug>(result: KmsResult<T>) -> ErrorKind {
    result.expect_err("the operation must be refused").kind
}

fn user() -> Caller {
    Caller::new("alice")
}

fn service() -> Caller {
    Caller::new("kubernetes")
}

/// Everything a user can see of a key, to check that refused operations changed nothing.
async fn snapshot(kms: &Kms, key_id: &str) -> String {
    let caller = user();
    let id = || key_id.to_string();
    let metadata = kms
        .describe_key(&caller, pb::DescribeKeyRequest { key_id: id(), ..Default::default() })
        .await
        .unwrap();
    let policy = kms
        .get_key_policy(&caller, pb::GetKeyPolicyRequest { key_id: id(), policy_name: None })
        .await
        .unwrap();
    let rotation =
        kms.get_key_rotation_status(&caller, pb::GetKeyRotationStatusRequest { key_id: id() }).await.unwrap();
    let tags = kms
        .list_resource_tags(&caller, pb::ListResourceTagsRequest { key_id: id(), ..Default::default() })
        .await
        .unwrap();
    let aliases = kms
        .list_aliases(&caller, pb::ListAliasesRequest { key_id: Some(id()), ..Default::default() })
        .await
        .unwrap();
    format!("{metadata:?}\n{policy:?}\n{rotation:?}\n{tags:?}\n{aliases:?}")
}

async fn encrypt(kms: &Kms, caller: &Caller, key_id: &str) -> KmsResult<pb::EncryptResponse> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: b"seed".to_vec(), ..Default::default() };
    kms.encrypt(caller, request).await
}

#[tokio::test]
async fn first_use_creates_exactly_one_key_even_with_concurrent_callers() {
    let (_dir, _clock, kms) = start().await;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let kms = kms.clone();
            tokio::spawn(async move { kms.service_key("kubernetes").await })
        })
        .collect();
    let mut ids = Vec::new();
    for caller in callers {
        ids.push(caller.await.unwrap().unwrap().key_id.clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller got the same key: {ids:?}");
    let again: std::sync::Arc<KeyRecord> = kms.service_key("kubernetes").await.unwrap();
    assert_eq!(again.key_id, ids[0]);

    let keys = kms.list_keys(&user(), pb::ListKeysRequest::default()).await.unwrap().keys;
    assert_eq!(keys.len(), 1, "no second key was created: {keys:?}");
    let aliases = kms.list_aliases(&user(), pb::ListAliasesRequest::default()).await.unwrap().aliases;
    let names: Vec<_> = aliases.iter().map(|a| (a.alias_name.as_str(), a.target_key_id.as_str())).collect();
    assert_eq!(names, [(ALIAS, ids[0].as_str())]);
    assert_eq!(kind(kms.service_key("not/a/service").await), ErrorKind::ValidationException);
}

#[tokio::test]
async fn users_see_an_aws_managed_key_with_yearly_rotation() {
    let (_dir, _clock, kms) = start().await;
    let key = kms.service_key("kubernetes").await.unwrap();
    let described = kms
        .describe_key(&user(), pb::DescribeKeyRequest { key_id: ALIAS.into(), ..Default::default() })
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(described.key_id, key.key_id);
    assert_eq!(described.key_manager, i32::from(pb::KeyManagerType::Aws));
    assert_eq!(described.key_spec, i32::from(pb::KeySpec::SymmetricDefault));
    assert!(described.enabled);
    let rotation = kms
        .get_key_rotation_status(&user(), pb::GetKeyRotationStatusRequest { key_id: key.key_id.clone() })
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled);
    assert_eq!(rotation.rotation_period_in_days, Some(365));
}

#[tokio::test]
async fn management_is_refused_with_aws_exceptions_and_changes_nothing() {
    let (_dir, _clock, kms) = start().await;
    let key_id = kms.service_key("kubernetes").await.unwrap().key_id.clone();
    let before = snapshot(&kms, &key_id).await;
    let id = || key_id.clone();

    // Neither a user of the account nor the service itself manages the key.
    for caller in [user(), service()] {
        let c = &caller;
        let invalid_state = [
            kind(kms.disable_key(c, pb::DisableKeyRequest { key_id: id() }).await),
            kind(kms.enable_key(c, pb::EnableKeyRequest { key_id: id() }).await),
            kind(
                kms.schedule_key_deletion(
                    c,
                    pb::ScheduleKeyDeletionRequest { key_id: id(), pending_window_in_days: Some(7) },
                )
                .await,
            ),
            kind(kms.cancel_key_deletion(c, pb::CancelKeyDeletionRequest { key_id: id() }).await),
            kind(
                kms.update_key_description(
                    c,
                    pb::UpdateKeyDescriptionRequest { key_id: id(), description: "mine".into() },
                )
                .await,
            ),
            kind(
                kms.tag_resource(
                    c,
                    pb::TagResourceRequest {
                        key_id: id(),
                        tags: vec![pb::Tag { tag_key: "team".into(), tag_value: "a".into() }],
                    },
                )
                .await,
            ),
            kind(
                kms.untag_resource(
                    c,
                    pb::UntagResourceRequest { key_id: id(), tag_keys: vec!["team".into()] },
                )
                .await,
            ),
            kind(
                kms.create_alias(
                    c,
                    pb::CreateAliasRequest { alias_name: "alias/mine".into(), target_key_id: id() },
                )
                .await,
            ),
        ];
        assert_eq!(invalid_state, [ErrorKind::KMSInvalidStateException; 8], "{}", caller.principal);

        let unsupported = [
            kind(
                kms.put_key_policy(
                    c,
                    pb::PutKeyPolicyRequest {
                        key_id: id(),
                        policy: kms_core::policy::default_policy(&common::scope()),
                        bypass_policy_lockout_safety_check: Some(true),
                        ..Default::default()
                    },
                )
                .await,
            ),
            kind(
                kms.enable_key_rotation(
                    c,
                    pb::EnableKeyRotationRequest { key_id: id(), rotation_period_in_days: Some(90) },
                )
                .await,
            ),
            kind(kms.disable_key_rotation(c, pb::DisableKeyRotationRequest { key_id: id() }).await),
            kind(kms.rotate_key_on_demand(c, pb::RotateKeyOnDemandRequest { key_id: id() }).await),
        ];
        assert_eq!(unsupported, [ErrorKind::UnsupportedOperationException; 4], "{}", caller.principal);

        // The reserved alias can be neither made nor removed by anyone.
        let reserved = pb::CreateAliasRequest { alias_name: "alias/aws/mine".into(), target_key_id: id() };
        assert_eq!(kind(kms.create_alias(c, reserved).await), ErrorKind::InvalidAliasNameException);
        let delete = pb::DeleteAliasRequest { alias_name: ALIAS.into() };
        assert_eq!(kind(kms.delete_alias(c, delete).await), ErrorKind::InvalidAliasNameException);
    }

    // An alias of a customer key cannot be moved onto it either.
    let customer =
        kms.create_key(&user(), pb::CreateKeyRequest::default()).await.unwrap().key_metadata.unwrap();
    let alias = pb::CreateAliasRequest { alias_name: "alias/app".into(), target_key_id: customer.key_id };
    kms.create_alias(&user(), alias).await.unwrap();
    let update = pb::UpdateAliasRequest { alias_name: "alias/app".into(), target_key_id: id() };
    assert_eq!(kind(kms.update_alias(&user(), update).await), ErrorKind::KMSInvalidStateException);

    // Grants: only the service may create them.
    let grant = |grantee: &str| pb::CreateGrantRequest {
        key_id: id(),
        grantee_principal: Some(grantee.into()),
        operations: vec![pb::GrantOperation::Decrypt.into()],
        ..Default::default()
    };
    assert_eq!(kind(kms.create_grant(&user(), grant("alice")).await), ErrorKind::AccessDeniedException);

    assert_eq!(snapshot(&kms, &key_id).await, before, "refused operations changed the key");
    kms.create_grant(&service(), grant("bob")).await.unwrap();
}

#[tokio::test]
async fn only_the_service_principal_uses_the_key() {
    let (_dir, _clock, kms) = start().await;
    kms.service_key("kubernetes").await.unwrap();

    assert_eq!(kind(encrypt(&kms, &user(), ALIAS).await), ErrorKind::AccessDeniedException);
    let generate =
        pb::GenerateDataKeyRequest { key_id: ALIAS.into(), number_of_bytes: Some(32), ..Default::default() };
    assert_eq!(kind(kms.generate_data_key(&user(), generate).await), ErrorKind::AccessDeniedException);

    let sealed = encrypt(&kms, &service(), ALIAS).await.unwrap();
    let decrypt = |caller: Caller| {
        let kms = kms.clone();
        let blob = sealed.ciphertext_blob.clone();
        async move {
            kms.decrypt(&caller, pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await
        }
    };
    assert_eq!(decrypt(service()).await.unwrap().plaintext, b"seed");
    assert_eq!(kind(decrypt(user()).await), ErrorKind::AccessDeniedException);
}

#[tokio::test]
async fn the_key_rotates_automatically_after_a_year() {
    let (_dir, clock, kms) = start().await;
    let key = kms.service_key("kubernetes").await.unwrap();
    clock.advance_days(364);
    assert_eq!(kms.run_maintenance().await.1, 0);
    clock.advance_days(1);
    assert_eq!(kms.run_maintenance().await.1, 1, "rotated once, after 365 days");
    let rotated = kms.service_key("kubernetes").await.unwrap();
    assert_eq!((rotated.key_id.clone(), rotated.materials.len()), (key.key_id.clone(), 2));
}

#[tokio::test]
async fn registered_services_get_their_key_on_first_use() {
    let (_dir, _clock, kms) = start().await;
    let kms = kms.with_services(["backup".to_string()]).unwrap();
    let backup = Caller::new("backup");
    let sealed = encrypt(&kms, &backup, "alias/aws/backup").await.unwrap();
    let key = kms.service_key("backup").await.unwrap();
    assert!(sealed.key_id.ends_with(&key.key_id));
    assert!(key.is_aws_managed());

    // Not registered, or not its own service: the alias is just missing.
    assert_eq!(
        kind(encrypt(&kms, &Caller::new("other"), "alias/aws/other").await),
        ErrorKind::NotFoundException
    );
    assert_eq!(kind(encrypt(&kms, &backup, "alias/aws/kubernetes").await), ErrorKind::NotFoundException);
    assert!(kms.with_services(["no/slashes".to_string()]).is_err());
}

#[tokio::test]
async fn the_kubernetes_plugin_uses_its_service_key_by_default() {
    let (_dir, _clock, kms) = start().await;
    let plugin = KubernetesPlugin::new(kms.clone(), SERVICE_KEY);
    let status = plugin.status(tonic::Request::new(k8s::StatusRequest {})).await.unwrap().into_inner();
    assert_eq!(status.healthz, "ok");
    let key = kms.service_key("kubernetes").await.unwrap();
    assert!(key.is_aws_managed());
    assert_eq!(
        status.key_id,
        format!("{}/v0", kms_core::ids::RegionScope::key_arn(&common::scope(), &key.key_id))
    );
    let sealed = plugin
        .encrypt(tonic::Request::new(k8s::EncryptRequest { plaintext: vec![7; 32], uid: "u".into() }))
        .await
        .unwrap()
        .into_inner();
    let opened = plugin
        .decrypt(tonic::Request::new(k8s::DecryptRequest {
            ciphertext: sealed.ciphertext,
            key_id: sealed.key_id,
            uid: "u".into(),
            annotations: Default::default(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.plaintext, vec![7; 32]);
}
