//! Keys over time, against a real single-node region (Raft + RocksDB in a temp dir) with a clock
//! the test moves forward: automatic rotation happens on schedule and old ciphertexts still
//! decrypt; keys are really deleted when their waiting period ends, with their aliases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::{Caller, Clock, Kms};
use kms_core::ErrorKind;
use kms_core::key::DAY_MILLIS;
use kms_proto::v1 as pb;

#[tokio::test]
async fn automatic_rotation_happens_on_schedule_and_old_ciphertexts_still_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let kms = single_node(dir.path(), clock.clone()).await;
    let caller = Caller::anonymous();

    let created = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap();
    let key_id = created.key_metadata.unwrap().key_id;
    let encrypt = |text: &str| pb::EncryptRequest {
        key_id: key_id.clone(),
        plaintext: text.as_bytes().to_vec(),
        ..Default::default()
    };
    let before = kms.encrypt(&caller, encrypt("before")).await.unwrap().ciphertext_blob;
    let enable = pb::EnableKeyRotationRequest { key_id: key_id.clone(), rotation_period_in_days: Some(90) };
    kms.enable_key_rotation(&caller, enable).await.unwrap();

    clock.advance_days(89);
    assert_eq!(kms.run_maintenance().await, (0, 0), "not due yet");
    clock.advance_days(1);
    assert_eq!(kms.run_maintenance().await, (0, 1), "due after exactly 90 days");
    assert_eq!(kms.run_maintenance().await, (0, 0), "rotated once, not again");
    let after = kms.encrypt(&caller, encrypt("after")).await.unwrap().ciphertext_blob;

    clock.advance_days(90);
    assert_eq!(kms.run_maintenance().await, (0, 1), "the next period rotates again");

    let list = pb::ListKeyRotationsRequest { key_id: key_id.clone(), ..Default::default() };
    let rotations = kms.list_key_rotations(&caller, list).await.unwrap().rotations;
    assert_eq!(rotations.len(), 2);
    assert!(rotations.iter().all(|r| r.rotation_type == i32::from(pb::RotationType::Automatic)));
    let status = pb::GetKeyRotationStatusRequest { key_id: key_id.clone() };
    let status = kms.get_key_rotation_status(&caller, status).await.unwrap();
    assert_eq!(status.next_rotation_date.unwrap().seconds as u64 * 1000, clock.now() + 90 * DAY_MILLIS);

    for (blob, text) in [(before, "before"), (after, "after")] {
        let request = pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() };
        let plaintext = kms.decrypt(&caller, request).await.unwrap().plaintext;
        assert_eq!(plaintext, text.as_bytes());
    }
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn keys_are_deleted_when_their_waiting_period_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let kms = single_node(dir.path(), clock.clone()).await;
    let caller = Caller::anonymous();

    let doomed = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap();
    let doomed = doomed.key_metadata.unwrap().key_id;
    let kept = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap();
    let kept = kept.key_metadata.unwrap().key_id;
    let alias = pb::CreateAliasRequest { alias_name: "alias/doomed".into(), target_key_id: doomed.clone() };
    kms.create_alias(&caller, alias).await.unwrap();

    let schedule = pb::ScheduleKeyDeletionRequest { key_id: doomed.clone(), pending_window_in_days: Some(7) };
    let scheduled = kms.schedule_key_deletion(&caller, schedule).await.unwrap();
    assert_eq!(scheduled.key_state, i32::from(pb::KeyState::PendingDeletion));
    assert_eq!(scheduled.deletion_date.unwrap().seconds as u64 * 1000, clock.now() + 7 * DAY_MILLIS);

    clock.advance_days(6);
    assert_eq!(kms.run_maintenance().await, (0, 0));
    let describe = |key_id: &str| pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() };
    kms.describe_key(&caller, describe(&doomed)).await.unwrap();

    clock.advance_days(1);
    assert_eq!(kms.run_maintenance().await, (1, 0));
    let err = kms.describe_key(&caller, describe(&doomed)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFoundException);
    let aliases = kms.list_aliases(&caller, pb::ListAliasesRequest::default()).await.unwrap().aliases;
    assert!(aliases.is_empty(), "the alias goes with its key");
    kms.describe_key(&caller, describe(&kept)).await.unwrap();

    // CancelKeyDeletion brings a key back Disabled.
    let schedule = pb::ScheduleKeyDeletionRequest { key_id: kept.clone(), pending_window_in_days: None };
    let scheduled = kms.schedule_key_deletion(&caller, schedule).await.unwrap();
    assert_eq!(scheduled.pending_window_in_days, Some(30));
    kms.cancel_key_deletion(&caller, pb::CancelKeyDeletionRequest { key_id: kept.clone() }).await.unwrap();
    let metadata = kms.describe_key(&caller, describe(&kept)).await.unwrap().key_metadata.unwrap();
    assert_eq!(metadata.key_state, i32::from(pb::KeyState::Disabled));
    clock.advance_days(31);
    assert_eq!(kms.run_maintenance().await, (0, 0));
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn key_last_usage_is_replicated_by_the_maintenance_tick() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let kms = single_node(dir.path(), clock.clone()).await;
    let caller = Caller::anonymous();
    let key = kms.create_key(&caller, pb::CreateKeyRequest::default()).await.unwrap();
    let key_id = key.key_metadata.unwrap().key_id;
    let request = pb::GenerateDataKeyRequest {
        key_id: key_id.clone(),
        number_of_bytes: Some(16),
        ..Default::default()
    };
    kms.generate_data_key(&caller, request).await.unwrap();
    kms.flush_key_use().await;
    // What was flushed is in the replicated state: a second service on the same region (as
    // another node would be) sees it without this node's memory.
    let other = Kms::with_clock(
        kms.region().clone(),
        kms_crypto::RootKey::generate().unwrap(),
        common::scope(),
        clock.clone(),
    );
    let usage = other.get_key_last_usage(&caller, pb::GetKeyLastUsageRequest { key_id }).await.unwrap();
    let last = usage.key_last_usage.unwrap();
    assert_eq!(last.operation, i32::from(pb::KeyLastUsageTrackingOperation::GenerateDataKey));
    assert_eq!(last.timestamp.unwrap().seconds as u64 * 1000, clock.now());
    kms.region().shutdown().await.unwrap();
}

