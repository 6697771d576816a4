//! The README's tour, through the real `kmsctl` against the real `kmsd`: create a key, encrypt,
//! decrypt, generate a data key, rotate, disable (Encrypt then fails with DisabledException),
//! schedule deletion. Every step's output is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kms_e2e::Node;
use serde_json::Value;
use std::process::Output;

#[track_caller]
fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "kmsctl failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("kmsctl printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
    })
}

#[tokio::test]
async fn kmsctl_tour() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;

    // create-key
    let created = json(&node.kmsctl(&["create-key", "--description", "tour key"]));
    let metadata = &created["KeyMetadata"];
    let key_id = metadata["KeyId"].as_str().unwrap().to_string();
    assert_eq!(metadata["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(metadata["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(metadata["KeyState"], "Enabled");
    assert_eq!(metadata["Enabled"], true);
    assert_eq!(metadata["Description"], "tour key");
    assert_eq!(metadata["Arn"], format!("arn:aws:kms:dev-1:000000000000:key/{key_id}"));

    // encrypt a file, with an encryption context
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"the eagle lands at noon").unwrap();
    let fileb = format!("fileb://{}", secret.display());
    let encrypted = json(&node.kmsctl(&[
        "encrypt",
        "--key-id",
        &key_id,
        "--plaintext",
        &fileb,
        "--encryption-context",
        "app=tour",
    ]));
    assert_eq!(encrypted["KeyId"], metadata["Arn"]);
    assert_eq!(encrypted["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = B64.decode(encrypted["CiphertextBlob"].as_str().unwrap()).unwrap();
    let blob_file = dir.path().join("secret.enc");
    std::fs::write(&blob_file, &blob).unwrap();
    let blob_arg = format!("fileb://{}", blob_file.display());

    // decrypt it back (no key id needed), and with the wrong context it fails
    let decrypted =
        json(&node.kmsctl(&["decrypt", "--ciphertext-blob", &blob_arg, "--encryption-context", "app=tour"]));
    assert_eq!(B64.decode(decrypted["Plaintext"].as_str().unwrap()).unwrap(), b"the eagle lands at noon");
    assert_eq!(decrypted["KeyId"], metadata["Arn"]);
    let wrong =
        node.kmsctl(&["decrypt", "--ciphertext-blob", &blob_arg, "--encryption-context", "app=other"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("InvalidCiphertextException"));

    // generate-data-key: a 32-byte key and its encrypted copy, which decrypts to the same key
    let data_key = json(&node.kmsctl(&["generate-data-key", "--key-id", &key_id, "--key-spec", "AES_256"]));
    let plaintext_key = B64.decode(data_key["Plaintext"].as_str().unwrap()).unwrap();
    assert_eq!(plaintext_key.len(), 32);
    let wrapped = data_key["CiphertextBlob"].as_str().unwrap();
    let unwrapped = json(&node.kmsctl(&["decrypt", "--ciphertext-blob", wrapped]));
    assert_eq!(B64.decode(unwrapped["Plaintext"].as_str().unwrap()).unwrap(), plaintext_key);

    // rotate: new ciphertexts use the new material, old ones still decrypt
    let rotated = json(&node.kmsctl(&["rotate-key-on-demand", "--key-id", &key_id]));
    assert_eq!(rotated["KeyId"], key_id.as_str(), "AWS answers the bare key id here");
    let rotations = json(&node.kmsctl(&["list-key-rotations", "--key-id", &key_id]));
    assert_eq!(rotations["Rotations"].as_array().unwrap().len(), 1);
    assert_eq!(rotations["Rotations"][0]["RotationType"], "ON_DEMAND");
    let old =
        json(&node.kmsctl(&["decrypt", "--ciphertext-blob", &blob_arg, "--encryption-context", "app=tour"]));
    assert_eq!(B64.decode(old["Plaintext"].as_str().unwrap()).unwrap(), b"the eagle lands at noon");
    let new_blob =
        json(&node.kmsctl(&["encrypt", "--key-id", &key_id, "--plaintext", &B64.encode("after rotation")]));
    assert_ne!(new_blob["CiphertextBlob"], encrypted["CiphertextBlob"]);
    let enabled =
        node.kmsctl(&["enable-key-rotation", "--key-id", &key_id, "--rotation-period-in-days", "90"]);
    assert!(enabled.status.success() && enabled.stdout.is_empty(), "{enabled:?}");
    let status = json(&node.kmsctl(&["get-key-rotation-status", "--key-id", &key_id]));
    assert_eq!(status["KeyRotationEnabled"], true);
    assert_eq!(status["RotationPeriodInDays"], 90);

    // disable: Encrypt now fails with DisabledException
    let disabled = node.kmsctl(&["disable-key", "--key-id", &key_id]);
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    assert!(disabled.stdout.is_empty(), "DisableKey has no output");
    let refused = node.kmsctl(&["encrypt", "--key-id", &key_id, "--plaintext", &fileb]);
    assert_eq!(refused.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("(DisabledException)") && stderr.contains("Encrypt"), "{stderr}");
    let described = json(&node.kmsctl(&["describe-key", "--key-id", &key_id]));
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");

    // schedule deletion: 7 days, the ARN and the date come back
    let scheduled =
        json(&node.kmsctl(&["schedule-key-deletion", "--key-id", &key_id, "--pending-window-in-days", "7"]));
    assert_eq!(scheduled["KeyId"], metadata["Arn"]);
    assert_eq!(scheduled["KeyState"], "PendingDeletion");
    assert_eq!(scheduled["PendingWindowInDays"], 7);
    assert!(scheduled["DeletionDate"].as_str().is_some_and(|d| d.starts_with("20")), "{scheduled}");
    let listed = json(&node.kmsctl(&["list-keys"]));
    assert!(listed["Keys"].as_array().unwrap().iter().any(|k| k["KeyId"] == key_id.as_str()));
}
