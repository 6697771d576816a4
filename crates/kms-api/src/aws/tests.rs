//! Tests across the module: the converter on real kms.v1 messages, and the endpoint with a
//! recording backend (nothing runs unless the signature verifies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::codec::Codec;
use super::credentials::Credentials;
use super::endpoint::{Backend, Endpoint, Incoming, MAX_BODY_BYTES};
use super::error::AwsError;
use super::operations;
use super::sigv4::{hmac_sha256, signing_key, string_to_sign};
use crate::caller::Caller;
use base16ct::lower::encode_string as hex;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method};
use kms_proto::v1 as pb;
use prost_types::Timestamp;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

fn codec() -> Codec {
    Codec::new().unwrap()
}

fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn full_metadata() -> pb::KeyMetadata {
    pb::KeyMetadata {
        aws_account_id: "000000000000".into(),
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        arn: "arn:aws:kms:dev-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        creation_date: ts(1_700_000_000, 500_000_000),
        enabled: false,
        description: "d".into(),
        key_usage: pb::KeyUsage::EncryptDecrypt.into(),
        key_state: pb::KeyState::PendingDeletion.into(),
        deletion_date: ts(1_700_604_800, 0),
        valid_to: ts(1_800_000_000, 250_000_000),
        origin: pb::OriginType::AwsKms.into(),
        custom_key_store_id: "cks-1".into(),
        cloud_hsm_cluster_id: "cluster-1".into(),
        expiration_model: pb::ExpirationModelType::KeyMaterialExpires.into(),
        key_manager: pb::KeyManagerType::Customer.into(),
        customer_master_key_spec: pb::CustomerMasterKeySpec::SymmetricDefault.into(),
        key_spec: pb::KeySpec::SymmetricDefault.into(),
        encryption_algorithms: vec![pb::EncryptionAlgorithmSpec::SymmetricDefault.into()],
        signing_algorithms: vec![pb::SigningAlgorithmSpec::EcdsaSha256.into()],
        key_agreement_algorithms: vec![pb::KeyAgreementAlgorithmSpec::Ecdh.into()],
        multi_region: Some(false),
        multi_region_configuration: Some(pb::MultiRegionConfiguration {
            multi_region_key_type: pb::MultiRegionKeyType::Primary.into(),
            primary_key: Some(pb::MultiRegionKey { arn: "arn:p".into(), region: "dev-1".into() }),
            replica_keys: vec![pb::MultiRegionKey { arn: "arn:r".into(), region: "dev-2".into() }],
        }),
        pending_deletion_window_in_days: Some(7),
        mac_algorithms: vec![pb::MacAlgorithmSpec::HmacSha256.into()],
        xks_key_configuration: Some(pb::XksKeyConfiguration { id: "xks".into() }),
        current_key_material_id: "m1".into(),
    }
}

#[test]
fn a_nested_response_is_written_as_aws_writes_it_and_reads_back_identically() {
    let c = codec();
    let response = pb::DescribeKeyResponse { key_metadata: Some(full_metadata()) };
    let json = c.encode("kms.v1.DescribeKeyResponse", &response).unwrap();
    let m = &json["KeyMetadata"];
    assert_eq!(m["AWSAccountId"], "000000000000");
    assert_eq!(m["CloudHsmClusterId"], "cluster-1");
    assert_eq!(m["CreationDate"], json!(1_700_000_000.5));
    assert_eq!(m["DeletionDate"], json!(1_700_604_800));
    assert!(m["DeletionDate"].is_i64());
    assert_eq!(m["ValidTo"], json!(1_800_000_000.25));
    assert_eq!(m["Enabled"], false);
    assert_eq!(m["KeyState"], "PendingDeletion");
    assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(m["Origin"], "AWS_KMS");
    assert_eq!(m["ExpirationModel"], "KEY_MATERIAL_EXPIRES");
    assert_eq!(m["KeyManager"], "CUSTOMER");
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(m["SigningAlgorithms"], json!(["ECDSA_SHA_256"]));
    assert_eq!(m["MacAlgorithms"], json!(["HMAC_SHA_256"]));
    assert_eq!(m["MultiRegion"], false);
    assert_eq!(m["PendingDeletionWindowInDays"], 7);
    assert_eq!(m["MultiRegionConfiguration"]["MultiRegionKeyType"], "PRIMARY");
    assert_eq!(m["MultiRegionConfiguration"]["PrimaryKey"], json!({"Arn": "arn:p", "Region": "dev-1"}));
    assert_eq!(m["MultiRegionConfiguration"]["ReplicaKeys"], json!([{"Arn": "arn:r", "Region": "dev-2"}]));
    assert_eq!(m["XksKeyConfiguration"], json!({"Id": "xks"}));
    // And back: the same message, field for field.
    let back: pb::DescribeKeyResponse = c.decode("kms.v1.DescribeKeyResponse", &json).unwrap();
    assert_eq!(back, response);
}

