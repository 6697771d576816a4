//! `kmsctl encrypt-file` / `decrypt-file` against the real `kmsd dev`: a multi-chunk file round
//! trip through paths and through stdin/stdout, and the refusals: a flipped byte in the body or
//! the header, a cut at a chunk boundary, a wrong encryption context, the wrong key. A refused
//! decryption exits non-zero, says why, and leaves no output file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kms_e2e::{Node, binary};
use serde_json::Value;

const CHUNK: usize = 65536;
const TAG: usize = 16;

#[track_caller]
fn json(output: &Output) -> Value {
    assert!(output.status.success(), "kmsctl failed ({}): {}", output.status, stderr(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("kmsctl printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// 1 MiB and a bit of bytes that differ everywhere: 17 chunks of 64 KiB, the last one partial.
fn data() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..(1 << 20) + 4321)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// `kmsctl --endpoint <node> <args>` with `input` on its stdin.
fn kmsctl_piped(node: &Node, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(binary("kmsctl"))
        .args(["--endpoint", &node.endpoint()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kmsctl");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from another thread: kmsctl writes its output while it still reads.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Length of a message's header: fixed part, three length-prefixed fields, the tag.
fn header_len(message: &[u8]) -> usize {
    let mut at = 42;
    for _ in 0..3 {
        at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    }
    at + 32
}

/// Where the encrypted data key starts (after the key id and context fields and its length).
fn encrypted_data_key_at(message: &[u8]) -> usize {
    let mut at = 42;
    for _ in 0..2 {
        at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    }
    at + 2
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn encrypt_file_and_decrypt_file_round_trip_and_refuse_damage() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let created = json(&node.kmsctl(&["create-key", "--description", "envelope files"]));
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let arn = created["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    let other = json(&node.kmsctl(&["create-key"]));
    let other_key = other["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();

    let data = data();
    let plain = dir.path().join("data.bin");
    let sealed = dir.path().join("data.bin.kmse");
    let opened = dir.path().join("data.out");
    std::fs::write(&plain, &data).unwrap();

    // Paths: encrypt, then decrypt with the key and the exact context required.
    let summary = json(&node.kmsctl(&[
        "encrypt-file",
        "--key-id",
        &key_id,
        "--encryption-context",
        "app=e2e,purpose=files",
        "--in",
        path(&plain),
        "--out",
        path(&sealed),
    ]));
    assert_eq!(summary["KeyId"], arn.as_str());
    assert_eq!(summary["EncryptionContext"]["app"], "e2e");
    assert_eq!(summary["PlaintextBytes"], data.len());
    assert_eq!(summary["ChunkSize"], CHUNK);
    let message = std::fs::read(&sealed).unwrap();
    assert_eq!(summary["CiphertextBytes"], message.len());
    let chunks = data.len() / CHUNK + 1;
    assert_eq!(chunks, 17);
    assert_eq!(message.len(), header_len(&message) + data.len() + chunks * TAG);
    assert!(message.windows(arn.len()).any(|w| w == arn.as_bytes()), "the header names the key ARN");
    let probe = &data[..64];
    assert!(!message.windows(64).any(|w| w == probe), "no plaintext in the clear");

    let decrypted = json(&node.kmsctl(&[
        "decrypt-file",
        "--key-id",
        &key_id,
        "--encryption-context",
        "purpose=files",
        "--encryption-context",
        "app=e2e",
        "--in",
        path(&sealed),
        "--out",
        path(&opened),
    ]));
    assert_eq!(std::fs::read(&opened).unwrap(), data);
    assert_eq!(decrypted["KeyId"], arn.as_str());
    assert_eq!(decrypted["EncryptionContext"], serde_json::json!({"app": "e2e", "purpose": "files"}));
    assert_eq!(decrypted["PlaintextBytes"], data.len());

    // stdin/stdout both ways, with a smaller chunk size; no JSON on stdout then.
    let piped = kmsctl_piped(
        &node,
        &["encrypt-file", "--key-id", &key_id, "--chunk-size", "4096", "--in", "-", "--out", "-"],
        &data,
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout.len(), header_len(&piped.stdout) + data.len() + (data.len() / 4096 + 1) * TAG);
    let back = kmsctl_piped(&node, &["decrypt-file", "--in", "-", "--out", "-"], &piped.stdout);
    assert!(back.status.success(), "{}", stderr(&back));
    assert!(back.stdout == data, "stdin/stdout round trip differs");
    // The file written through a path decrypts from stdin too.
    let mixed = kmsctl_piped(&node, &["decrypt-file", "--in", "-", "--out", path(&opened)], &message);
    assert!(mixed.status.success(), "{}", stderr(&mixed));
    assert_eq!(std::fs::read(&opened).unwrap(), data);
    std::fs::remove_file(&opened).unwrap();

    let refused = |damaged: &[u8], extra: &[&str]| -> Output {
        let file = dir.path().join("damaged.kmse");
        std::fs::write(&file, damaged).unwrap();
        let mut args = vec!["decrypt-file", "--in", path(&file), "--out", path(&opened)];
        args.extend_from_slice(extra);
        let output = node.kmsctl(&args);
        assert!(!output.status.success(), "accepted: {args:?}");
        assert!(!opened.exists(), "a refused file leaves no output");
        let partial = std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial"));
        assert!(!partial, "the temporary output is removed");
        output
    };

    // A flipped byte in the body (chunk 9): refused, with the chunk named.
    let mut flipped = message.clone();
    let in_chunk_9 = header_len(&message) + 9 * (CHUNK + TAG) + 1000;
    flipped[in_chunk_9] ^= 0x01;
    let out = refused(&flipped, &[]);
    assert_eq!(out.status.code(), Some(255));
    let text = stderr(&out);
    assert!(text.contains("chunk 9 of the message does not authenticate"), "{text}");
    assert!(text.contains("Nothing was written to") && text.contains("tampered"), "{text}");

    // A flipped byte in the header's key id: KMS decrypts the data key, the header tag fails.
    let mut flipped = message.clone();
    flipped[44 + 10] ^= 0x20;
    let text = stderr(&refused(&flipped, &[]));
    assert!(text.contains("header does not authenticate"), "{text}");

    // A flipped byte in the encrypted data key: KMS refuses it.
    let mut flipped = message.clone();
    flipped[encrypted_data_key_at(&message) + 20] ^= 0x80;
    let out = refused(&flipped, &[]);
    assert_eq!(out.status.code(), Some(254));
    assert!(
        stderr(&out).contains("(InvalidCiphertextException) when calling the Decrypt operation"),
        "{}",
        stderr(&out)
    );

    // Cut at a chunk boundary: the final chunk is missing.
    let cut = header_len(&message) + 5 * (CHUNK + TAG);
    let text = stderr(&refused(&message[..cut], &[]));
    assert!(text.contains("ends after 5 chunk(s) without its final chunk"), "{text}");
    // Cut right after the header.
    let text = stderr(&refused(&message[..header_len(&message)], &[]));
    assert!(text.contains("ends after 0 chunk(s)"), "{text}");

    // A wrong or incomplete encryption context: refused before KMS is asked.
    for context in ["app=other,purpose=files", "app=e2e"] {
        let out = refused(&message, &["--encryption-context", context]);
        assert_eq!(out.status.code(), Some(255));
        let text = stderr(&out);
        assert!(text.contains("encryption context differs"), "{text}");
        assert!(text.contains("Hint: pass the --encryption-context"), "{text}");
    }

    // The wrong key: KMS answers IncorrectKeyException.
    let out = refused(&message, &["--key-id", &other_key]);
    assert_eq!(out.status.code(), Some(254));
    assert!(stderr(&out).contains("IncorrectKeyException"), "{}", stderr(&out));

    // A file that is no message at all.
    let text = stderr(&refused(b"just some text, long enough to be a header?", &[]));
    assert!(text.contains("does not start with the envelope magic bytes"), "{text}");

    // Refused to stdout: the error says the plaintext written so far must be discarded.
    let mut flipped = message.clone();
    flipped[in_chunk_9] ^= 0x01;
    let out = kmsctl_piped(&node, &["decrypt-file", "--in", "-", "--out", "-"], &flipped);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(out.stdout, data[..9 * CHUNK], "only the chunks before the damage were released");
    assert!(stderr(&out).contains("discard it"), "{}", stderr(&out));

    // Encryption errors keep KMS's exception: a key that does not exist.
    let out = node.kmsctl(&[
        "encrypt-file",
        "--key-id",
        "alias/missing",
        "--in",
        path(&plain),
        "--out",
        path(&opened),
    ]);
    assert_eq!(out.status.code(), Some(254));
    assert!(
        stderr(&out).contains("(NotFoundException) when calling the GenerateDataKey operation"),
        "{}",
        stderr(&out)
    );
    assert!(!opened.exists());
    // And a bad chunk size is a usage error.
    let out = node.kmsctl(&[
        "encrypt-file",
        "--key-id",
        &key_id,
        "--chunk-size",
        "0",
        "--in",
        path(&plain),
        "--out",
        path(&opened),
    ]);
    assert_eq!(out.status.code(), Some(252), "{}", stderr(&out));
}
