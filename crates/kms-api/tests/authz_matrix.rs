//! Authorization across every operation, against a real single-node region.
//!
//! The matrix: for each operation on a key, a caller the key policy does not name (bob) gets
//! AccessDeniedException and the replicated state is byte-for-byte unchanged; a caller the policy
//! allows (alice) succeeds; a caller with grants only (carol) succeeds exactly on the operations a
//! grant can allow. Around it: encryption-context conditions and constraints, explicit denies,
//! grant tokens, the grant lifecycle and the lockout safety check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::{Caller, Kms};
use kms_core::store::StateRead;
use kms_core::{ErrorKind, KmsResult};
use kms_crypto::import::{WrappingAlgorithm, wrap_key_material};
use kms_proto::v1 as pb;
use serde_json::{Value, json};
use std::collections::HashMap;

const ACCOUNT: &str = "111122223333";

fn arn(user: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{user}")
}

fn allow(user: &str, actions: Value) -> Value {
    json!({"Effect": "Allow", "Principal": {"AWS": arn(user)}, "Action": actions, "Resource": "*"})
}

fn policy(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// admin and alice may do everything; nobody else is named.
fn matrix_policy() -> String {
    policy(vec![allow("admin", json!("kms:*")), allow("alice", json!("kms:*"))])
}

fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn denied<T>(result: KmsResult<T>) -> bool {
    matches!(result, Err(err) if err.kind == ErrorKind::AccessDeniedException)
}

fn is_denied(result: &KmsResult<()>) -> bool {
    matches!(result, Err(err) if err.kind == ErrorKind::AccessDeniedException)
}

/// Everything in the replicated state.
fn snapshot(kms: &Kms) -> Vec<(Vec<u8>, Vec<u8>)> {
    kms.region().reader().scan(b"", &[0xff], usize::MAX).unwrap()
}

async fn start(dir: &std::path::Path) -> Kms {
    single_node(dir, ManualClock::starting_at(1_700_000_000_000)).await
}

async fn create_key(kms: &Kms, who: &Caller, request: pb::CreateKeyRequest) -> String {
    kms.create_key(who, request).await.unwrap().key_metadata.unwrap().key_id
}

fn key_request(spec: pb::KeySpec, usage: pb::KeyUsage, policy: Option<String>) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), policy, ..Default::default() }
}

async fn create_grant(kms: &Kms, who: &Caller, request: pb::CreateGrantRequest) -> pb::CreateGrantResponse {
    kms.create_grant(who, request).await.unwrap()
}

fn grant_request(key_id: &str, grantee: &str, operations: &[pb::GrantOperation]) -> pb::CreateGrantRequest {
    pb::CreateGrantRequest {
        key_id: key_id.into(),
        grantee_principal: Some(grantee.into()),
        operations: operations.iter().map(|op| i32::from(*op)).collect(),
        ..Default::default()
    }
}

/// The keys and artifacts the operations of the matrix work on, made by admin.
struct Fixture {
    sym: String,
    sym2: String,
    hmac: String,
    sign: String,
    agree: String,
    external: String,
    doomed: String,
    blob: Vec<u8>,
    mac: Vec<u8>,
    signature: Vec<u8>,
    peer_public_key: Vec<u8>,
    import_token: Vec<u8>,
    wrapped_material: Vec<u8>,
    revocable_grant: String,
    retirable_grant: String,
}

const MESSAGE: &[u8] = b"message";