#[test]
fn absent_response_members_are_omitted_not_null() {
    let c = codec();
    let minimal = pb::KeyMetadata {
        key_id: "k".into(),
        key_state: pb::KeyState::Enabled.into(),
        enabled: true,
        ..Default::default()
    };
    let json = c
        .encode("kms.v1.DescribeKeyResponse", &pb::DescribeKeyResponse { key_metadata: Some(minimal) })
        .unwrap();
    assert_eq!(json, json!({"KeyMetadata": {"KeyId": "k", "Enabled": true, "KeyState": "Enabled"}}));
    // Top-level empty lists stay (an empty listing), the marker goes, Truncated is always written.
    let json = c.encode("kms.v1.ListAliasesResponse", &pb::ListAliasesResponse::default()).unwrap();
    assert_eq!(json, json!({"Aliases": [], "Truncated": false}));
    let json = c.encode("kms.v1.EnableKeyResponse", &pb::EnableKeyResponse {}).unwrap();
    assert_eq!(json, json!({}));
    let status = pb::GetKeyRotationStatusResponse { key_id: "k".into(), ..Default::default() };
    let json = c.encode("kms.v1.GetKeyRotationStatusResponse", &status).unwrap();
    assert_eq!(json, json!({"KeyId": "k", "KeyRotationEnabled": false}));
    // Blobs are standard base64 with padding.
    let out = pb::GenerateRandomResponse { plaintext: vec![0xff, 0xfe, 0x00, 0x01], ..Default::default() };
    assert_eq!(c.encode("kms.v1.GenerateRandomResponse", &out).unwrap(), json!({"Plaintext": "//4AAQ=="}));
}

