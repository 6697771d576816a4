//! Imported key material (BYOK) end to end against a real node. The client side is OpenSSL (an
//! implementation nobody here wrote): `pkeyutl -encrypt` with OAEP for RSAES_OAEP_SHA_256, and
//! an ephemeral AES-256 key wrapped with OAEP followed by `enc -id-aes256-wrap-pad` (RFC 5649)
//! for RSA_AES_KEY_WRAP_SHA_256, as AWS documents. Also through kmsctl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_e2e::{Client, Node, exception, occurs_under};
use kms_proto::v1 as pb;
use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str]) -> Vec<u8> {
    let output =
        Command::new("openssl").args(args).output().expect("openssl must be installed for this test");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn random(n: usize) -> Vec<u8> {
    openssl(&["rand", &n.to_string()])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RSA-OAEP (SHA-256, MGF1-SHA-256) under the DER public key, by OpenSSL.
fn oaep_sha256(dir: &Path, public_der: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let (key, input, out) = (dir.join("wrap_pub.der"), dir.join("oaep_in.bin"), dir.join("oaep_out.bin"));
    std::fs::write(&key, public_der).unwrap();
    std::fs::write(&input, plaintext).unwrap();
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        key.to_str().unwrap(),
        "-in",
        input.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    std::fs::read(out).unwrap()
}

/// RSA_AES_KEY_WRAP_SHA_256 by OpenSSL: OAEP(ephemeral AES-256 key) || AES-KWP(key, material).
fn rsa_aes_key_wrap_sha256(dir: &Path, public_der: &[u8], material: &[u8]) -> Vec<u8> {
    let ephemeral = random(32);
    let (input, out) = (dir.join("kwp_in.bin"), dir.join("kwp_out.bin"));
    std::fs::write(&input, material).unwrap();
    openssl(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &hex(&ephemeral),
        "-iv",
        "A65959A6",
        "-in",
        input.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
    ]);
    let mut wrapped = oaep_sha256(dir, public_der, &ephemeral);
    assert_eq!(wrapped.len() * 8 % 1024, 0, "the RSA part is one modulus long");
    wrapped.extend_from_slice(&std::fs::read(out).unwrap());
    wrapped
}

async fn create_external(c: &mut Client, spec: pb::KeySpec, usage: pb::KeyUsage) -> pb::KeyMetadata {
    let request = pb::CreateKeyRequest {
        origin: pb::OriginType::External.into(),
        key_spec: spec.into(),
        key_usage: usage.into(),
        ..Default::default()
    };
    c.create_key(request).await.unwrap().into_inner().key_metadata.unwrap()
}

async fn describe(c: &mut Client, key_id: &str) -> pb::KeyMetadata {
    let request = pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() };
    c.describe_key(request).await.unwrap().into_inner().key_metadata.unwrap()
}

async fn parameters(
    c: &mut Client,
    key_id: &str,
    algorithm: pb::AlgorithmSpec,
    spec: pb::WrappingKeySpec,
) -> Result<pb::GetParametersForImportResponse, tonic::Status> {
    let request = pb::GetParametersForImportRequest {
        key_id: key_id.into(),
        wrapping_algorithm: algorithm.into(),
        wrapping_key_spec: spec.into(),
    };
    c.get_parameters_for_import(request).await.map(|r| r.into_inner())
}

async fn import(c: &mut Client, key_id: &str, token: &[u8], wrapped: &[u8]) -> Result<(), tonic::Status> {
    let request = pb::ImportKeyMaterialRequest {
        key_id: key_id.into(),
        import_token: token.to_vec(),
        encrypted_key_material: wrapped.to_vec(),
        expiration_model: pb::ExpirationModelType::KeyMaterialDoesNotExpire.into(),
        ..Default::default()
    };
    c.import_key_material(request).await.map(|_| ())
}

async fn encrypt(c: &mut Client, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    c.encrypt(request).await.map(|r| r.into_inner().ciphertext_blob)
}

async fn decrypt(c: &mut Client, blob: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    c.decrypt(request).await.map(|r| r.into_inner().plaintext)
}

