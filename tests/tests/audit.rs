//! The audit log of a real `kmsd dev`: a varied workload over gRPC (generated client and
//! kmsctl) and the AWS endpoint (boto3, a forged signature, an unsigned request) appears in it
//! once per request, by request id; `kmsctl audit verify` accepts the log and names the line
//! where an edited, deleted or reordered record, or a cut tail (against the logged anchor),
//! breaks the chain; the chain continues across a restart; and no plaintext, data key, key
//! material, MAC, signature or random bytes of the test reach the audit log, kmsd's log or
//! `/metrics`.
//!
//! Needs python3 with `boto3` and `cryptography` for the AWS part.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_audit::AuditRecord;
use kms_e2e::{Client, Node, binary, exception};
use kms_proto::v1 as pb;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use tonic::{Response, Status};

/// What the test sent and handled: the request ids it was answered with, and every secret.
#[derive(Default)]
struct Workload {
    request_ids: Vec<String>,
    secrets: Vec<Vec<u8>>,
}

impl Workload {
    /// Notes the request id of a gRPC answer (kmsd returns it on successes and failures).
    fn track<T>(&mut self, result: Result<Response<T>, Status>) -> Result<T, Status> {
        let metadata = match &result {
            Ok(response) => response.metadata(),
            Err(status) => status.metadata(),
        };
        let id = metadata.get("x-kms-request-id").expect("every answer carries its request id");
        self.request_ids.push(id.to_str().unwrap().to_string());
        result.map(Response::into_inner)
    }

    fn secret(&mut self, value: &[u8]) -> Vec<u8> {
        self.secrets.push(value.to_vec());
        value.to_vec()
    }
}

fn context(via: &str) -> HashMap<String, String> {
    HashMap::from([("purpose".to_string(), "audit-e2e".to_string()), ("via".to_string(), via.to_string())])
}

async fn create_key(
    c: &mut Client,
    w: &mut Workload,
    spec: pb::KeySpec,
    usage: pb::KeyUsage,
) -> pb::KeyMetadata {
    let request =
        pb::CreateKeyRequest { key_spec: spec as i32, key_usage: usage as i32, ..Default::default() };
    w.track(c.create_key(request).await).unwrap().key_metadata.unwrap()
}

/// Requests over the generated gRPC client. Returns the symmetric key.
async fn grpc_workload(c: &mut Client, w: &mut Workload) -> pb::KeyMetadata {
    use pb::{KeySpec, KeyUsage};
    let key = create_key(c, w, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt).await;
    let plaintext = w.secret(b"grpc plaintext for the audit test 19be4c");
    let request = pb::EncryptRequest {
        key_id: key.key_id.clone(),
        plaintext: plaintext.clone(),
        encryption_context: context("grpc"),
        ..Default::default()
    };
    let blob = w.track(c.encrypt(request).await).unwrap().ciphertext_blob;
    let decrypt = |ctx: HashMap<String, String>| pb::DecryptRequest {
        ciphertext_blob: blob.clone(),
        encryption_context: ctx,
        ..Default::default()
    };
    assert_eq!(w.track(c.decrypt(decrypt(context("grpc"))).await).unwrap().plaintext, plaintext);
    let wrong = w.track(c.decrypt(decrypt(HashMap::new())).await).unwrap_err();
    assert_eq!(exception(&wrong), "InvalidCiphertextException");
    let request = pb::GenerateDataKeyRequest {
        key_id: key.key_id.clone(),
        key_spec: pb::DataKeySpec::Aes256 as i32,
        ..Default::default()
    };
    let data_key = w.track(c.generate_data_key(request).await).unwrap();
    w.secret(&data_key.plaintext);
    let random = w.track(
        c.generate_random(pb::GenerateRandomRequest { number_of_bytes: Some(32), ..Default::default() })
            .await,
    );
    w.secret(&random.unwrap().plaintext);

    let hmac = create_key(c, w, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac).await;
    let message = w.secret(b"mac message for the audit test e07d");
    let mac_algorithm = pb::MacAlgorithmSpec::HmacSha256 as i32;
    let request = pb::GenerateMacRequest {
        message: message.clone(),
        key_id: hmac.key_id.clone(),
        mac_algorithm,
        ..Default::default()
    };
    let mac = w.track(c.generate_mac(request).await).unwrap().mac;
    w.secret(&mac);
    let request =
        pb::VerifyMacRequest { message, key_id: hmac.key_id, mac_algorithm, mac, ..Default::default() };
    assert!(w.track(c.verify_mac(request).await).unwrap().mac_valid);

    let signing = create_key(c, w, KeySpec::EccNistP256, KeyUsage::SignVerify).await;
    let message = w.secret(b"message to sign for the audit test 4b2e");
    let signing_algorithm = pb::SigningAlgorithmSpec::EcdsaSha256 as i32;
    let request = pb::SignRequest {
        key_id: signing.key_id.clone(),
        message: message.clone(),
        signing_algorithm,
        ..Default::default()
    };
    let signature = w.track(c.sign(request).await).unwrap().signature;
    w.secret(&signature);
    let request = pb::VerifyRequest {
        key_id: signing.key_id,
        message,
        signature,
        signing_algorithm,
        ..Default::default()
    };
    assert!(w.track(c.verify(request).await).unwrap().signature_valid);

    let missing = pb::DescribeKeyRequest { key_id: "alias/audit-missing".into(), ..Default::default() };
    assert_eq!(exception(&w.track(c.describe_key(missing).await).unwrap_err()), "NotFoundException");
    w.track(c.disable_key(pb::DisableKeyRequest { key_id: key.key_id.clone() }).await).unwrap();
    let request = pb::EncryptRequest { key_id: key.key_id.clone(), plaintext, ..Default::default() };
    assert_eq!(exception(&w.track(c.encrypt(request).await).unwrap_err()), "DisabledException");
    w.track(c.enable_key(pb::EnableKeyRequest { key_id: key.key_id.clone() }).await).unwrap();
    key
}

