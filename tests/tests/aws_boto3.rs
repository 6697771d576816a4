//! Real AWS clients nobody here wrote, against the AWS endpoint of a real `kmsd dev`:
//! boto3 through every implemented operation (tests/aws/boto3_suite.py), and the AWS Encryption
//! SDK for Python on a 1 MiB message (tests/aws/encryption_sdk.py).
//!
//! Needs python3 with `boto3` and `aws-encryption-sdk` (`.ci/run` installs them). A missing
//! interpreter or package fails the test; it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::Node;

/// Runs `tests/aws/<script>` against `node`'s AWS endpoint; panics with its output unless it
/// exits 0 and prints a final line starting with `OK`. Returns stdout.
fn run_python(node: &Node, script: &str) -> String {
    let output = node.run_aws_script(script);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().last().is_some_and(|l| l.starts_with("OK")),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- kmsd log (tail)\n{}",
        output.status,
        tail(&node.log_text(), 40)
    );
    stdout
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test]
async fn boto3_drives_every_implemented_operation() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let stdout = run_python(&node, "boto3_suite.py");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("OK 54 operations:"), "{last}");
    // The log names operation, status and principal, and never a body or secret.
    let log = node.log_text();
    assert!(log.contains("operation=\"Encrypt\"") && log.contains("principal=\"dev\""), "{}", tail(&log, 20));
    assert!(!log.contains("attack at dawn") && !log.contains("YXR0YWNrIGF0IGRhd24"));
}

#[tokio::test]
async fn the_aws_encryption_sdk_round_trips_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let stdout = run_python(&node, "encryption_sdk.py");
    assert!(stdout.contains("encrypted and decrypted 1048576 bytes"), "{stdout}");
    let log = node.log_text();
    assert!(log.contains("operation=\"GenerateDataKey\"") && log.contains("operation=\"Decrypt\""));
}