#[track_caller]
fn fails_with<T: std::fmt::Debug>(result: Result<T, tonic::Status>, expected: &str) {
    let status = result.expect_err(expected);
    assert_eq!(exception(&status), expected, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_material_end_to_end_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let node = Node::start(&work.join("node")).await;
    let mut c = node.client().await;

    // CreateKey EXTERNAL: no material, PendingImport, every crypto operation refused.
    let key = create_external(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt).await;
    let key_id = key.key_id.clone();
    assert_eq!(
        (key.key_state(), key.origin(), key.enabled),
        (pb::KeyState::PendingImport, pb::OriginType::External, false)
    );
    fails_with(encrypt(&mut c, &key_id, b"x").await, "KMSInvalidStateException");
    let enable = pb::EnableKeyRequest { key_id: key_id.clone() };
    fails_with(c.enable_key(enable).await, "KMSInvalidStateException");

    // RSAES_OAEP_SHA_256 with an RSA_2048 wrapping key.
    let params =
        parameters(&mut c, &key_id, pb::AlgorithmSpec::RsaesOaepSha256, pb::WrappingKeySpec::Rsa2048)
            .await
            .unwrap();
    assert!(params.key_id.ends_with(&key_id));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let valid_to = params.parameters_valid_to.unwrap().seconds;
    assert!((valid_to - now - 86_400).abs() < 60, "valid for 24 h");
    let material = random(32);
    let wrapped = oaep_sha256(work, &params.public_key, &material);

    // Tampered token, tampered wrapped material: refused, key unchanged.
    let mut bad_token = params.import_token.clone();
    *bad_token.last_mut().unwrap() ^= 1;
    fails_with(import(&mut c, &key_id, &bad_token, &wrapped).await, "InvalidImportTokenException");
    fails_with(import(&mut c, &key_id, b"not a token", &wrapped).await, "InvalidImportTokenException");
    let mut bad_wrapped = wrapped.clone();
    bad_wrapped[10] ^= 1;
    fails_with(
        import(&mut c, &key_id, &params.import_token, &bad_wrapped).await,
        "InvalidCiphertextException",
    );
    let short = oaep_sha256(work, &params.public_key, &material[..16]);
    fails_with(import(&mut c, &key_id, &params.import_token, &short).await, "IncorrectKeyMaterialException");
    assert_eq!(describe(&mut c, &key_id).await.key_state(), pb::KeyState::PendingImport);

    import(&mut c, &key_id, &params.import_token, &wrapped).await.unwrap();
    let meta = describe(&mut c, &key_id).await;
    assert_eq!((meta.key_state(), meta.enabled), (pb::KeyState::Enabled, true));
    assert_eq!(meta.expiration_model(), pb::ExpirationModelType::KeyMaterialDoesNotExpire);
    assert_eq!(meta.current_key_material_id.len(), 64);
    let blob = encrypt(&mut c, &key_id, b"imported hello").await.unwrap();
    assert_eq!(decrypt(&mut c, &blob).await.unwrap(), b"imported hello");
    let data_key = pb::GenerateDataKeyRequest {
        key_id: key_id.clone(),
        key_spec: pb::DataKeySpec::Aes256.into(),
        ..Default::default()
    };
    let data_key = c.generate_data_key(data_key).await.unwrap().into_inner();
    assert_eq!(decrypt(&mut c, &data_key.ciphertext_blob).await.unwrap(), data_key.plaintext);

    // The token of this key does not work for another key.
    let other = create_external(&mut c, pb::KeySpec::SymmetricDefault, pb::KeyUsage::EncryptDecrypt).await;
    fails_with(
        import(&mut c, &other.key_id, &params.import_token, &wrapped).await,
        "InvalidImportTokenException",
    );

    // Rotation of imported keys: UnsupportedOperationException.
    let rotate = pb::RotateKeyOnDemandRequest { key_id: key_id.clone() };
    fails_with(c.rotate_key_on_demand(rotate).await, "UnsupportedOperationException");

    // Delete the material: PendingImport, old ciphertexts cannot be decrypted.
    let delete = pb::DeleteImportedKeyMaterialRequest { key_id: key_id.clone(), key_material_id: None };
    let deleted = c.delete_imported_key_material(delete).await.unwrap().into_inner();
    assert_eq!(deleted.key_material_id, meta.current_key_material_id);
    assert_eq!(describe(&mut c, &key_id).await.key_state(), pb::KeyState::PendingImport);
    fails_with(encrypt(&mut c, &key_id, b"x").await, "KMSInvalidStateException");
    fails_with(decrypt(&mut c, &blob).await, "KMSInvalidStateException");

    // Different material: refused. The same material again: the old ciphertext decrypts.
    let different = oaep_sha256(work, &params.public_key, &random(32));
    fails_with(
        import(&mut c, &key_id, &params.import_token, &different).await,
        "IncorrectKeyMaterialException",
    );
    let rewrapped = oaep_sha256(work, &params.public_key, &material);
    import(&mut c, &key_id, &params.import_token, &rewrapped).await.unwrap();
    let meta_again = describe(&mut c, &key_id).await;
    assert_eq!(meta_again.key_state(), pb::KeyState::Enabled);
    assert_eq!(meta_again.current_key_material_id, meta.current_key_material_id);
    assert_eq!(decrypt(&mut c, &blob).await.unwrap(), b"imported hello");

    // RSA_AES_KEY_WRAP_SHA_256 with an RSA_3072 wrapping key, via the other key.
    let params = parameters(
        &mut c,
        &other.key_id,
        pb::AlgorithmSpec::RsaAesKeyWrapSha256,
        pb::WrappingKeySpec::Rsa3072,
    )
    .await
    .unwrap();
    let material2 = random(32);
    let wrapped = rsa_aes_key_wrap_sha256(work, &params.public_key, &material2);
    assert_eq!(wrapped.len(), 384 + 40);
    let mut bad = wrapped.clone();
    *bad.last_mut().unwrap() ^= 1; // in the AES-KWP part
    fails_with(import(&mut c, &other.key_id, &params.import_token, &bad).await, "InvalidCiphertextException");
    import(&mut c, &other.key_id, &params.import_token, &wrapped).await.unwrap();
    let blob2 = encrypt(&mut c, &other.key_id, b"key wrap").await.unwrap();
    assert_eq!(decrypt(&mut c, &blob2).await.unwrap(), b"key wrap");

    // An HMAC key with imported material computes the same MAC as OpenSSL with that key.
    let mac_key = create_external(&mut c, pb::KeySpec::Hmac256, pb::KeyUsage::GenerateVerifyMac).await;
    let params =
        parameters(&mut c, &mac_key.key_id, pb::AlgorithmSpec::RsaesOaepSha256, pb::WrappingKeySpec::Rsa2048)
            .await
            .unwrap();
    let mac_material = random(48);
    let wrapped = oaep_sha256(work, &params.public_key, &mac_material);
    import(&mut c, &mac_key.key_id, &params.import_token, &wrapped).await.unwrap();
    let request = pb::GenerateMacRequest {
        key_id: mac_key.key_id.clone(),
        message: b"mac me".to_vec(),
        mac_algorithm: pb::MacAlgorithmSpec::HmacSha256.into(),
        ..Default::default()
    };
    let mac = c.generate_mac(request).await.unwrap().into_inner().mac;
    let msg = work.join("mac_msg.bin");
    std::fs::write(&msg, b"mac me").unwrap();
    let expected = openssl(&[
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        &format!("hexkey:{}", hex(&mac_material)),
        "-binary",
        msg.to_str().unwrap(),
    ]);
    assert_eq!(mac, expected);

    // Refusals: a generated key, the deprecated PKCS#1 v1.5 wrapping, asymmetric EXTERNAL keys.
    let generated =
        c.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner().key_metadata.unwrap();
    fails_with(
        parameters(
            &mut c,
            &generated.key_id,
            pb::AlgorithmSpec::RsaesOaepSha256,
            pb::WrappingKeySpec::Rsa2048,
        )
        .await,
        "UnsupportedOperationException",
    );
    let delete =
        pb::DeleteImportedKeyMaterialRequest { key_id: generated.key_id.clone(), key_material_id: None };
    fails_with(c.delete_imported_key_material(delete).await, "UnsupportedOperationException");
    fails_with(
        parameters(&mut c, &key_id, pb::AlgorithmSpec::RsaesPkcs1V15, pb::WrappingKeySpec::Rsa2048).await,
        "UnsupportedOperationException",
    );
    let request = pb::CreateKeyRequest {
        origin: pb::OriginType::External.into(),
        key_spec: pb::KeySpec::EccNistP256.into(),
        key_usage: pb::KeyUsage::SignVerify.into(),
        ..Default::default()
    };
    fails_with(c.create_key(request).await, "UnsupportedOperationException");

    // Plain material never reaches the disk.
    for secret in [&material, &material2, &mac_material] {
        assert_eq!(occurs_under(&node.data_dir, secret), None);
    }
}

/// The same flow through kmsctl (base64 blobs in, JSON out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmsctl_imports_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;
    let json = |args: &[&str]| -> serde_json::Value {
        let output = node.kmsctl(args);
        assert!(output.status.success(), "kmsctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let created = json(&["create-key", "--origin", "EXTERNAL"]);
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    assert_eq!(created["KeyMetadata"]["KeyState"], "PendingImport");
    let params = json(&[
        "get-parameters-for-import",
        "--key-id",
        &key_id,
        "--wrapping-algorithm",
        "RSAES_OAEP_SHA_256",
        "--wrapping-key-spec",
        "RSA_2048",
    ]);
    let public = STANDARD.decode(params["PublicKey"].as_str().unwrap()).unwrap();
    let wrapped = oaep_sha256(dir.path(), &public, &random(32));
    let wrapped_path = dir.path().join("wrapped.bin");
    std::fs::write(&wrapped_path, &wrapped).unwrap();
    let imported = json(&[
        "import-key-material",
        "--key-id",
        &key_id,
        "--import-token",
        params["ImportToken"].as_str().unwrap(),
        "--encrypted-key-material",
        &format!("fileb://{}", wrapped_path.display()),
        "--expiration-model",
        "KEY_MATERIAL_DOES_NOT_EXPIRE",
    ]);
    assert!(imported["KeyId"].as_str().unwrap().ends_with(&key_id));
    assert_eq!(json(&["describe-key", "--key-id", &key_id])["KeyMetadata"]["KeyState"], "Enabled");
    json(&["delete-imported-key-material", "--key-id", &key_id]);
    assert_eq!(json(&["describe-key", "--key-id", &key_id])["KeyMetadata"]["KeyState"], "PendingImport");
}