/// Material and the decoded key record are cached between calls, but each call reads the key's
/// stored record: a disabled key refuses to encrypt or sign at once, and serves again once
/// enabled.
#[tokio::test]
async fn a_disabled_key_refuses_at_once_although_its_material_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let kms = single_node(dir.path(), ManualClock::starting_at(1_700_000_000_000)).await;
    let caller = Caller::anonymous();
    let create = |spec: pb::KeySpec, usage: pb::KeyUsage| pb::CreateKeyRequest {
        key_spec: spec.into(),
        key_usage: usage.into(),
        ..Default::default()
    };
    let aes = kms.create_key(&caller, create(pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt));
    let aes = aes.await.unwrap().key_metadata.unwrap().key_id;
    let ec = kms.create_key(&caller, create(pb::KeySpec::EccNistP256, pb::KeyUsage::SignVerify));
    let ec = ec.await.unwrap().key_metadata.unwrap().key_id;

    let encrypt =
        || pb::EncryptRequest { key_id: aes.clone(), plaintext: b"hi".to_vec(), ..Default::default() };
    let sign = || pb::SignRequest {
        key_id: ec.clone(),
        message: b"message".to_vec(),
        message_type: pb::MessageType::Raw.into(),
        signing_algorithm: pb::SigningAlgorithmSpec::EcdsaSha256.into(),
        ..Default::default()
    };
    let verify = |signature: Vec<u8>| pb::VerifyRequest {
        key_id: ec.clone(),
        message: b"message".to_vec(),
        message_type: pb::MessageType::Raw.into(),
        signing_algorithm: pb::SigningAlgorithmSpec::EcdsaSha256.into(),
        signature,
        ..Default::default()
    };
    // Twice each: the second call is served from the cache.
    for _ in 0..2 {
        kms.encrypt(&caller, encrypt()).await.unwrap();
        let signature = kms.sign(&caller, sign()).await.unwrap().signature;
        assert!(kms.verify(&caller, verify(signature)).await.unwrap().signature_valid);
    }

    for key_id in [&aes, &ec] {
        kms.disable_key(&caller, pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    }
    assert_eq!(kms.encrypt(&caller, encrypt()).await.unwrap_err().kind, ErrorKind::DisabledException);
    assert_eq!(kms.sign(&caller, sign()).await.unwrap_err().kind, ErrorKind::DisabledException);

    for key_id in [&aes, &ec] {
        kms.enable_key(&caller, pb::EnableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    }
    kms.encrypt(&caller, encrypt()).await.unwrap();
    let signature = kms.sign(&caller, sign()).await.unwrap().signature;
    assert!(kms.verify(&caller, verify(signature)).await.unwrap().signature_valid);
    kms.region().shutdown().await.unwrap();
}
