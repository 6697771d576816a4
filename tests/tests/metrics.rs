//! `GET /metrics` of a real node: per-operation counters by outcome, latency histograms and the
//! Raft gauges, with nothing request-specific in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Node, exception};
use kms_proto::v1 as pb;
use std::io::{Read as _, Write as _};

/// The value of the sample line `name` exactly (labels included), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_operations_by_outcome_and_show_raft_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut client = node.client().await;

    let mut key_ids = Vec::new();
    for description in ["metrics-a", "metrics-b"] {
        let request = pb::CreateKeyRequest { description: Some(description.into()), ..Default::default() };
        let meta = client.create_key(request).await.unwrap().into_inner().key_metadata.unwrap();
        key_ids.push(meta.key_id);
    }
    let plaintext = b"a plaintext that must never appear in the metrics".to_vec();
    let request =
        pb::EncryptRequest { key_id: key_ids[0].clone(), plaintext: plaintext.clone(), ..Default::default() };
    client.encrypt(request).await.unwrap();
    let missing = "alias/no-such-alias-in-metrics";
    let request = pb::DescribeKeyRequest { key_id: missing.into(), ..Default::default() };
    let err = client.describe_key(request).await.unwrap_err();
    assert_eq!(exception(&err), "NotFoundException");

    // One unsigned request to the AWS endpoint: refused by SigV4, counted under its operation.
    let mut aws = std::net::TcpStream::connect(node.aws_listen).unwrap();
    write!(
        aws,
        "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: TrentService.ListAliases\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        node.aws_listen
    )
    .unwrap();
    let mut answer = String::new();
    aws.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    let (status, content_type, text) = node.scrape_metrics();
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");

    let count = |labels: &str| sample(&text, &format!("kms_requests_total{{{labels}}}"));
    assert_eq!(count(r#"api="grpc",operation="CreateKey",outcome="ok""#), Some(2.0), "{text}");
    assert_eq!(count(r#"api="grpc",operation="Encrypt",outcome="ok""#), Some(1.0), "{text}");
    assert_eq!(
        count(r#"api="grpc",operation="DescribeKey",outcome="NotFoundException""#),
        Some(1.0),
        "{text}"
    );
    assert!(
        count(r#"api="grpc",operation="ListKeys",outcome="ok""#).unwrap_or(0.0) >= 1.0,
        "the harness's readiness probe"
    );
    let aws_refusals: f64 = text
        .lines()
        .filter(|l| l.starts_with(r#"kms_requests_total{api="aws",operation="ListAliases",outcome=""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(aws_refusals, 1.0, "{text}");

    let histogram = |suffix: &str| sample(&text, &format!(r#"kms_request_duration_seconds_{suffix}"#));
    assert_eq!(histogram(r#"count{api="grpc",operation="CreateKey"}"#), Some(2.0), "{text}");
    assert_eq!(histogram(r#"bucket{le="+Inf",api="grpc",operation="CreateKey"}"#), Some(2.0), "{text}");
    assert!(histogram(r#"sum{api="grpc",operation="CreateKey"}"#).unwrap() > 0.0);
    assert!(text.contains("# TYPE kms_request_duration_seconds histogram"), "{text}");

    assert_eq!(sample(&text, "kms_raft_is_leader"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "kms_raft_has_leader"), Some(1.0), "{text}");
    assert!(sample(&text, "kms_raft_term").unwrap() >= 1.0, "{text}");
    let applied = sample(&text, "kms_raft_applied_index").unwrap();
    assert!(applied >= 2.0, "two CreateKeys were applied: {text}");
    assert!(sample(&text, "kms_raft_last_log_index").unwrap() >= applied);
    assert!(sample(&text, "kms_raft_apply_lag").is_some());
    assert!(sample(&text, "kms_raft_snapshot_index").is_some());
    assert_eq!(sample(&text, "kms_raft_leader_changes_total"), Some(0.0), "{text}");

    // Nothing request-specific: no key id, alias, description or data.
    for secret in key_ids.iter().map(String::as_str).chain([missing, "metrics-a", "no-such-alias"]) {
        assert!(!text.contains(secret), "`{secret}` leaked into the metrics");
    }
    assert!(!text.contains("plaintext that must never"), "plaintext leaked into the metrics");

    let (status, _, _) = kms_e2e::http_get(node.metrics_listen, "/other");
    assert_eq!(status, 404);
}