impl Fixture {
    async fn new(kms: &Kms, admin: &Caller) -> Self {
        use pb::{KeySpec as S, KeyUsage as U};
        let p = || Some(matrix_policy());
        let sym = create_key(kms, admin, key_request(S::SymmetricDefault, U::EncryptDecrypt, p())).await;
        let sym2 = create_key(kms, admin, key_request(S::SymmetricDefault, U::EncryptDecrypt, p())).await;
        let hmac = create_key(kms, admin, key_request(S::Hmac256, U::GenerateVerifyMac, p())).await;
        let sign = create_key(kms, admin, key_request(S::EccNistP256, U::SignVerify, p())).await;
        let agree = create_key(kms, admin, key_request(S::EccNistP256, U::KeyAgreement, p())).await;
        let doomed = create_key(kms, admin, key_request(S::SymmetricDefault, U::EncryptDecrypt, p())).await;
        let external_request = pb::CreateKeyRequest {
            origin: pb::OriginType::External.into(),
            policy: p(),
            ..Default::default()
        };
        let external = create_key(kms, admin, external_request).await;

        let encrypt =
            pb::EncryptRequest { key_id: sym.clone(), plaintext: b"secret".to_vec(), ..Default::default() };
        let blob = kms.encrypt(admin, encrypt).await.unwrap().ciphertext_blob;
        let mac = pb::GenerateMacRequest {
            key_id: hmac.clone(),
            message: MESSAGE.to_vec(),
            mac_algorithm: pb::MacAlgorithmSpec::HmacSha256.into(),
            ..Default::default()
        };
        let mac = kms.generate_mac(admin, mac).await.unwrap().mac;
        let signature = kms.sign(admin, sign_request(&sign)).await.unwrap().signature;
        let public = pb::GetPublicKeyRequest { key_id: sign.clone(), ..Default::default() };
        let peer_public_key = kms.get_public_key(admin, public).await.unwrap().public_key;
        let params =
            kms.get_parameters_for_import(admin, import_parameters_request(&external)).await.unwrap();
        let wrapped_material =
            wrap_key_material(WrappingAlgorithm::RsaesOaepSha256, &params.public_key, &[0x42; 32]).unwrap();
        let revocable = grant_request(&sym, "nobody", &[pb::GrantOperation::Decrypt]);
        let revocable_grant = create_grant(kms, admin, revocable).await.grant_id;
        let retirable = pb::CreateGrantRequest {
            retiring_principal: Some("nobody".into()),
            ..grant_request(&sym, "nobody", &[pb::GrantOperation::Encrypt])
        };
        let retirable_grant = create_grant(kms, admin, retirable).await.grant_id;
        Self {
            sym,
            sym2,
            hmac,
            sign,
            agree,
            external,
            doomed,
            blob,
            mac,
            signature,
            peer_public_key,
            import_token: params.import_token,
            wrapped_material,
            revocable_grant,
            retirable_grant,
        }
    }
}

fn sign_request(key_id: &str) -> pb::SignRequest {
    pb::SignRequest {
        key_id: key_id.into(),
        message: MESSAGE.to_vec(),
        signing_algorithm: pb::SigningAlgorithmSpec::EcdsaSha256.into(),
        ..Default::default()
    }
}

fn import_parameters_request(key_id: &str) -> pb::GetParametersForImportRequest {
    pb::GetParametersForImportRequest {
        key_id: key_id.into(),
        wrapping_algorithm: pb::AlgorithmSpec::RsaesOaepSha256.into(),
        wrapping_key_spec: pb::WrappingKeySpec::Rsa2048.into(),
    }
}

/// Every operation on a key, in an order in which each succeeds for a permitted caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    DescribeKey,
    GetKeyPolicy,
    ListKeyPolicies,
    PutKeyPolicy,
    UpdateKeyDescription,
    TagResource,
    ListResourceTags,
    UntagResource,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
    EnableKeyRotation,
    GetKeyRotationStatus,
    DisableKeyRotation,
    RotateKeyOnDemand,
    ListKeyRotations,
    GetKeyLastUsage,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    Sign,
    Verify,
    GetPublicKey,
    DeriveSharedSecret,
    CreateGrant,
    ListGrants,
    RevokeGrant,
    RetireGrant,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    DisableKey,
    EnableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
}

const KEY_OPERATIONS: &[Op] = &[
    Op::DescribeKey,
    Op::GetKeyPolicy,
    Op::ListKeyPolicies,
    Op::PutKeyPolicy,
    Op::UpdateKeyDescription,
    Op::TagResource,
    Op::ListResourceTags,
    Op::UntagResource,
    Op::CreateAlias,
    Op::UpdateAlias,
    Op::DeleteAlias,
    Op::EnableKeyRotation,
    Op::GetKeyRotationStatus,
    Op::DisableKeyRotation,
    Op::RotateKeyOnDemand,
    Op::ListKeyRotations,
    Op::GetKeyLastUsage,
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncrypt,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::GenerateDataKeyPair,
    Op::GenerateDataKeyPairWithoutPlaintext,
    Op::GenerateMac,
    Op::VerifyMac,
    Op::Sign,
    Op::Verify,
    Op::GetPublicKey,
    Op::DeriveSharedSecret,
    Op::CreateGrant,
    Op::ListGrants,
    Op::RevokeGrant,
    Op::RetireGrant,
    Op::GetParametersForImport,
    Op::ImportKeyMaterial,
    Op::DeleteImportedKeyMaterial,
    Op::DisableKey,
    Op::EnableKey,
    Op::ScheduleKeyDeletion,
    Op::CancelKeyDeletion,
];

/// The operations a grant can allow (AWS's grant operations).
const GRANTABLE: &[Op] = &[
    Op::DescribeKey,
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncrypt,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::GenerateDataKeyPair,
    Op::GenerateDataKeyPairWithoutPlaintext,
    Op::GenerateMac,
    Op::VerifyMac,
    Op::Sign,
    Op::Verify,
    Op::GetPublicKey,
    Op::DeriveSharedSecret,
    Op::CreateGrant,
];

