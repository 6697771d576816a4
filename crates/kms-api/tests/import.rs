//! Imported key material over time, against a real single-node region with a clock the test
//! moves: material with a ValidTo is deleted by the maintenance loop when it passes (the key goes
//! to PendingImport, re-importing the same material restores it), and import tokens expire after
//! 24 hours. The client side wraps with kms-crypto's public functions here; the e2e test
//! (tests/tests/import.rs) wraps with OpenSSL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::{Caller, Kms};
use kms_core::ErrorKind;
use kms_core::key::DAY_MILLIS;
use kms_crypto::import::{WrappingAlgorithm, wrap_key_material};
use kms_proto::v1 as pb;
use std::sync::atomic::Ordering;

async fn state(kms: &Kms, key_id: &str) -> pb::KeyMetadata {
    let req = pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() };
    kms.describe_key(&Caller::anonymous(), req).await.unwrap().key_metadata.unwrap()
}

#[tokio::test]
async fn imported_material_expires_and_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let start = 1_700_000_000_000;
    let clock = ManualClock::starting_at(start);
    let kms = single_node(dir.path(), clock.clone()).await;
    let caller = Caller::anonymous();

    let create = pb::CreateKeyRequest { origin: pb::OriginType::External.into(), ..Default::default() };
    let key_id = kms.create_key(&caller, create).await.unwrap().key_metadata.unwrap().key_id;
    let meta = state(&kms, &key_id).await;
    assert_eq!(meta.key_state(), pb::KeyState::PendingImport);
    assert_eq!(meta.origin(), pb::OriginType::External);
    let encrypt =
        pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    let err = kms.encrypt(&caller, encrypt.clone()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::KMSInvalidStateException, &*format!("{key_id} is pending import."))
    );

    let params = pb::GetParametersForImportRequest {
        key_id: key_id.clone(),
        wrapping_algorithm: pb::AlgorithmSpec::RsaesOaepSha256.into(),
        wrapping_key_spec: pb::WrappingKeySpec::Rsa2048.into(),
    };
    let params = kms.get_parameters_for_import(&caller, params).await.unwrap();
    assert_eq!(params.parameters_valid_to.unwrap().seconds as u64, (start + DAY_MILLIS) / 1000);
    let material = [0x42u8; 32];
    let wrapped =
        wrap_key_material(WrappingAlgorithm::RsaesOaepSha256, &params.public_key, &material).unwrap();
    let import = |valid_to: Option<u64>| pb::ImportKeyMaterialRequest {
        key_id: key_id.clone(),
        import_token: params.import_token.clone(),
        encrypted_key_material: wrapped.clone(),
        expiration_model: if valid_to.is_some() {
            pb::ExpirationModelType::KeyMaterialExpires.into()
        } else {
            pb::ExpirationModelType::KeyMaterialDoesNotExpire.into()
        },
        valid_to: valid_to.map(|ms| prost_types::Timestamp { seconds: (ms / 1000) as i64, nanos: 0 }),
        ..Default::default()
    };
    kms.import_key_material(&caller, import(Some(start + 2 * 3_600_000))).await.unwrap();
    let meta = state(&kms, &key_id).await;
    assert_eq!(meta.key_state(), pb::KeyState::Enabled);
    assert_eq!(meta.expiration_model(), pb::ExpirationModelType::KeyMaterialExpires);
    assert_eq!(meta.valid_to.unwrap().seconds as u64, (start + 2 * 3_600_000) / 1000);
    let ciphertext = kms.encrypt(&caller, encrypt.clone()).await.unwrap().ciphertext_blob;

    // One hour on: nothing expires. Two hours on: the material goes, the key waits for import.
    clock.0.fetch_add(3_600_000, Ordering::SeqCst);
    kms.run_maintenance().await;
    assert_eq!(state(&kms, &key_id).await.key_state(), pb::KeyState::Enabled);
    clock.0.fetch_add(3_600_000, Ordering::SeqCst);
    kms.run_maintenance().await;
    let meta = state(&kms, &key_id).await;
    assert_eq!(meta.key_state(), pb::KeyState::PendingImport);
    assert_eq!((meta.valid_to, meta.expiration_model), (None, 0));
    let decrypt = pb::DecryptRequest { ciphertext_blob: ciphertext, ..Default::default() };
    let err = kms.decrypt(&caller, decrypt.clone()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);

    // The same token (still valid) and material, now without expiry: old ciphertext decrypts.
    kms.import_key_material(&caller, import(None)).await.unwrap();
    assert_eq!(kms.decrypt(&caller, decrypt).await.unwrap().plaintext, b"x");
    let meta = state(&kms, &key_id).await;
    assert_eq!(meta.expiration_model(), pb::ExpirationModelType::KeyMaterialDoesNotExpire);

    // 24 hours after issue the token has expired.
    clock.0.store(start + DAY_MILLIS, Ordering::SeqCst);
    let err = kms.import_key_material(&caller, import(None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ExpiredImportTokenException);
    kms.run_maintenance().await;
    let err = kms.import_key_material(&caller, import(None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ExpiredImportTokenException, "also once the parameters are purged");
    assert_eq!(
        state(&kms, &key_id).await.key_state(),
        pb::KeyState::Enabled,
        "material without expiry stays"
    );

    // Rotation of an EXTERNAL key is refused.
    let rotate = pb::RotateKeyOnDemandRequest { key_id: key_id.clone() };
    assert_eq!(
        kms.rotate_key_on_demand(&caller, rotate).await.unwrap_err().kind,
        ErrorKind::UnsupportedOperationException
    );
    let enable = pb::EnableKeyRotationRequest { key_id: key_id.clone(), rotation_period_in_days: None };
    assert_eq!(
        kms.enable_key_rotation(&caller, enable).await.unwrap_err().kind,
        ErrorKind::UnsupportedOperationException
    );
}
