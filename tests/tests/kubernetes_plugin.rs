//! The Kubernetes KMS v2 plugin of a real `kmsd run` node with a `[kubernetes]` section, driven
//! over its unix socket by a Python gRPC client generated at test time (grpcio-tools) from the
//! upstream `k8s.io/kms/apis/v2/api.proto` (tests/k8s/kms_v2_client.py checks the vendored copy's
//! SHA-256 against the upstream file's): Status, Encrypt and Decrypt across a RotateKeyOnDemand
//! of the backing key and across a restart, plus the upstream contract's limits.
//!
//! Needs python3 with `grpcio-tools` (`.ci/run` installs it). A missing interpreter or package
//! fails the test; it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Cluster, ClusterNode, TEST_RAFT_TUNING};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PLUGIN: &str = "[kubernetes]\nsocket = \"{node_dir}/kms-plugin.sock\"\nkey_id = \"alias/kubernetes\"\n";

fn socket(node: &ClusterNode) -> PathBuf {
    node.dir.join("kms-plugin.sock")
}

/// Runs one phase of tests/k8s/kms_v2_client.py; panics with its output unless it exits 0 and
/// prints a last line starting with `OK`. Returns that line.
fn run_client(node: &ClusterNode, state: &Path, phase: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("k8s/kms_v2_client.py"))
        .arg(phase)
        .env("KMS_PLUGIN_SOCKET", socket(node))
        .env("KMS_V2_PROTO", root.join("../proto/upstream/k8s.io/kms/apis/v2/api.proto"))
        .env("KMS_V2_STATE", state)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (install it, with grpcio-tools): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        output.status.success() && last.starts_with("OK"),
        "kms_v2_client.py {phase} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- kmsd log\n{}",
        output.status,
        node.log_text()
    );
    last
}

async fn wait_for_socket(node: &ClusterNode) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket(node).exists() {
        assert!(Instant::now() < deadline, "no plugin socket after 30 s; log:\n{}", node.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The backing key's id, from the alias the plugin created on first use.
fn backing_key(node: &ClusterNode) -> String {
    let out = node.kmsctl(&["describe-key", "--key-id", "alias/kubernetes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    described["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_upstream_generated_client_drives_the_plugin_across_rotation_and_restart() {
    let mut cluster = Cluster::start_with_config(1, TEST_RAFT_TUNING, PLUGIN).await;
    let state = cluster.node(1).dir.join("client-state.json");
    wait_for_socket(cluster.node(1)).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(socket(cluster.node(1))).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");

    // Status on a region without the alias: the plugin creates key and alias, and says so.
    let before = run_client(cluster.node(1), &state, "before");
    let log = cluster.node(1).log_text();
    assert!(log.contains("created a symmetric key for it"), "{log}");
    let key_id = backing_key(cluster.node(1));
    assert!(before.contains(&format!("key/{key_id}/v0")), "{before}");

    let rotated = cluster.node(1).kmsctl(&["rotate-key-on-demand", "--key-id", &key_id]);
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let after = run_client(cluster.node(1), &state, "after");
    assert!(
        after.contains(&format!("key/{key_id}/v0 -> ")) && after.ends_with("/v1, 10 seeds decrypt"),
        "{after}"
    );

    // SIGKILL leaves the socket file behind: the restarted node replaces it and serves again.
    cluster.node_mut(1).kill();
    assert!(socket(cluster.node(1)).exists(), "a killed node leaves its socket file");
    cluster.restart(1).await;
    wait_for_socket(cluster.node(1)).await;
    run_client(cluster.node(1), &state, "restart");
    let log = cluster.node(1).log_text();
    assert!(log.contains("removing the stale Kubernetes plugin socket"), "{log}");
    assert_eq!(backing_key(cluster.node(1)), key_id, "no second key was created");

    // The plugin's Encrypt and Decrypt calls are audited like any other request, as the plugin's
    // principal through the `kubernetes` front end.
    let audit = std::fs::read_to_string(cluster.node(1).data_dir().join("audit.log")).unwrap();
    let plugin_records: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|record| record["api"] == "kubernetes")
        .collect();
    for operation in ["Encrypt", "Decrypt"] {
        assert!(
            plugin_records.iter().any(|r| r["operation"] == operation && r["outcome"] == "ok"),
            "no audited plugin {operation} in:\n{audit}"
        );
    }
    assert!(plugin_records.iter().all(|r| r["principal"] == "kubernetes"), "{plugin_records:?}");
}
