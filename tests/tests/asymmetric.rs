//! Asymmetric keys end to end against a real node: signatures verify with OpenSSL using the DER
//! public key from GetPublicKey, OpenSSL's OAEP ciphertexts decrypt in the KMS, data key pairs
//! round-trip, bad input gets AWS's exceptions, and RSA key generation does not stall the node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, Node, exception};
use kms_proto::v1 as pb;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

async fn create(client: &mut Client, spec: pb::KeySpec, usage: pb::KeyUsage) -> String {
    let request =
        pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
    client.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id
}

async fn public_key(client: &mut Client, key_id: &str) -> pb::GetPublicKeyResponse {
    let request = pb::GetPublicKeyRequest { key_id: key_id.into(), ..Default::default() };
    client.get_public_key(request).await.unwrap().into_inner()
}

fn sign_request(key_id: &str, algorithm: pb::SigningAlgorithmSpec, message: &[u8]) -> pb::SignRequest {
    pb::SignRequest {
        key_id: key_id.into(),
        message: message.to_vec(),
        signing_algorithm: algorithm.into(),
        ..Default::default()
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().expect("openssl must be installed for this test")
}

/// `openssl dgst -verify` with our DER public key: an implementation nobody here wrote.
fn openssl_verifies(
    dir: &Path,
    public_der: &[u8],
    digest: &str,
    extra: &[&str],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let (key, msg, sig) = (dir.join("pub.der"), dir.join("msg.bin"), dir.join("sig.bin"));
    std::fs::write(&key, public_der).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let mut args = vec!["dgst", digest, "-verify", key.to_str().unwrap(), "-keyform", "DER"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-signature", sig.to_str().unwrap(), msg.to_str().unwrap()]);
    let output = openssl(&args);
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("Verified OK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_oaep_interoperate_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    let message = b"release v1.2.3 sha256 4f2a...".to_vec();
    use pb::SigningAlgorithmSpec as S;

    let cases: &[(pb::KeySpec, S, &str, &[&str])] = &[
        (pb::KeySpec::EccNistP256, S::EcdsaSha256, "-sha256", &[]),
        (pb::KeySpec::EccNistP384, S::EcdsaSha384, "-sha384", &[]),
        (pb::KeySpec::EccNistP521, S::EcdsaSha512, "-sha512", &[]),
        (pb::KeySpec::EccSecgP256k1, S::EcdsaSha256, "-sha256", &[]),
        (pb::KeySpec::Rsa2048, S::RsassaPkcs1V15Sha256, "-sha256", &[]),
        (
            pb::KeySpec::Rsa2048,
            S::RsassaPssSha256,
            "-sha256",
            &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
        ),
    ];
    for (spec, algorithm, digest, extra) in cases {
        let key = create(&mut c, *spec, pb::KeyUsage::SignVerify).await;
        let public = public_key(&mut c, &key).await;
        assert_eq!(public.key_spec, i32::from(*spec));
        assert!(public.signing_algorithms.contains(&i32::from(*algorithm)));
        let signature =
            c.sign(sign_request(&key, *algorithm, &message)).await.unwrap().into_inner().signature;
        assert!(
            openssl_verifies(dir.path(), &public.public_key, digest, extra, &message, &signature),
            "OpenSSL rejected a {spec:?} {algorithm:?} signature"
        );
        // And the KMS verifies it too; a changed message is an exception, never a false flag.
        let verify = |message: &[u8]| pb::VerifyRequest {
            key_id: key.clone(),
            message: message.to_vec(),
            signature: signature.clone(),
            signing_algorithm: (*algorithm).into(),
            ..Default::default()
        };
        assert!(c.verify(verify(&message)).await.unwrap().into_inner().signature_valid);
        let status = c.verify(verify(b"another message")).await.unwrap_err();
        assert_eq!(exception(&status), "KMSInvalidSignatureException");
    }

    // Ed25519: verified with OpenSSL's raw Ed25519 (no digest option).
    let ed = create(&mut c, pb::KeySpec::EccNistEdwards25519, pb::KeyUsage::SignVerify).await;
    let public = public_key(&mut c, &ed).await;
    let signature =
        c.sign(sign_request(&ed, S::Ed25519Sha512, &message)).await.unwrap().into_inner().signature;
    let (key_file, msg_file, sig_file) =
        (dir.path().join("ed.der"), dir.path().join("m"), dir.path().join("s"));
    std::fs::write(&key_file, &public.public_key).unwrap();
    std::fs::write(&msg_file, &message).unwrap();
    std::fs::write(&sig_file, &signature).unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        key_file.to_str().unwrap(),
        "-keyform",
        "DER",
        "-rawin",
        "-in",
        msg_file.to_str().unwrap(),
        "-sigfile",
        sig_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "OpenSSL rejected the Ed25519 signature: {out:?}");

    // RSA-OAEP: OpenSSL encrypts with the public key offline, the KMS decrypts.
    let rsa = create(&mut c, pb::KeySpec::Rsa2048, pb::KeyUsage::EncryptDecrypt).await;
    let public = public_key(&mut c, &rsa).await;
    std::fs::write(dir.path().join("rsa.der"), &public.public_key).unwrap();
    std::fs::write(dir.path().join("plain"), b"offline secret").unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        dir.path().join("rsa.der").to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        dir.path().join("plain").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let decrypt = pb::DecryptRequest {
        key_id: Some(rsa.clone()),
        ciphertext_blob: out.stdout,
        encryption_algorithm: pb::EncryptionAlgorithmSpec::RsaesOaepSha256.into(),
        ..Default::default()
    };
    assert_eq!(c.decrypt(decrypt).await.unwrap().into_inner().plaintext, b"offline secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_bad_input_gets_aws_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    use pb::SigningAlgorithmSpec as S;
    let ecc = create(&mut c, pb::KeySpec::EccNistP256, pb::KeyUsage::SignVerify).await;
    let other = create(&mut c, pb::KeySpec::EccNistP256, pb::KeyUsage::SignVerify).await;
    let rsa = create(&mut c, pb::KeySpec::Rsa2048, pb::KeyUsage::EncryptDecrypt).await;
    let agreement = create(&mut c, pb::KeySpec::EccNistP256, pb::KeyUsage::KeyAgreement).await;

    // DIGEST of the wrong length.
    let mut digest = sign_request(&ecc, S::EcdsaSha256, &[0u8; 31]);
    digest.message_type = pb::MessageType::Digest.into();
    assert_eq!(exception(&c.sign(digest).await.unwrap_err()), "ValidationException");
    // Sign with an ENCRYPT_DECRYPT key; an algorithm the key does not offer.
    let status = c.sign(sign_request(&rsa, S::RsassaPssSha256, b"m")).await.unwrap_err();
    assert_eq!(exception(&status), "InvalidKeyUsageException");
    let status = c.sign(sign_request(&ecc, S::EcdsaSha384, b"m")).await.unwrap_err();
    assert_eq!(exception(&status), "InvalidKeyUsageException");
    // A signature from another key.
    let signature = c.sign(sign_request(&other, S::EcdsaSha256, b"m")).await.unwrap().into_inner().signature;
    let verify = pb::VerifyRequest {
        key_id: ecc.clone(),
        message: b"m".to_vec(),
        signature,
        signing_algorithm: S::EcdsaSha256.into(),
        ..Default::default()
    };
    assert_eq!(exception(&c.verify(verify).await.unwrap_err()), "KMSInvalidSignatureException");
    // OAEP plaintext one byte over the limit (RSA_2048 + SHA-256: 190 bytes).
    let encrypt = |len: usize| pb::EncryptRequest {
        key_id: rsa.clone(),
        plaintext: vec![1; len],
        encryption_algorithm: pb::EncryptionAlgorithmSpec::RsaesOaepSha256.into(),
        ..Default::default()
    };
    c.encrypt(encrypt(190)).await.unwrap();
    assert_eq!(exception(&c.encrypt(encrypt(191)).await.unwrap_err()), "ValidationException");
    // A truncated DER public key to DeriveSharedSecret.
    let peer = public_key(&mut c, &other).await.public_key;
    let derive = |public_key: Vec<u8>| pb::DeriveSharedSecretRequest {
        key_id: agreement.clone(),
        key_agreement_algorithm: pb::KeyAgreementAlgorithmSpec::Ecdh.into(),
        public_key,
        ..Default::default()
    };
    let secret = c.derive_shared_secret(derive(peer.clone())).await.unwrap().into_inner().shared_secret;
    assert_eq!(secret.len(), 32);
    let status = c.derive_shared_secret(derive(peer[..peer.len() - 5].to_vec())).await.unwrap_err();
    assert_eq!(exception(&status), "ValidationException");
    // KeySpec/KeyUsage mismatch at CreateKey; rotation and GetPublicKey refused where AWS refuses.
    let request = pb::CreateKeyRequest {
        key_spec: pb::KeySpec::EccSecgP256k1.into(),
        key_usage: pb::KeyUsage::KeyAgreement.into(),
        ..Default::default()
    };
    assert_eq!(exception(&c.create_key(request).await.unwrap_err()), "ValidationException");
    let rotation = pb::EnableKeyRotationRequest { key_id: ecc.clone(), rotation_period_in_days: None };
    assert_eq!(
        exception(&c.enable_key_rotation(rotation).await.unwrap_err()),
        "UnsupportedOperationException"
    );
    let symmetric = create(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::Unspecified).await;
    let request = pb::GetPublicKeyRequest { key_id: symmetric.clone(), ..Default::default() };
    assert_eq!(exception(&c.get_public_key(request).await.unwrap_err()), "UnsupportedOperationException");

    // Data key pairs: the encrypted private key decrypts to the plaintext one.
    let request = pb::GenerateDataKeyPairRequest {
        key_id: symmetric.clone(),
        key_pair_spec: pb::DataKeyPairSpec::EccNistP256.into(),
        encryption_context: [("purpose".to_string(), "test".to_string())].into(),
        ..Default::default()
    };
    let pair = c.generate_data_key_pair(request).await.unwrap().into_inner();
    assert_eq!(pair.key_pair_spec, i32::from(pb::DataKeyPairSpec::EccNistP256));
    let decrypt = pb::DecryptRequest {
        ciphertext_blob: pair.private_key_ciphertext_blob.clone(),
        encryption_context: [("purpose".to_string(), "test".to_string())].into(),
        ..Default::default()
    };
    assert_eq!(c.decrypt(decrypt).await.unwrap().into_inner().plaintext, pair.private_key_plaintext);
    let request = pb::GenerateDataKeyPairRequest {
        key_id: ecc.clone(),
        key_pair_spec: pb::DataKeyPairSpec::Rsa2048.into(),
        ..Default::default()
    };
    assert_eq!(exception(&c.generate_data_key_pair(request).await.unwrap_err()), "InvalidKeyUsageException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_key_generation_does_not_stall_other_requests() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let mut c = node.client().await;
    let symmetric = create(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::Unspecified).await;
    let mut slow = node.client().await;
    let started = Instant::now();
    let rsa =
        tokio::spawn(async move { create(&mut slow, pb::KeySpec::Rsa4096, pb::KeyUsage::SignVerify).await });
    let mut served = 0;
    while !rsa.is_finished() {
        let request =
            pb::EncryptRequest { key_id: symmetric.clone(), plaintext: b"x".to_vec(), ..Default::default() };
        c.encrypt(request).await.unwrap();
        served += 1;
    }
    let key = rsa.await.unwrap();
    eprintln!(
        "RSA-4096 CreateKey took {:?}; {served} Encrypt calls were served meanwhile",
        started.elapsed()
    );
    assert!(served >= 5, "only {served} requests were served while an RSA-4096 key was generated");
    let public = public_key(&mut c, &key).await;
    assert_eq!(public.key_spec, i32::from(pb::KeySpec::Rsa4096));
}