/// Two kmsctl calls (their ids are not printed: they are found by what they carried).
fn kmsctl_workload(node: &Node, w: &mut Workload, key_id: &str) {
    let plaintext = w.secret(b"kmsctl plaintext for the audit test a4c2");
    let encoded = STANDARD.encode(&plaintext);
    let args = ["encrypt", "--key-id", key_id, "--plaintext", &encoded, "--encryption-context", "via=kmsctl"];
    let out = node.kmsctl(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = node.kmsctl(&["generate-data-key", "--key-id", key_id, "--key-spec", "AES_256"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    w.secret(&STANDARD.decode(json["Plaintext"].as_str().unwrap()).unwrap());
}

/// tests/aws/audit_workload.py against the AWS endpoint.
fn aws_workload(node: &Node, w: &mut Workload) {
    let output = node.run_aws_script("audit_workload.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "audit_workload.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for id in result["request_ids"].as_array().unwrap() {
        w.request_ids.push(id.as_str().unwrap().to_string());
    }
    for secret in result["secrets"].as_array().unwrap() {
        w.secret(&STANDARD.decode(secret.as_str().unwrap()).unwrap());
    }
}

fn records(path: &Path) -> Vec<AuditRecord> {
    let text = std::fs::read(path).unwrap();
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| AuditRecord::from_line(l).unwrap())
        .collect()
}

fn audit_verify(file: &Path, extra: &[&str]) -> Output {
    Command::new(binary("kmsctl")).args(["audit", "verify"]).arg(file).args(extra).output().unwrap()
}

/// Runs `kmsctl audit verify` on `lines` (written to a scratch file) and returns its stderr,
/// asserting that it failed.
fn tampered(dir: &Path, lines: &[&str], extra: &[&str]) -> String {
    let path = dir.join("tampered.log");
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = audit_verify(&path, extra);
    assert!(!out.status.success(), "a tampered log verified: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Panics if any secret occurs in `haystack` raw, in base64 or in hex.
fn assert_no_secret(name: &str, haystack: &[u8], secrets: &[Vec<u8>]) {
    for secret in secrets {
        for form in [secret.clone(), STANDARD.encode(secret).into_bytes(), hex(secret).into_bytes()] {
            assert!(
                !haystack.windows(form.len()).any(|w| w == form.as_slice()),
                "a secret of the test ({}) occurs in {name}",
                String::from_utf8_lossy(&form)
            );
        }
    }
}

#[tokio::test]
async fn every_request_is_audited_once_the_chain_detects_tampering_and_no_secret_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("node")).await;
    let audit_log = node.data_dir.join("audit.log");
    let mut client = node.client().await;
    let mut w = Workload::default();

    let key = grpc_workload(&mut client, &mut w).await;
    kmsctl_workload(&node, &mut w, &key.key_id);
    aws_workload(&node, &mut w);
    let (_, _, metrics) = node.scrape_metrics();
    node.stop();

    // Every request the test saw is in the log exactly once; no request id is there twice.
    let all = records(&audit_log);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for record in &all {
        *count.entry(record.event.request_id.as_str()).or_default() += 1;
    }
    for id in &w.request_ids {
        assert_eq!(count.get(id.as_str()), Some(&1), "request {id} must be recorded exactly once");
    }
    assert!(count.values().all(|n| *n == 1), "a request id recorded twice");
    assert_eq!(w.request_ids.len(), 16 + 12, "gRPC and AWS requests tracked by id");
    let via = |v: &str, op: &str| {
        all.iter()
            .filter(|r| {
                r.event.operation == op && r.event.encryption_context.get("via").is_some_and(|x| x == v)
            })
            .count()
    };
    assert_eq!(via("kmsctl", "Encrypt"), 1, "kmsctl's Encrypt");
    assert_eq!(all.iter().filter(|r| r.event.operation == "GenerateDataKey").count(), 3, "gRPC, kmsctl, AWS");

    // What a record says.
    let encrypt = all.iter().find(|r| r.event.operation == "Encrypt" && r.event.api == "grpc").unwrap();
    assert_eq!(encrypt.event.key_arn.as_deref(), Some(key.arn.as_str()));
    assert_eq!(encrypt.event.encryption_context, context("grpc").into_iter().collect());
    assert_eq!(
        (encrypt.event.outcome.as_str(), encrypt.event.node, encrypt.event.region.as_str()),
        ("ok", 1, "dev-1")
    );
    assert!(encrypt.event.source.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:")), "{encrypt:?}");
    assert!(!encrypt.event.principal.is_empty());
    let outcome_of = |op: &str, api: &str, outcome: &str| {
        all.iter().any(|r| r.event.operation == op && r.event.api == api && r.event.outcome == outcome)
    };
    assert!(outcome_of("Encrypt", "grpc", "DisabledException"));
    assert!(outcome_of("DescribeKey", "aws", "NotFoundException"));
    assert!(outcome_of("ImportKeyMaterial", "aws", "ok"));
    let forged = all.iter().find(|r| r.event.outcome == "InvalidSignatureException").unwrap();
    assert_eq!(
        (forged.event.operation.as_str(), forged.event.principal.as_str()),
        ("ListKeys", "unauthenticated")
    );
    let unsigned = all.iter().find(|r| r.event.operation == "ListAliases" && r.event.api == "aws").unwrap();
    assert_eq!(unsigned.event.principal, "unauthenticated");
    assert_ne!(unsigned.event.outcome, "ok");

    // The metrics count them; the shutdown logged the chain head as an anchor.
    let sample = |name: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    assert!(sample("kms_audit_records_written_total").unwrap() > 0.0, "{metrics}");
    assert_eq!(sample("kms_audit_records_dropped_total"), Some(0.0), "{metrics}");
    let last = all.last().unwrap();
    let anchor = format!("{}:{}", last.seq, last.hash);
    let log = node.log_text();
    assert!(
        log.lines().any(|l| l.contains("audit chain head") && l.contains(&anchor)),
        "no anchor {anchor} in:\n{log}"
    );

    // kmsctl audit verify: intact, against the anchor too.
    let out = audit_verify(&audit_log, &["--anchor", &anchor]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("\"Records\": {}", all.len())), "{stdout}");

    // Tampering, one way at a time, is found at its line.
    let text = std::fs::read_to_string(&audit_log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = all.iter().position(|r| std::ptr::eq(r, encrypt)).unwrap();
    let line = at + 1;
    let mut edited = lines.clone();
    let changed = lines[at].replace(r#""outcome":"ok""#, r#""outcome":"AccessDeniedException""#);
    edited[at] = &changed;
    let stderr = tampered(dir.path(), &edited, &[]);
    assert!(stderr.contains(&format!("chain breaks at line {line}: hash does not match")), "{stderr}");
    let mut deleted = lines.clone();
    deleted.remove(at);
    let stderr = tampered(dir.path(), &deleted, &[]);
    assert!(stderr.contains(&format!("chain breaks at line {line}: seq is")), "{stderr}");
    let mut swapped = lines.clone();
    swapped.swap(at, at + 1);
    let stderr = tampered(dir.path(), &swapped, &[]);
    assert!(stderr.contains(&format!("chain breaks at line {line}:")), "{stderr}");
    let stderr = tampered(dir.path(), &lines[..lines.len() - 2], &["--anchor", &anchor]);
    assert!(stderr.contains(&format!("chain breaks at line {}:", lines.len() - 1)), "{stderr}");
    assert!(stderr.contains("tail was cut off"), "{stderr}");

    // Nothing secret in the audit log, kmsd's log or the metrics.
    assert_no_secret("the audit log", text.as_bytes(), &w.secrets);
    assert_no_secret("kmsd's log", log.as_bytes(), &w.secrets);
    assert_no_secret("/metrics", metrics.as_bytes(), &w.secrets);

    // After a restart the chain continues from the last record.
    node.restart().await;
    let mut client = node.client().await;
    let request = pb::DescribeKeyRequest { key_id: key.key_id.clone(), ..Default::default() };
    let after = w.track(client.describe_key(request).await).unwrap();
    assert_eq!(after.key_metadata.unwrap().arn, key.arn);
    node.stop();
    let resumed = records(&audit_log);
    assert_eq!(resumed[all.len()].seq, last.seq + 1);
    assert_eq!(resumed[all.len()].prev_hash, last.hash);
    let id = w.request_ids.last().unwrap();
    assert_eq!(resumed.iter().filter(|r| &r.event.request_id == id).count(), 1);
    let out = audit_verify(&audit_log, &["--anchor", &anchor]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