/// Management operations no grant can allow, with fixtures still valid after the policy pass.
const NOT_GRANTABLE: &[Op] = &[
    Op::GetKeyPolicy,
    Op::ListKeyPolicies,
    Op::PutKeyPolicy,
    Op::UpdateKeyDescription,
    Op::TagResource,
    Op::ListResourceTags,
    Op::CreateAlias,
    Op::EnableKeyRotation,
    Op::RotateKeyOnDemand,
    Op::GetKeyLastUsage,
    Op::ListGrants,
    Op::DisableKey,
    Op::ScheduleKeyDeletion,
];

async fn call(kms: &Kms, who: &Caller, op: Op, fx: &Fixture) -> KmsResult<()> {
    let sym = || fx.sym.clone();
    match op {
        Op::DescribeKey => kms
            .describe_key(who, pb::DescribeKeyRequest { key_id: sym(), ..Default::default() })
            .await
            .map(drop),
        Op::GetKeyPolicy => kms
            .get_key_policy(who, pb::GetKeyPolicyRequest { key_id: sym(), policy_name: None })
            .await
            .map(drop),
        Op::ListKeyPolicies => {
            let request = pb::ListKeyPoliciesRequest { key_id: sym(), ..Default::default() };
            kms.list_key_policies(who, request).await.map(drop)
        }
        Op::PutKeyPolicy => {
            let request =
                pb::PutKeyPolicyRequest { key_id: sym(), policy: matrix_policy(), ..Default::default() };
            kms.put_key_policy(who, request).await.map(drop)
        }
        Op::UpdateKeyDescription => {
            let request = pb::UpdateKeyDescriptionRequest { key_id: sym(), description: "changed".into() };
            kms.update_key_description(who, request).await.map(drop)
        }
        Op::TagResource => {
            let tags = vec![pb::Tag { tag_key: "team".into(), tag_value: "a".into() }];
            kms.tag_resource(who, pb::TagResourceRequest { key_id: sym(), tags }).await.map(drop)
        }
        Op::ListResourceTags => {
            let request = pb::ListResourceTagsRequest { key_id: sym(), ..Default::default() };
            kms.list_resource_tags(who, request).await.map(drop)
        }
        Op::UntagResource => {
            let request = pb::UntagResourceRequest { key_id: sym(), tag_keys: vec!["team".into()] };
            kms.untag_resource(who, request).await.map(drop)
        }
        Op::CreateAlias => {
            let request = pb::CreateAliasRequest { alias_name: "alias/matrix".into(), target_key_id: sym() };
            kms.create_alias(who, request).await.map(drop)
        }
        Op::UpdateAlias => {
            let request =
                pb::UpdateAliasRequest { alias_name: "alias/matrix".into(), target_key_id: fx.sym2.clone() };
            kms.update_alias(who, request).await.map(drop)
        }
        Op::DeleteAlias => kms
            .delete_alias(who, pb::DeleteAliasRequest { alias_name: "alias/matrix".into() })
            .await
            .map(drop),
        Op::EnableKeyRotation => {
            let request = pb::EnableKeyRotationRequest { key_id: sym(), rotation_period_in_days: None };
            kms.enable_key_rotation(who, request).await.map(drop)
        }
        Op::GetKeyRotationStatus => kms
            .get_key_rotation_status(who, pb::GetKeyRotationStatusRequest { key_id: sym() })
            .await
            .map(drop),
        Op::DisableKeyRotation => {
            kms.disable_key_rotation(who, pb::DisableKeyRotationRequest { key_id: sym() }).await.map(drop)
        }
        Op::RotateKeyOnDemand => {
            kms.rotate_key_on_demand(who, pb::RotateKeyOnDemandRequest { key_id: sym() }).await.map(drop)
        }
        Op::ListKeyRotations => {
            let request = pb::ListKeyRotationsRequest { key_id: sym(), ..Default::default() };
            kms.list_key_rotations(who, request).await.map(drop)
        }
        Op::GetKeyLastUsage => {
            kms.get_key_last_usage(who, pb::GetKeyLastUsageRequest { key_id: sym() }).await.map(drop)
        }
        Op::Encrypt => {
            let request =
                pb::EncryptRequest { key_id: sym(), plaintext: b"x".to_vec(), ..Default::default() };
            kms.encrypt(who, request).await.map(drop)
        }
        Op::Decrypt => {
            let request = pb::DecryptRequest { ciphertext_blob: fx.blob.clone(), ..Default::default() };
            kms.decrypt(who, request).await.map(drop)
        }
        Op::ReEncrypt => {
            let request = pb::ReEncryptRequest {
                ciphertext_blob: fx.blob.clone(),
                destination_key_id: fx.sym2.clone(),
                ..Default::default()
            };
            kms.re_encrypt(who, request).await.map(drop)
        }
        Op::GenerateDataKey => {
            let request =
                pb::GenerateDataKeyRequest { key_id: sym(), number_of_bytes: Some(32), ..Default::default() };
            kms.generate_data_key(who, request).await.map(drop)
        }
        Op::GenerateDataKeyWithoutPlaintext => {
            let request = pb::GenerateDataKeyWithoutPlaintextRequest {
                key_id: sym(),
                number_of_bytes: Some(32),
                ..Default::default()
            };
            kms.generate_data_key_without_plaintext(who, request).await.map(drop)
        }
        Op::GenerateDataKeyPair => {
            let request = pb::GenerateDataKeyPairRequest {
                key_id: sym(),
                key_pair_spec: pb::DataKeyPairSpec::EccNistP256.into(),
                ..Default::default()
            };
            kms.generate_data_key_pair(who, request).await.map(drop)
        }
        Op::GenerateDataKeyPairWithoutPlaintext => {
            let request = pb::GenerateDataKeyPairWithoutPlaintextRequest {
                key_id: sym(),
                key_pair_spec: pb::DataKeyPairSpec::EccNistP256.into(),
                ..Default::default()
            };
            kms.generate_data_key_pair_without_plaintext(who, request).await.map(drop)
        }
        Op::GenerateMac => {
            let request = pb::GenerateMacRequest {
                key_id: fx.hmac.clone(),
                message: MESSAGE.to_vec(),
                mac_algorithm: pb::MacAlgorithmSpec::HmacSha256.into(),
                ..Default::default()
            };
            kms.generate_mac(who, request).await.map(drop)
        }
        Op::VerifyMac => {
            let request = pb::VerifyMacRequest {
                key_id: fx.hmac.clone(),
                message: MESSAGE.to_vec(),
                mac: fx.mac.clone(),
                mac_algorithm: pb::MacAlgorithmSpec::HmacSha256.into(),
                ..Default::default()
            };
            kms.verify_mac(who, request).await.map(drop)
        }
        Op::Sign => kms.sign(who, sign_request(&fx.sign)).await.map(drop),
        Op::Verify => {
            let request = pb::VerifyRequest {
                key_id: fx.sign.clone(),
                message: MESSAGE.to_vec(),
                signature: fx.signature.clone(),
                signing_algorithm: pb::SigningAlgorithmSpec::EcdsaSha256.into(),
                ..Default::default()
            };
            kms.verify(who, request).await.map(drop)
        }
        Op::GetPublicKey => {
            let request = pb::GetPublicKeyRequest { key_id: fx.sign.clone(), ..Default::default() };
            kms.get_public_key(who, request).await.map(drop)
        }
        Op::DeriveSharedSecret => {
            let request = pb::DeriveSharedSecretRequest {
                key_id: fx.agree.clone(),
                key_agreement_algorithm: pb::KeyAgreementAlgorithmSpec::Ecdh.into(),
                public_key: fx.peer_public_key.clone(),
                ..Default::default()
            };
            kms.derive_shared_secret(who, request).await.map(drop)
        }
        Op::CreateGrant => kms
            .create_grant(who, grant_request(&fx.sym, "erin", &[pb::GrantOperation::Decrypt]))
            .await
            .map(drop),
        Op::ListGrants => kms
            .list_grants(who, pb::ListGrantsRequest { key_id: sym(), ..Default::default() })
            .await
            .map(drop),
        Op::RevokeGrant => {
            let request =
                pb::RevokeGrantRequest { key_id: sym(), grant_id: fx.revocable_grant.clone(), dry_run: None };
            kms.revoke_grant(who, request).await.map(drop)
        }
        Op::RetireGrant => {
            let request = pb::RetireGrantRequest {
                key_id: Some(sym()),
                grant_id: Some(fx.retirable_grant.clone()),
                ..Default::default()
            };
            kms.retire_grant(who, request).await.map(drop)
        }
        Op::GetParametersForImport => {
            kms.get_parameters_for_import(who, import_parameters_request(&fx.external)).await.map(drop)
        }
        Op::ImportKeyMaterial => {
            let request = pb::ImportKeyMaterialRequest {
                key_id: fx.external.clone(),
                import_token: fx.import_token.clone(),
                encrypted_key_material: fx.wrapped_material.clone(),
                expiration_model: pb::ExpirationModelType::KeyMaterialDoesNotExpire.into(),
                ..Default::default()
            };
            kms.import_key_material(who, request).await.map(drop)
        }
        Op::DeleteImportedKeyMaterial => {
            let request =
                pb::DeleteImportedKeyMaterialRequest { key_id: fx.external.clone(), ..Default::default() };
            kms.delete_imported_key_material(who, request).await.map(drop)
        }
        Op::DisableKey => {
            kms.disable_key(who, pb::DisableKeyRequest { key_id: fx.doomed.clone() }).await.map(drop)
        }
        Op::EnableKey => {
            kms.enable_key(who, pb::EnableKeyRequest { key_id: fx.doomed.clone() }).await.map(drop)
        }
        Op::ScheduleKeyDeletion => {
            let request =
                pb::ScheduleKeyDeletionRequest { key_id: fx.doomed.clone(), pending_window_in_days: Some(7) };
            kms.schedule_key_deletion(who, request).await.map(drop)
        }
        Op::CancelKeyDeletion => kms
            .cancel_key_deletion(who, pb::CancelKeyDeletionRequest { key_id: fx.doomed.clone() })
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn every_operation_is_denied_without_permission_and_allowed_by_policy_or_grant() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (admin, alice, bob, carol) =
        (Caller::new("admin"), Caller::new("alice"), Caller::new("bob"), Caller::new("carol"));
    let fx = Fixture::new(&kms, &admin).await;
    assert!(snapshot(&kms).len() > 10, "the snapshot sees the keys and grants");

    // Policy: bob is not named, alice may do everything.
    for &op in KEY_OPERATIONS {
        let before = snapshot(&kms);
        let result = call(&kms, &bob, op, &fx).await;
        assert!(is_denied(&result), "bob {op:?}: {result:?}");
        assert!(snapshot(&kms) == before, "bob's denied {op:?} changed the state");
        let result = call(&kms, &alice, op, &fx).await;
        assert!(result.is_ok(), "alice {op:?}: {result:?}");
    }

    // Grants: carol holds every grant operation each key supports, and nothing else.
    let symmetric = [
        pb::GrantOperation::Encrypt,
        pb::GrantOperation::Decrypt,
        pb::GrantOperation::GenerateDataKey,
        pb::GrantOperation::GenerateDataKeyWithoutPlaintext,
        pb::GrantOperation::GenerateDataKeyPair,
        pb::GrantOperation::GenerateDataKeyPairWithoutPlaintext,
        pb::GrantOperation::ReEncryptFrom,
        pb::GrantOperation::ReEncryptTo,
        pb::GrantOperation::DescribeKey,
        pb::GrantOperation::CreateGrant,
    ];
    for key in [&fx.sym, &fx.sym2] {
        create_grant(&kms, &admin, grant_request(key, "carol", &symmetric)).await;
    }
    use pb::GrantOperation as G;
    create_grant(&kms, &admin, grant_request(&fx.hmac, "carol", &[G::GenerateMac, G::VerifyMac])).await;
    create_grant(&kms, &admin, grant_request(&fx.sign, "carol", &[G::Sign, G::Verify, G::GetPublicKey]))
        .await;
    create_grant(&kms, &admin, grant_request(&fx.agree, "carol", &[G::DeriveSharedSecret])).await;
    for &op in GRANTABLE {
        let result = call(&kms, &carol, op, &fx).await;
        assert!(result.is_ok(), "carol (grant) {op:?}: {result:?}");
    }
    for &op in NOT_GRANTABLE {
        let before = snapshot(&kms);
        let result = call(&kms, &carol, op, &fx).await;
        assert!(is_denied(&result), "carol {op:?} is not a grant operation: {result:?}");
        assert!(snapshot(&kms) == before, "carol's denied {op:?} changed the state");
    }
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn operations_without_a_key_are_open_to_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let bob = Caller::new("bob");
    let key = create_key(&kms, &bob, pb::CreateKeyRequest::default()).await;
    kms.list_keys(&bob, pb::ListKeysRequest::default()).await.unwrap();
    kms.list_aliases(&bob, pb::ListAliasesRequest::default()).await.unwrap();
    kms.generate_random(&bob, pb::GenerateRandomRequest { number_of_bytes: Some(8), ..Default::default() })
        .await
        .unwrap();
    let retirable =
        pb::ListRetirableGrantsRequest { retiring_principal: Some("bob".into()), ..Default::default() };
    kms.list_retirable_grants(&bob, retirable).await.unwrap();
    let err =
        kms.create_custom_key_store(&bob, pb::CreateCustomKeyStoreRequest::default()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);

    // A key without a policy of its own has AWS's default policy: the whole account may use it.
    let got =
        kms.get_key_policy(&bob, pb::GetKeyPolicyRequest { key_id: key.clone(), policy_name: None }).await;
    let got = got.unwrap();
    assert_eq!(got.policy_name, "default");
    let document: Value = serde_json::from_str(&got.policy).unwrap();
    assert_eq!(document["Statement"][0]["Principal"]["AWS"], format!("arn:aws:iam::{ACCOUNT}:root"));
    let other = Caller::new("someone-else");
    let encrypt = pb::EncryptRequest { key_id: key.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    kms.encrypt(&other, encrypt.clone()).await.unwrap();
    let foreign = Caller::new("arn:aws:iam::444455556666:user/mallory");
    assert!(denied(kms.encrypt(&foreign, encrypt).await), "another account is not in the default policy");
    let names = kms.list_key_policies(&bob, pb::ListKeyPoliciesRequest { key_id: key, ..Default::default() });
    assert_eq!(names.await.unwrap().policy_names, ["default"]);
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn encryption_context_conditions_and_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (admin, dave, erin) = (Caller::new("admin"), Caller::new("dave"), Caller::new("erin"));
    let tenant_only = json!({
        "Effect": "Allow", "Principal": {"AWS": arn("dave")}, "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "42"}}
    });
    let key_policy = policy(vec![allow("admin", json!("kms:*")), tenant_only]);
    let request = key_request(pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt, Some(key_policy));
    let key = create_key(&kms, &admin, request).await;
    let encrypt = |pairs: &[(&str, &str)]| pb::EncryptRequest {
        key_id: key.clone(),
        plaintext: b"x".to_vec(),
        encryption_context: context(pairs),
        ..Default::default()
    };

    // Policy condition: the matching context is allowed, another (or none) denied.
    let blob = kms.encrypt(&dave, encrypt(&[("tenant", "42")])).await.unwrap().ciphertext_blob;
    assert!(denied(kms.encrypt(&dave, encrypt(&[("tenant", "43")])).await));
    assert!(denied(kms.encrypt(&dave, encrypt(&[])).await));
    let decrypt = |pairs: &[(&str, &str)]| pb::DecryptRequest {
        ciphertext_blob: blob.clone(),
        encryption_context: context(pairs),
        ..Default::default()
    };
    assert_eq!(kms.decrypt(&dave, decrypt(&[("tenant", "42")])).await.unwrap().plaintext, b"x");
    assert!(denied(kms.decrypt(&dave, decrypt(&[("tenant", "43")])).await));

    // Grant constraint: erin may encrypt only with tenant=42 in the context (key case-insensitive).
    let grant = pb::CreateGrantRequest {
        constraints: Some(pb::GrantConstraints {
            encryption_context_subset: context(&[("Tenant", "42")]),
            ..Default::default()
        }),
        ..grant_request(&key, "erin", &[pb::GrantOperation::Encrypt])
    };
    let grant = create_grant(&kms, &admin, grant).await;
    let with_token = |pairs: &[(&str, &str)]| pb::EncryptRequest {
        grant_tokens: vec![grant.grant_token.clone()],
        ..encrypt(pairs)
    };
    kms.encrypt(&erin, with_token(&[("tenant", "42"), ("app", "x")])).await.unwrap();
    assert!(denied(kms.encrypt(&erin, with_token(&[("tenant", "43")])).await));
    assert!(denied(kms.decrypt(&erin, decrypt(&[("tenant", "42")])).await), "the grant has no Decrypt");

    // Constraints are only for symmetric keys; operations must suit the key.
    let mac_key =
        create_key(&kms, &admin, key_request(pb::KeySpec::Hmac256, pb::KeyUsage::GenerateVerifyMac, None))
            .await;
    let bad = pb::CreateGrantRequest {
        constraints: Some(pb::GrantConstraints {
            encryption_context_equals: context(&[("a", "b")]),
            ..Default::default()
        }),
        ..grant_request(&mac_key, "erin", &[pb::GrantOperation::GenerateMac])
    };
    assert_eq!(kms.create_grant(&admin, bad).await.unwrap_err().kind, ErrorKind::ValidationException);
    let wrong_operation = grant_request(&mac_key, "erin", &[pb::GrantOperation::Encrypt]);
    assert_eq!(
        kms.create_grant(&admin, wrong_operation).await.unwrap_err().kind,
        ErrorKind::ValidationException
    );
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn explicit_deny_wins_over_allows_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (admin, bob) = (Caller::new("admin"), Caller::new("bob"));
    let deny_bob =
        json!({"Effect": "Deny", "Principal": {"AWS": arn("bob")}, "Action": "kms:Decrypt", "Resource": "*"});
    let everyone =
        json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"});
    let key_policy = policy(vec![everyone, deny_bob]);
    let key = create_key(
        &kms,
        &admin,
        key_request(pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt, Some(key_policy)),
    )
    .await;
    create_grant(&kms, &admin, grant_request(&key, "bob", &[pb::GrantOperation::Decrypt])).await;
    let encrypt = pb::EncryptRequest { key_id: key.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    let blob = kms.encrypt(&bob, encrypt).await.unwrap().ciphertext_blob;
    let err = kms
        .decrypt(&bob, pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDeniedException);
    assert!(err.message.contains("explicit deny") && err.message.contains(&arn("bob")), "{}", err.message);
    kms.decrypt(&admin, pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await.unwrap();
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn request_alias_condition() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (admin, gina) = (Caller::new("admin"), Caller::new("gina"));
    let via_alias = json!({
        "Effect": "Allow", "Principal": {"AWS": arn("gina")}, "Action": "kms:Encrypt", "Resource": "*",
        "Condition": {"StringLike": {"kms:RequestAlias": "alias/gina-*"}}
    });
    let key_policy = policy(vec![allow("admin", json!("kms:*")), via_alias]);
    let key = create_key(
        &kms,
        &admin,
        key_request(pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt, Some(key_policy)),
    )
    .await;
    kms.create_alias(
        &admin,
        pb::CreateAliasRequest { alias_name: "alias/gina-app".into(), target_key_id: key.clone() },
    )
    .await
    .unwrap();
    let encrypt = |key_id: &str| pb::EncryptRequest {
        key_id: key_id.into(),
        plaintext: b"x".to_vec(),
        ..Default::default()
    };
    kms.encrypt(&gina, encrypt("alias/gina-app")).await.unwrap();
    kms.encrypt(&gina, encrypt(&format!("arn:aws:kms:test-1:{ACCOUNT}:alias/gina-app"))).await.unwrap();
    assert!(denied(kms.encrypt(&gina, encrypt(&key)).await));
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn grant_lifecycle_tokens_and_retiring() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (admin, bob, carol) = (Caller::new("admin"), Caller::new("bob"), Caller::new("carol"));
    let key = create_key(
        &kms,
        &admin,
        key_request(
            pb::KeySpec::SymmetricDefault,
            pb::KeyUsage::EncryptDecrypt,
            Some(policy(vec![allow("admin", json!("kms:*"))])),
        ),
    )
    .await;
    let encrypt = |tokens: Vec<String>| pb::EncryptRequest {
        key_id: key.clone(),
        plaintext: b"x".to_vec(),
        grant_tokens: tokens,
        ..Default::default()
    };

    // A malformed token is refused as such; a fresh grant's token works at once.
    let err = kms.encrypt(&bob, encrypt(vec!["not-a-token".into()])).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidGrantTokenException);
    let dry = pb::CreateGrantRequest {
        dry_run: Some(true),
        ..grant_request(&key, "bob", &[pb::GrantOperation::Encrypt])
    };
    let before = snapshot(&kms);
    assert_eq!(kms.create_grant(&admin, dry).await.unwrap_err().kind, ErrorKind::DryRunOperationException);
    assert!(snapshot(&kms) == before, "a dry run creates nothing");
    let request = pb::CreateGrantRequest {
        name: Some("bob-encrypts".into()),
        retiring_principal: Some("carol".into()),
        ..grant_request(&key, "bob", &[pb::GrantOperation::Encrypt])
    };
    let grant = create_grant(&kms, &admin, request.clone()).await;
    kms.encrypt(&bob, encrypt(vec![grant.grant_token.clone()])).await.unwrap();
    kms.encrypt(&bob, encrypt(vec![])).await.unwrap();
    // Same Name and terms: the same grant (AWS's idempotent CreateGrant).
    assert_eq!(create_grant(&kms, &admin, request).await.grant_id, grant.grant_id);

    // ListGrants (policy only), filtered; ListRetirableGrants for the retiring principal.
    let list = |grantee: Option<&str>| pb::ListGrantsRequest {
        key_id: key.clone(),
        grantee_principal: grantee.map(str::to_string),
        ..Default::default()
    };
    assert!(denied(kms.list_grants(&bob, list(None)).await));
    let listed = kms.list_grants(&admin, list(Some(&arn("bob")))).await.unwrap().grants;
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!((entry.grant_id.as_str(), entry.name.as_str()), (grant.grant_id.as_str(), "bob-encrypts"));
    assert_eq!(entry.key_id, format!("arn:aws:kms:test-1:{ACCOUNT}:key/{key}"));
    assert_eq!(entry.issuing_account, format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(entry.operations, [i32::from(pb::GrantOperation::Encrypt)]);
    assert!(kms.list_grants(&admin, list(Some("carol"))).await.unwrap().grants.is_empty());
    let retirable = |who: &str| pb::ListRetirableGrantsRequest {
        retiring_principal: Some(who.into()),
        ..Default::default()
    };
    assert_eq!(kms.list_retirable_grants(&carol, retirable("carol")).await.unwrap().grants.len(), 1);

    // The grantee cannot retire a grant without the RetireGrant operation; the retiring
    // principal can, by token.
    let by_token =
        pb::RetireGrantRequest { grant_token: Some(grant.grant_token.clone()), ..Default::default() };
    assert!(denied(kms.retire_grant(&bob, by_token.clone()).await));
    kms.retire_grant(&carol, by_token.clone()).await.unwrap();
    assert!(denied(kms.encrypt(&bob, encrypt(vec![grant.grant_token.clone()])).await), "retired");
    assert_eq!(kms.retire_grant(&carol, by_token).await.unwrap_err().kind, ErrorKind::NotFoundException);

    // A grant holding CreateGrant may pass on no more than it has.
    use pb::GrantOperation as G;
    create_grant(&kms, &admin, grant_request(&key, "bob", &[G::CreateGrant, G::Encrypt, G::RetireGrant]))
        .await;
    kms.create_grant(&bob, grant_request(&key, "dave", &[G::Encrypt])).await.unwrap();
    assert!(denied(kms.create_grant(&bob, grant_request(&key, "dave", &[G::Decrypt])).await));
    let bad_id = pb::RevokeGrantRequest { key_id: key.clone(), grant_id: "nope".into(), dry_run: None };
    assert_eq!(kms.revoke_grant(&admin, bad_id).await.unwrap_err().kind, ErrorKind::InvalidGrantIdException);
    kms.region().shutdown().await.unwrap();
}

#[tokio::test]
async fn policies_are_validated_and_the_lockout_check_protects_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start(dir.path()).await;
    let (alice, frank) = (Caller::new("alice"), Caller::new("frank"));
    let key = create_key(&kms, &alice, pb::CreateKeyRequest::default()).await;
    let put = |text: String, bypass: Option<bool>| pb::PutKeyPolicyRequest {
        key_id: key.clone(),
        policy: text,
        bypass_policy_lockout_safety_check: bypass,
        policy_name: Some("default".into()),
    };

    for malformed in ["{", r#"{"Statement": []}"#, r#"{"Statement": {"Effect": "Allow"}}"#] {
        let err = kms.put_key_policy(&alice, put(malformed.into(), None)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException, "{malformed}");
    }
    let huge = policy(vec![allow("alice", json!(vec!["kms:Encrypt"; 3000]))]);
    assert_eq!(
        kms.put_key_policy(&alice, put(huge, None)).await.unwrap_err().kind,
        ErrorKind::LimitExceededException
    );
    let wrong_name =
        pb::PutKeyPolicyRequest { policy_name: Some("other".into()), ..put(matrix_policy(), None) };
    assert_eq!(kms.put_key_policy(&alice, wrong_name).await.unwrap_err().kind, ErrorKind::NotFoundException);

    // A policy that would lock alice out needs the bypass flag.
    let admin_only = policy(vec![allow("admin", json!("kms:*"))]);
    let err = kms.put_key_policy(&alice, put(admin_only.clone(), None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException);
    let got = kms.get_key_policy(&alice, pb::GetKeyPolicyRequest { key_id: key.clone(), policy_name: None });
    assert!(got.await.unwrap().policy.contains(":root"), "unchanged");
    kms.put_key_policy(&alice, put(admin_only.clone(), Some(true))).await.unwrap();
    let got =
        kms.get_key_policy(&alice, pb::GetKeyPolicyRequest { key_id: key.clone(), policy_name: None }).await;
    assert!(denied(got), "alice locked herself out");

    // CreateKey with a policy: the same checks.
    let create = |bypass| pb::CreateKeyRequest {
        policy: Some(admin_only.clone()),
        bypass_policy_lockout_safety_check: bypass,
        ..Default::default()
    };
    let err = kms.create_key(&frank, create(None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException);
    let locked = create_key(&kms, &frank, create(Some(true))).await;
    let describe = pb::DescribeKeyRequest { key_id: locked, ..Default::default() };
    assert!(denied(kms.describe_key(&frank, describe.clone()).await));
    kms.describe_key(&Caller::new("admin"), describe).await.unwrap();
    kms.region().shutdown().await.unwrap();
}
