//! Root key rotation against a real single-node region: the same replicated state served first
//! under the old root key, then under a ring of the new and the old one (whose maintenance pass
//! re-seals), then under the new key alone. Covers what the end-to-end test
//! (tests/tests/root_key_rotation.rs) does not: imported material, whose fingerprint is
//! recomputed, and an import token issued before the switch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, leading_region, scope};
use kms_api::{Caller, Kms};
use kms_core::ErrorKind;
use kms_crypto::import::{WrappingAlgorithm, wrap_key_material};
use kms_crypto::{RootKey, RootKeyRing};
use kms_proto::v1 as pb;

const MATERIAL: [u8; 32] = [0x42; 32];

async fn create(kms: &Kms, origin: pb::OriginType) -> String {
    let request = pb::CreateKeyRequest { origin: origin.into(), ..Default::default() };
    kms.create_key(&Caller::anonymous(), request).await.unwrap().key_metadata.unwrap().key_id
}

async fn params(kms: &Kms, key_id: &str) -> pb::GetParametersForImportResponse {
    let request = pb::GetParametersForImportRequest {
        key_id: key_id.into(),
        wrapping_algorithm: pb::AlgorithmSpec::RsaesOaepSha256.into(),
        wrapping_key_spec: pb::WrappingKeySpec::Rsa2048.into(),
    };
    kms.get_parameters_for_import(&Caller::anonymous(), request).await.unwrap()
}

async fn import(
    kms: &Kms,
    key_id: &str,
    params: &pb::GetParametersForImportResponse,
    material: &[u8],
) -> Result<(), ErrorKind> {
    let wrapped =
        wrap_key_material(WrappingAlgorithm::RsaesOaepSha256, &params.public_key, material).unwrap();
    let request = pb::ImportKeyMaterialRequest {
        key_id: key_id.into(),
        import_token: params.import_token.clone(),
        encrypted_key_material: wrapped,
        expiration_model: pb::ExpirationModelType::KeyMaterialDoesNotExpire.into(),
        ..Default::default()
    };
    kms.import_key_material(&Caller::anonymous(), request).await.map(|_| ()).map_err(|e| e.kind)
}

async fn encrypt(kms: &Kms, key_id: &str) -> Vec<u8> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: b"kept".to_vec(), ..Default::default() };
    kms.encrypt(&Caller::anonymous(), request).await.unwrap().ciphertext_blob
}

async fn decrypt(kms: &Kms, blob: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    kms.decrypt(&Caller::anonymous(), request).await.map(|r| r.plaintext).map_err(|e| e.kind)
}

#[tokio::test]
async fn material_imports_and_tokens_survive_a_root_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let region = leading_region(dir.path()).await;
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let (old, new) = (RootKey::generate().unwrap(), RootKey::generate().unwrap());
    let serve = |ring: RootKeyRing| Kms::with_clock(region.clone(), ring, scope(), clock.clone());

    let before = serve(old.clone().into());
    let generated = create(&before, pb::OriginType::AwsKms).await;
    let imported = create(&before, pb::OriginType::External).await;
    import(&before, &imported, &params(&before, &imported).await, &MATERIAL).await.unwrap();
    let blobs = [encrypt(&before, &generated).await, encrypt(&before, &imported).await];
    // Parameters issued under the old root key, used after the switch.
    let pending = create(&before, pb::OriginType::External).await;
    let old_params = params(&before, &pending).await;

    let new_alone = serve(new.clone().into());
    for blob in &blobs {
        assert_eq!(
            decrypt(&new_alone, blob).await,
            Err(ErrorKind::KMSInternalException),
            "not yet re-sealed"
        );
    }

    let during = serve(RootKeyRing::new(new.clone(), vec![old.clone()]).unwrap());
    import(&during, &pending, &old_params, &MATERIAL).await.unwrap();
    during.run_maintenance().await;

    let after = serve(new.clone().into());
    for blob in &blobs {
        assert_eq!(decrypt(&after, blob).await.unwrap(), b"kept");
    }
    assert!(!encrypt(&after, &pending).await.is_empty());
    // The imported key's fingerprint moved to the new root key too: the same material imports
    // again after its deletion, other material does not.
    let delete = pb::DeleteImportedKeyMaterialRequest { key_id: imported.clone(), ..Default::default() };
    after.delete_imported_key_material(&Caller::anonymous(), delete).await.unwrap();
    let fresh = params(&after, &imported).await;
    assert_eq!(
        import(&after, &imported, &fresh, &[0x43; 32]).await,
        Err(ErrorKind::IncorrectKeyMaterialException)
    );
    import(&after, &imported, &fresh, &MATERIAL).await.unwrap();
    assert_eq!(decrypt(&after, &blobs[1]).await.unwrap(), b"kept");
}
