//! `Kms::audited` on a real single-node region: one record per request with the resolved key ARN,
//! the encryption context and the outcome; a full queue that fails closed refuses before the
//! operation runs; a dropped request is recorded as cancelled; no secret reaches the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_api::metrics::Api;
use kms_api::{Caller, Kms};
use kms_audit::{AuditConfig, AuditLog, AuditRecord, OnFull};
use kms_proto::v1 as pb;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

async fn audited_node(dir: &Path, queue_capacity: usize) -> (Kms, AuditLog) {
    let kms = common::single_node(dir, common::ManualClock::starting_at(1_700_000_000_000)).await;
    let config = AuditConfig { path: dir.join("audit.log"), queue_capacity, on_full: OnFull::FailClosed };
    let log = AuditLog::open(&config).unwrap();
    (kms.with_audit(log.clone()), log)
}

async fn records(dir: &Path, log: &AuditLog) -> Vec<AuditRecord> {
    tokio::time::timeout(Duration::from_secs(10), log.flush()).await.unwrap();
    let file = std::fs::File::open(dir.join("audit.log")).unwrap();
    let report = kms_audit::verify(std::io::BufReader::new(file)).unwrap();
    assert!(report.is_intact(), "{report:?}");
    let text = std::fs::read(dir.join("audit.log")).unwrap();
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| AuditRecord::from_line(l).unwrap())
        .collect()
}

fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn every_request_is_recorded_once_with_key_context_and_outcome_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (kms, log) = audited_node(dir.path(), 64).await;
    let caller = Caller::new("app").with_source(Some("127.0.0.1:4444".parse().unwrap()));

    let created = kms
        .audited(Api::Grpc, "CreateKey", &caller, pb::CreateKeyRequest::default(), |r| {
            kms.create_key(&caller, r)
        })
        .await
        .unwrap();
    let meta = created.key_metadata.unwrap();
    let plaintext = b"audit-test plaintext 8c1e".to_vec();
    let ctx = context(&[("tenant", "blue"), ("app", "billing")]);
    let request = pb::EncryptRequest {
        key_id: meta.key_id.clone(),
        plaintext: plaintext.clone(),
        encryption_context: ctx.clone(),
        ..Default::default()
    };
    let blob = kms.audited(Api::Aws, "Encrypt", &caller, request, |r| kms.encrypt(&caller, r)).await.unwrap();
    let wrong = pb::DecryptRequest {
        ciphertext_blob: blob.ciphertext_blob.clone(),
        encryption_context: context(&[("tenant", "red")]),
        ..Default::default()
    };
    let err =
        kms.audited(Api::Grpc, "Decrypt", &caller, wrong, |r| kms.decrypt(&caller, r)).await.unwrap_err();
    assert_eq!(err.kind.name(), "InvalidCiphertextException");
    let request = pb::GenerateDataKeyRequest {
        key_id: meta.key_id.clone(),
        number_of_bytes: Some(32),
        ..Default::default()
    };
    let data_key = kms
        .audited(Api::Grpc, "GenerateDataKey", &caller, request, |r| kms.generate_data_key(&caller, r))
        .await
        .unwrap();
    let request = pb::ReEncryptRequest {
        ciphertext_blob: blob.ciphertext_blob.clone(),
        source_encryption_context: ctx.clone(),
        destination_key_id: meta.key_id.clone(),
        ..Default::default()
    };
    kms.audited(Api::Grpc, "ReEncrypt", &caller, request, |r| kms.re_encrypt(&caller, r)).await.unwrap();
    kms.audit_refused(Api::Aws, "ListKeys", &Caller::new("unauthenticated"), "InvalidSignatureException");

    let records = records(dir.path(), &log).await;
    let summary: Vec<_> =
        records.iter().map(|r| (r.event.operation.as_str(), r.event.outcome.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("CreateKey", "ok"),
            ("Encrypt", "ok"),
            ("Decrypt", "InvalidCiphertextException"),
            ("GenerateDataKey", "ok"),
            ("ReEncrypt", "ok"),
            ("ListKeys", "InvalidSignatureException"),
        ]
    );
    let [create, encrypt, decrypt, gdk, reencrypt, refused] = &records[..] else { unreachable!() };
    assert_eq!(create.event.key_arn.as_deref(), Some(meta.arn.as_str()), "the new key's ARN");
    assert_eq!(encrypt.event.key_arn.as_deref(), Some(meta.arn.as_str()), "a key id becomes its ARN");
    assert_eq!(encrypt.event.api, "aws");
    assert_eq!(encrypt.event.principal, "app");
    assert_eq!(encrypt.event.source.as_deref(), Some("127.0.0.1:4444"));
    assert_eq!((encrypt.event.node, encrypt.event.region.as_str()), (1, "test-1"));
    assert_eq!(encrypt.event.request_id, caller.request_id);
    assert_eq!(encrypt.event.time, "2023-11-14T22:13:20.000Z");
    assert_eq!(encrypt.event.encryption_context, ctx.clone().into_iter().collect());
    assert_eq!(decrypt.event.key_arn, None, "a symmetric Decrypt that failed names no key");
    assert_eq!(decrypt.event.encryption_context.get("tenant").map(String::as_str), Some("red"));
    assert_eq!(gdk.event.key_arn.as_deref(), Some(meta.arn.as_str()));
    assert_eq!(reencrypt.event.source_key_arn.as_deref(), Some(meta.arn.as_str()));
    assert_eq!(reencrypt.event.source_encryption_context, Some(ctx.into_iter().collect()));
    assert_eq!(refused.event.principal, "unauthenticated");
    assert_eq!(refused.event.key_arn, None);

    let text = std::fs::read(dir.path().join("audit.log")).unwrap();
    for secret in [&plaintext, &data_key.plaintext, &blob.ciphertext_blob, &data_key.ciphertext_blob] {
        for form in [secret.clone(), STANDARD.encode(secret).into_bytes()] {
            assert!(
                !text.windows(form.len()).any(|w| w == form.as_slice()),
                "a secret reached the audit log"
            );
        }
    }
}

#[tokio::test]
async fn a_full_queue_refuses_before_the_operation_runs_and_cancelled_requests_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (kms, log) = audited_node(dir.path(), 1).await;
    let caller = Caller::new("app");

    // Someone holds the only place in the queue.
    let held = log.begin(kms_audit::AuditEvent::default()).unwrap();
    let err = kms
        .audited(Api::Grpc, "CreateKey", &caller, pb::CreateKeyRequest::default(), |r| {
            kms.create_key(&caller, r)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind.name(), "DependencyTimeoutException");
    drop(held);
    let keys = kms.list_keys(&caller, pb::ListKeysRequest::default()).await.unwrap();
    assert!(keys.keys.is_empty(), "the refused CreateKey did not run");

    // A request whose future is dropped half-way (the client went away), once the queue has
    // room again.
    tokio::time::timeout(Duration::from_secs(10), log.flush()).await.unwrap();
    let never = kms.audited(Api::Grpc, "Encrypt", &caller, pb::EncryptRequest::default(), |_r| {
        std::future::pending::<kms_core::KmsResult<pb::EncryptResponse>>()
    });
    assert!(tokio::time::timeout(Duration::from_millis(20), never).await.is_err());

    let records = records(dir.path(), &log).await;
    let outcomes: Vec<_> =
        records.iter().map(|r| (r.event.operation.as_str(), r.event.outcome.as_str())).collect();
    assert_eq!(outcomes, [("", "cancelled"), ("Encrypt", "cancelled")], "the refused request has no record");
}
