//! CreateKey's IdempotencyToken against a real single-node region (Raft + RocksDB in a temp dir)
//! with a clock the test moves: a repeat answers the first key, other parameters are refused,
//! tokens are per principal and forgotten after 24 hours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ManualClock, single_node};
use kms_api::{Caller, Kms};
use kms_core::ErrorKind;
use kms_proto::v1 as pb;

fn request(token: &str, description: &str) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest {
        description: Some(description.into()),
        idempotency_token: Some(token.into()),
        ..Default::default()
    }
}

async fn create(
    kms: &Kms,
    caller: &Caller,
    request: pb::CreateKeyRequest,
) -> Result<pb::KeyMetadata, ErrorKind> {
    kms.create_key(caller, request).await.map(|r| r.key_metadata.unwrap()).map_err(|e| e.kind)
}

async fn key_count(kms: &Kms) -> usize {
    kms.list_keys(&Caller::anonymous(), pb::ListKeysRequest::default()).await.unwrap().keys.len()
}

#[tokio::test]
async fn a_create_key_repeated_with_its_token_answers_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let kms = single_node(dir.path(), clock.clone()).await;
    let app = Caller::new("app");

    let first = create(&kms, &app, request("token-1", "one")).await.unwrap();
    let again = create(&kms, &app, request("token-1", "one")).await.unwrap();
    assert_eq!(again, first, "the same KeyMetadata");
    assert_eq!(key_count(&kms).await, 1);

    let mismatch = create(&kms, &app, request("token-1", "another description")).await;
    assert_eq!(mismatch, Err(ErrorKind::ValidationException));
    let other_principal =
        create(&kms, &Caller::new("someone-else"), request("token-1", "one")).await.unwrap();
    assert_ne!(other_principal.key_id, first.key_id, "tokens are per principal");
    for bad in ["", "not/allowed", &"x".repeat(65)] {
        assert_eq!(
            create(&kms, &app, request(bad, "one")).await,
            Err(ErrorKind::ValidationException),
            "{bad:?}"
        );
    }
    let without_token = pb::CreateKeyRequest { idempotency_token: None, ..request("", "one") };
    let plain = create(&kms, &app, without_token.clone()).await.unwrap();
    assert_ne!(create(&kms, &app, without_token).await.unwrap().key_id, plain.key_id, "no token, no memory");
    assert_eq!(key_count(&kms).await, 4);

    // A day later the token is forgotten: the same request makes a new key.
    clock.advance_days(1);
    let next_day = create(&kms, &app, request("token-1", "one")).await.unwrap();
    assert_ne!(next_day.key_id, first.key_id);
    assert_eq!(create(&kms, &app, request("token-1", "one")).await.unwrap().key_id, next_day.key_id);
    kms.region().shutdown().await.unwrap();
}

/// The AWS JSON endpoint maps members onto kms.v1 fields by reflection: the extension is the
/// member `IdempotencyToken`, and requests without it (every AWS SDK's) decode as before.
#[test]
fn the_aws_json_protocol_carries_the_token_as_a_member() {
    let codec = kms_aws_wire::Codec::new().unwrap();
    let name = "kms.v1.CreateKeyRequest";
    let with: pb::CreateKeyRequest =
        codec.decode(name, &serde_json::json!({"Description": "d", "IdempotencyToken": "t-1"})).unwrap();
    assert_eq!(with.idempotency_token.as_deref(), Some("t-1"));
    let without: pb::CreateKeyRequest = codec.decode(name, &serde_json::json!({"Description": "d"})).unwrap();
    assert_eq!(without, pb::CreateKeyRequest { description: Some("d".into()), ..Default::default() });
}
