//! Bad input against a real node: each gets the right AWS exception, and nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, Node, exception};
use kms_proto::v1 as pb;

async fn create_key(client: &mut Client, spec: pb::KeySpec, usage: pb::KeyUsage) -> String {
    let request =
        pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
    let response = client.create_key(request).await.unwrap().into_inner();
    response.key_metadata.unwrap().key_id
}

fn encrypt_request(key_id: &str, plaintext: &[u8], context: &[(&str, &str)]) -> pb::EncryptRequest {
    pb::EncryptRequest {
        key_id: key_id.into(),
        plaintext: plaintext.to_vec(),
        encryption_context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn decrypt_request(blob: &[u8], context: &[(&str, &str)]) -> pb::DecryptRequest {
    pb::DecryptRequest {
        ciphertext_blob: blob.to_vec(),
        encryption_context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

macro_rules! assert_exception {
    ($call:expr, $name:literal) => {{
        let status = $call.await.expect_err(concat!("expected ", $name));
        assert_eq!(exception(&status), $name, "{status:?}");
    }};
}

#[tokio::test]
async fn bad_input_gets_the_aws_exception_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    let key = create_key(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::Unspecified).await;
    let hmac = create_key(&mut c, pb::KeySpec::Hmac256, pb::KeyUsage::GenerateVerifyMac).await;
    let ctx = [("tenant", "42")];
    let blob =
        c.encrypt(encrypt_request(&key, b"attack at dawn", &ctx)).await.unwrap().into_inner().ciphertext_blob;

    // Plaintext size limits.
    assert_exception!(c.encrypt(encrypt_request(&key, b"", &[])), "ValidationException");
    assert_exception!(c.encrypt(encrypt_request(&key, &[7u8; 4097], &[])), "ValidationException");
    c.encrypt(encrypt_request(&key, &[7u8; 4096], &[])).await.unwrap();

    // Wrong encryption context, truncated and tampered ciphertext.
    assert_exception!(c.decrypt(decrypt_request(&blob, &[("tenant", "43")])), "InvalidCiphertextException");
    assert_exception!(c.decrypt(decrypt_request(&blob, &[])), "InvalidCiphertextException");
    for cut in [1, blob.len() / 2, blob.len() - 1] {
        assert_exception!(c.decrypt(decrypt_request(&blob[..cut], &ctx)), "InvalidCiphertextException");
    }
    for position in [0, 5, blob.len() / 2, blob.len() - 1] {
        let mut tampered = blob.clone();
        tampered[position] ^= 0x01;
        let status = c.decrypt(decrypt_request(&tampered, &ctx)).await.unwrap_err();
        // Flipping a byte of the key id makes the blob name a key that does not exist; either
        // way the ciphertext is reported invalid.
        assert_eq!(exception(&status), "InvalidCiphertextException", "byte {position}: {status:?}");
    }
    assert_exception!(c.decrypt(decrypt_request(b"", &ctx)), "ValidationException");

    // Unknown keys, in every spelling.
    let unknown = "00000000-0000-0000-0000-000000000000";
    assert_exception!(c.encrypt(encrypt_request(unknown, b"x", &[])), "NotFoundException");
    assert_exception!(c.encrypt(encrypt_request("alias/nope", b"x", &[])), "NotFoundException");
    let describe = pb::DescribeKeyRequest { key_id: unknown.into(), ..Default::default() };
    assert_exception!(c.describe_key(describe), "NotFoundException");

    // Alias names.
    let alias = |name: &str| pb::CreateAliasRequest { alias_name: name.into(), target_key_id: key.clone() };
    assert_exception!(c.create_alias(alias("my-alias")), "ValidationException");
    assert_exception!(c.create_alias(alias("alias/aws/s3")), "InvalidAliasNameException");
    c.create_alias(alias("alias/good")).await.unwrap();
    assert_exception!(c.create_alias(alias("alias/good")), "AlreadyExistsException");

    // Deletion window.
    for days in [6, 31] {
        let request =
            pb::ScheduleKeyDeletionRequest { key_id: key.clone(), pending_window_in_days: Some(days) };
        assert_exception!(c.schedule_key_deletion(request), "ValidationException");
    }

    // Key usage mismatches.
    assert_exception!(c.encrypt(encrypt_request(&hmac, b"x", &[])), "InvalidKeyUsageException");
    let mac = pb::GenerateMacRequest {
        key_id: key.clone(),
        message: b"m".to_vec(),
        mac_algorithm: pb::MacAlgorithmSpec::HmacSha256.into(),
        ..Default::default()
    };
    assert_exception!(c.generate_mac(mac), "InvalidKeyUsageException");

    // An oversized gRPC message is refused before it is decoded; the node keeps serving.
    let huge = encrypt_request(&key, &vec![1u8; 1024 * 1024], &[]);
    let status = c.encrypt(huge).await.unwrap_err();
    assert!(matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::OutOfRange), "{status:?}");

    // Nothing changed: the key is still enabled, not pending deletion, and still decrypts.
    let describe = pb::DescribeKeyRequest { key_id: key.clone(), ..Default::default() };
    let metadata = c.describe_key(describe).await.unwrap().into_inner().key_metadata.unwrap();
    assert_eq!(metadata.key_state, i32::from(pb::KeyState::Enabled));
    assert!(metadata.deletion_date.is_none());
    let plaintext = c.decrypt(decrypt_request(&blob, &ctx)).await.unwrap().into_inner().plaintext;
    assert_eq!(plaintext, b"attack at dawn");
    let keys = c.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner().keys;
    assert_eq!(keys.len(), 2);
    let aliases = c.list_aliases(pb::ListAliasesRequest::default()).await.unwrap().into_inner().aliases;
    let names: Vec<_> = aliases.iter().map(|a| a.alias_name.as_str()).collect();
    assert_eq!(names, ["alias/good"]);
}

#[tokio::test]
async fn key_last_usage_is_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    let key = create_key(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::Unspecified).await;
    let usage = |key: &str| pb::GetKeyLastUsageRequest { key_id: key.to_string() };
    let fresh = c.get_key_last_usage(usage(&key)).await.unwrap().into_inner();
    assert!(fresh.key_last_usage.is_none(), "a new key has no use yet");
    assert_eq!(fresh.tracking_start_date, fresh.key_creation_date);
    c.encrypt(encrypt_request(&key, b"x", &[])).await.unwrap();
    let used = c.get_key_last_usage(usage(&key)).await.unwrap().into_inner().key_last_usage.unwrap();
    assert_eq!(used.operation, i32::from(pb::KeyLastUsageTrackingOperation::Encrypt));
    // A failed call is not a use.
    c.decrypt(decrypt_request(b"garbage-that-is-not-a-blob", &[])).await.unwrap_err();
    let after = c.get_key_last_usage(usage(&key)).await.unwrap().into_inner().key_last_usage.unwrap();
    assert_eq!(after.operation, i32::from(pb::KeyLastUsageTrackingOperation::Encrypt));
    assert_eq!(
        exception(&c.get_key_last_usage(usage("alias/none")).await.unwrap_err()),
        "ValidationException"
    );
}

#[tokio::test]
async fn operations_this_node_cannot_do_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    // A node with no other regions configured cannot replicate a multi-Region key.
    let create = pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() };
    let mrk = c.create_key(create).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    let replicate =
        pb::ReplicateKeyRequest { key_id: mrk, replica_region: "eu-west-9".into(), ..Default::default() };
    let status = c.replicate_key(replicate).await.unwrap_err();
    assert_eq!(exception(&status), "ValidationException");
    assert!(status.message().contains("[regions.eu-west-9]"), "{status:?}");
    // Custom key stores will never exist here: a plain UnsupportedOperationException.
    let status = c.create_custom_key_store(pb::CreateCustomKeyStoreRequest::default()).await.unwrap_err();
    assert_eq!(exception(&status), "UnsupportedOperationException");
    assert!(status.message().contains("custom key stores"), "{status:?}");
    // The node is unharmed.
    c.list_keys(pb::ListKeysRequest::default()).await.unwrap();
}