#[test]
fn requests_decode_blobs_maps_lists_enums_and_presence() {
    let c = codec();
    let input = json!({
        "KeyId": "alias/app",
        "Plaintext": "aGVsbG8=",
        "EncryptionContext": {"tenant": "42", "app": "x"},
        "GrantTokens": ["t1", "t2"],
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DryRun": false,
        "SomethingNew": {"ignored": true},
        "Nothing": null,
    });
    let req: pb::EncryptRequest = c.decode("kms.v1.EncryptRequest", &input).unwrap();
    assert_eq!(req.key_id, "alias/app");
    assert_eq!(req.plaintext, b"hello");
    assert_eq!(req.encryption_context.get("tenant").map(String::as_str), Some("42"));
    assert_eq!(req.encryption_context.len(), 2);
    assert_eq!(req.grant_tokens, ["t1", "t2"]);
    assert_eq!(req.encryption_algorithm, pb::EncryptionAlgorithmSpec::SymmetricDefault as i32);
    assert_eq!(req.dry_run, Some(false), "an explicit false is present");
    let req: pb::EncryptRequest = c
        .decode("kms.v1.EncryptRequest", &json!({"KeyId": "k", "Plaintext": "AA==", "DryRun": null}))
        .unwrap();
    assert_eq!(req.dry_run, None);
    assert_eq!(req.encryption_algorithm, 0);

    let req: pb::CreateKeyRequest = c
        .decode(
            "kms.v1.CreateKeyRequest",
            &json!({"Description": "", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC",
                    "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": ""}]}),
        )
        .unwrap();
    assert_eq!(req.description.as_deref(), Some(""));
    assert_eq!(req.key_spec, pb::KeySpec::Hmac256 as i32);
    assert_eq!(req.key_usage, pb::KeyUsage::GenerateVerifyMac as i32);
    assert_eq!(req.multi_region, None);
    assert_eq!(req.tags.len(), 2);
    assert_eq!(req.tags[1], pb::Tag { tag_key: "b".into(), tag_value: String::new() });

    let req: pb::ListKeysRequest = c.decode("kms.v1.ListKeysRequest", &json!({"Limit": 0})).unwrap();
    assert_eq!(req.limit, Some(0), "an explicit zero is present");
    let req: pb::ImportKeyMaterialRequest = c
        .decode(
            "kms.v1.ImportKeyMaterialRequest",
            &json!({"KeyId": "k", "ImportToken": "AA==", "EncryptedKeyMaterial": "AA==", "ValidTo": 1_700_000_000.25}),
        )
        .unwrap();
    assert_eq!(req.valid_to, ts(1_700_000_000, 250_000_000));
    let req: pb::ListKeyRotationsRequest = c
        .decode(
            "kms.v1.ListKeyRotationsRequest",
            &json!({"KeyId": "k", "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}),
        )
        .unwrap();
    assert_eq!(req.include_key_material, pb::IncludeKeyMaterial::AllKeyMaterial as i32);
}

fn decode_err(full_name: &str, input: Json) -> AwsError {
    let c = codec();
    c.json_to_dynamic(full_name, &input).expect_err("must be refused")
}

#[test]
fn wrong_types_are_serialization_errors_and_bad_values_validation_errors() {
    for (input, code) in [
        (json!({"KeyId": 5, "Plaintext": "AA=="}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "not base64!"}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": 12}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": ["a"]}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": {"a": 1}}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "GrantTokens": "t"}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "DryRun": "yes"}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "EncryptionAlgorithm": 1}), "SerializationException"),
        (json!({"KeyId": "k", "Plaintext": "AA==", "EncryptionAlgorithm": "AES"}), "ValidationException"),
        (json!(["KeyId"]), "SerializationException"),
        (json!("KeyId"), "SerializationException"),
    ] {
        assert_eq!(decode_err("kms.v1.EncryptRequest", input.clone()).code, code, "{input}");
    }
    for limit in [json!(1.5), json!(1e10), json!("5"), json!(4_294_967_296_i64)] {
        let err = decode_err("kms.v1.ListKeysRequest", json!({ "Limit": limit }));
        assert_eq!(err.code, "SerializationException", "{limit}");
    }
    for valid_to in [json!("2030-01-01"), json!(-1), json!(1e20)] {
        let input =
            json!({"KeyId": "k", "ImportToken": "AA==", "EncryptedKeyMaterial": "AA==", "ValidTo": valid_to});
        assert_eq!(decode_err("kms.v1.ImportKeyMaterialRequest", input).code, "SerializationException");
    }
    let err = decode_err("kms.v1.CreateKeyRequest", json!({"KeySpec": "AES_999"}));
    assert_eq!(err.code, "ValidationException");
    assert!(
        err.message.contains("'AES_999' at 'keySpec'") && err.message.contains("HMAC_256"),
        "{}",
        err.message
    );
    let err = decode_err("kms.v1.CreateKeyRequest", json!({"Tags": [{"TagKey": 1}]}));
    assert_eq!(err.code, "SerializationException");
    assert!(err.message.contains("tags.1.member.tagKey"), "{}", err.message);
}

#[test]
fn missing_required_members_are_validation_errors_naming_them() {
    let err = decode_err("kms.v1.EncryptRequest", json!({}));
    assert_eq!(err.code, "ValidationException");
    assert_eq!(
        err.message,
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must \
         not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
    );
    let err = decode_err("kms.v1.DescribeKeyRequest", json!({"KeyId": null}));
    assert!(err.message.starts_with("1 validation error detected: Value null at 'keyId'"), "{}", err.message);
    let err = decode_err("kms.v1.GenerateMacRequest", json!({"KeyId": "k", "Message": "AA=="}));
    assert!(err.message.contains("'macAlgorithm'"), "{}", err.message);
    let err = decode_err("kms.v1.TagResourceRequest", json!({"KeyId": "k", "Tags": []}));
    assert!(err.message.contains("'tags'"), "{}", err.message);
    let err = decode_err("kms.v1.TagResourceRequest", json!({"KeyId": "k", "Tags": [{"TagKey": "a"}]}));
    assert!(err.message.contains("'tags.1.member.tagValue'"), "{}", err.message);
    // Optional in AWS's model: absent is fine.
    let c = codec();
    assert!(c.json_to_dynamic("kms.v1.ListKeysRequest", &json!({})).is_ok());
    assert!(c.json_to_dynamic("kms.v1.CreateKeyRequest", &json!({})).is_ok());
    assert!(c.json_to_dynamic("kms.v1.GenerateRandomRequest", &json!({})).is_ok());
    assert!(c.json_to_dynamic("kms.v1.DecryptRequest", &json!({})).is_ok());
}

#[test]
fn every_operation_is_implemented_and_others_are_unknown() {
    assert_eq!(operations::IMPLEMENTED.len(), 54);
    let err = operations::unknown_operation("Frobnicate");
    assert_eq!((err.status, err.code), (400, "UnknownOperationException"));
}

// ---- the endpoint, with a backend that records what reaches it ----

const REGION: &str = "dev-1";
const NOW: i64 = 1_764_333_416; // 20251128T123656Z
const SECRET: &str = "s3cr3t";

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String, Json)>>,
}

impl Backend for Recorder {
    async fn call(&self, caller: Caller, operation: String, input: Json) -> Result<Json, AwsError> {
        self.calls.lock().unwrap().push((caller.principal, operation.clone(), input));
        if operation == "Fail" {
            return Err(kms_core::KmsError::dependency_timeout("slow").into());
        }
        Ok(json!({"Operation": operation}))
    }
}

fn endpoint() -> Endpoint<Recorder> {
    let mut credentials = Credentials::new();
    credentials.insert("AKIDTEST", SECRET, "alice");
    Endpoint { backend: Recorder::default(), credentials, region: REGION.into() }
}

fn signed(target: &str, body: &[u8], secret: &str, access_key: &str, at: i64) -> HeaderMap {
    let date = super::amz_date::format(at);
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    h.insert("host", HeaderValue::from_static("127.0.0.1:8302"));
    h.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
    h.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
    let names = "content-type;host;x-amz-date;x-amz-target";
    let canonical =
        super::sigv4::canonical_request("POST", "/", &[], false, &h, names, &hex(&Sha256::digest(body)));
    let scope = format!("{}/{REGION}/kms/aws4_request", &date[..8]);
    let to_sign = string_to_sign(&date, &scope, &canonical);
    let signature = hex(&hmac_sha256(&signing_key(secret, &date[..8], REGION, "kms"), to_sign.as_bytes()));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    );
    h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    h
}

async fn send(
    e: &Endpoint<Recorder>,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, Json) {
    let incoming = Incoming { method: &method, path, query: None, headers, peer: None };
    let answer = e.handle_at(&incoming, &Bytes::copy_from_slice(body), "req-1", NOW).await;
    let json: Json = serde_json::from_slice(&answer.body).unwrap();
    if answer.status != 200 {
        assert_eq!(answer.error, json["__type"].as_str());
    }
    (answer.status, json)
}

fn calls(e: &Endpoint<Recorder>) -> usize {
    e.backend.calls.lock().unwrap().len()
}

#[tokio::test]
async fn a_signed_request_reaches_the_backend_as_its_principal() {
    let e = endpoint();
    let body = br#"{"KeyId": "k"}"#;
    let h = signed("TrentService.DescribeKey", body, SECRET, "AKIDTEST", NOW);
    let (status, json) = send(&e, Method::POST, "/", &h, body).await;
    assert_eq!((status, json), (200, json!({"Operation": "DescribeKey"})));
    let recorded = e.backend.calls.lock().unwrap().pop().unwrap();
    assert_eq!(recorded, ("alice".to_string(), "DescribeKey".to_string(), json!({"KeyId": "k"})));
    // An empty body is `{}`; a server fault keeps its status.
    let h = signed("TrentService.ListKeys", b"", SECRET, "AKIDTEST", NOW);
    assert_eq!(send(&e, Method::POST, "/", &h, b"").await.0, 200);
    let h = signed("TrentService.Fail", b"{}", SECRET, "AKIDTEST", NOW);
    let (status, json) = send(&e, Method::POST, "/", &h, b"{}").await;
    assert_eq!((status, json["__type"].as_str()), (503, Some("DependencyTimeoutException")));
}

#[tokio::test]
async fn nothing_runs_on_an_authentication_failure() {
    let e = endpoint();
    let body = br#"{"KeyId": "k"}"#;
    let target = "TrentService.ScheduleKeyDeletion";
    let cases: Vec<(&str, HeaderMap, &[u8], u16, &str)> = vec![
        (
            "wrong secret",
            signed(target, body, "other", "AKIDTEST", NOW),
            body,
            400,
            "InvalidSignatureException",
        ),
        (
            "tampered body",
            signed(target, body, SECRET, "AKIDTEST", NOW),
            br#"{"KeyId": "x"}"#,
            400,
            "InvalidSignatureException",
        ),
        (
            "expired",
            signed(target, body, SECRET, "AKIDTEST", NOW - super::sigv4::MAX_CLOCK_SKEW_SECS - 1),
            body,
            400,
            "InvalidSignatureException",
        ),
        (
            "from the future",
            signed(target, body, SECRET, "AKIDTEST", NOW + super::sigv4::MAX_CLOCK_SKEW_SECS + 1),
            body,
            400,
            "InvalidSignatureException",
        ),
        (
            "unknown key",
            signed(target, body, SECRET, "AKIDOTHER", NOW),
            body,
            400,
            "UnrecognizedClientException",
        ),
        ("unsigned", HeaderMap::new(), body, 403, "MissingAuthenticationTokenException"),
    ];
    for (what, headers, sent, status, code) in cases {
        let (got_status, json) = send(&e, Method::POST, "/", &headers, sent).await;
        assert_eq!((got_status, json["__type"].as_str()), (status, Some(code)), "{what}: {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let mut incomplete = signed(target, body, SECRET, "AKIDTEST", NOW);
    incomplete.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDTEST/20251128/dev-1/kms/aws4_request"),
    );
    let (status, json) = send(&e, Method::POST, "/", &incomplete, body).await;
    assert_eq!((status, json["__type"].as_str()), (400, Some("IncompleteSignatureException")));
    assert_eq!(calls(&e), 0, "the backend must never run");
}

#[tokio::test]
async fn bad_requests_get_aws_error_shapes_and_never_reach_the_backend() {
    let e = endpoint();
    let sign = |target: &str, body: &[u8]| signed(target, body, SECRET, "AKIDTEST", NOW);
    for (body, code) in [
        (&b"{\"KeyId\": "[..], "SerializationException"),
        (b"[1, 2]", "SerializationException"),
        (b"\"KeyId\"", "SerializationException"),
        (b"\xff\xfe", "SerializationException"),
    ] {
        let (status, json) = send(&e, Method::POST, "/", &sign("TrentService.DescribeKey", body), body).await;
        assert_eq!((status, json["__type"].as_str()), (400, Some(code)), "{body:?}");
    }
    for target in ["DescribeKey", "TrentService.", "Other.DescribeKey"] {
        let (status, json) = send(&e, Method::POST, "/", &sign(target, b"{}"), b"{}").await;
        assert_eq!((status, json["__type"].as_str()), (400, Some("UnknownOperationException")), "{target}");
    }
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, json) = send(&e, Method::POST, "/", &sign("TrentService.Encrypt", &big), &big).await;
    assert_eq!((status, json["__type"].as_str()), (413, Some("ValidationException")));
    let (status, json) = send(&e, Method::GET, "/", &sign("TrentService.ListKeys", b""), b"").await;
    assert_eq!((status, json["__type"].as_str()), (405, Some("UnknownOperationException")));
    let (status, _) = send(&e, Method::POST, "/x", &sign("TrentService.ListKeys", b"{}"), b"{}").await;
    assert_eq!(status, 404);
    assert_eq!(calls(&e), 0);
}
