//! One benchmark per primitive the KMS serves: AES-256-GCM blobs, HMAC, and sign / verify /
//! encrypt / decrypt / derive for every asymmetric key spec. Run with
//! `cargo bench -p kms-crypto --bench primitives` (RustCrypto backend) and again with
//! `--features aws-lc`; the figures and the `openssl speed` peer run on the same machine are in
//! BENCHMARKS.md. Private keys are parsed once, as the service's material cache holds them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kms_crypto::asymmetric::{
    self as asym, AsymmetricKeySpec, EncryptionAlgorithm, MessageType, SigningAlgorithm,
};
use kms_crypto::{BlobHeader, EncryptionContext, MacAlgorithm, PrivateKey};
use std::hint::black_box;

fn symmetric(c: &mut Criterion) {
    eprintln!("crypto backend: {}", kms_crypto::BACKEND);
    let key = [7u8; 32];
    let aes_key = kms_crypto::AesGcmKey::new(&key).unwrap();
    let header = BlobHeader { key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(), material_version: 0 };
    let context: EncryptionContext = [("tenant".to_string(), "42".to_string())].into();
    let mut group = c.benchmark_group("symmetric");
    for size in [32usize, 4096] {
        let plaintext = vec![1u8; size];
        let blob = kms_crypto::encrypt_blob(&aes_key, &header, &context, &plaintext).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("aes256gcm_encrypt_blob_{size}B"), |b| {
            b.iter(|| kms_crypto::encrypt_blob(&aes_key, &header, &context, black_box(&plaintext)).unwrap())
        });
        group.bench_function(format!("aes256gcm_decrypt_blob_{size}B"), |b| {
            b.iter(|| kms_crypto::decrypt_blob(&aes_key, black_box(&blob), &context).unwrap())
        });
        group.bench_function(format!("hmac_sha256_{size}B"), |b| {
            b.iter(|| kms_crypto::generate_mac(MacAlgorithm::HmacSha256, &key, black_box(&plaintext)))
        });
    }
    group.finish();
}

fn signing(c: &mut Criterion) {
    use AsymmetricKeySpec as K;
    use SigningAlgorithm as S;
    let cases = [
        (K::Rsa2048, S::RsassaPssSha256),
        (K::Rsa2048, S::RsassaPkcs1V15Sha256),
        (K::Rsa3072, S::RsassaPssSha256),
        (K::Rsa4096, S::RsassaPssSha256),
        (K::EccNistP256, S::EcdsaSha256),
        (K::EccNistP384, S::EcdsaSha384),
        (K::EccNistP521, S::EcdsaSha512),
        (K::EccSecgP256k1, S::EcdsaSha256),
        (K::EccNistEdwards25519, S::Ed25519Sha512),
        (K::MlDsa44, S::MlDsaShake256),
        (K::MlDsa65, S::MlDsaShake256),
        (K::MlDsa87, S::MlDsaShake256),
    ];
    let message = vec![3u8; 64];
    let mut group = c.benchmark_group("sign_verify");
    group.sample_size(20);
    for (spec, algorithm) in cases {
        let private = asym::generate_private_key(spec).unwrap();
        let public = asym::public_key_der(spec, private.expose()).unwrap();
        let parsed = PrivateKey::from_pkcs8(spec, private.clone()).unwrap();
        let signature = parsed.sign(algorithm, MessageType::Raw, &message).unwrap();
        let name = format!("{}_{}", spec.aws_name(), algorithm.aws_name());
        group.bench_function(format!("sign_{name}"), |b| {
            b.iter(|| parsed.sign(algorithm, MessageType::Raw, black_box(&message)).unwrap())
        });
        group.bench_function(format!("verify_{name}"), |b| {
            b.iter(|| {
                asym::verify(spec, &public, algorithm, MessageType::Raw, black_box(&message), &signature)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn rsa_oaep_and_ecdh(c: &mut Criterion) {
    let mut group = c.benchmark_group("encrypt_derive");
    group.sample_size(20);
    for spec in [AsymmetricKeySpec::Rsa2048, AsymmetricKeySpec::Rsa4096] {
        let private = asym::generate_private_key(spec).unwrap();
        let public = asym::public_key_der(spec, private.expose()).unwrap();
        let algorithm = EncryptionAlgorithm::RsaesOaepSha256;
        let ciphertext = asym::rsa_encrypt(&public, algorithm, &[5u8; 32]).unwrap();
        let parsed = PrivateKey::from_pkcs8(spec, private.clone()).unwrap();
        group.bench_function(format!("oaep_sha256_encrypt_{}", spec.aws_name()), |b| {
            b.iter(|| asym::rsa_encrypt(&public, algorithm, black_box(&[5u8; 32])).unwrap())
        });
        group.bench_function(format!("oaep_sha256_decrypt_{}", spec.aws_name()), |b| {
            b.iter(|| parsed.rsa_decrypt(algorithm, black_box(&ciphertext)).unwrap())
        });
    }
    for spec in
        [AsymmetricKeySpec::EccNistP256, AsymmetricKeySpec::EccNistP384, AsymmetricKeySpec::EccNistP521]
    {
        let private = asym::generate_private_key(spec).unwrap();
        let peer = asym::generate_private_key(spec).unwrap();
        let peer_public = asym::public_key_der(spec, peer.expose()).unwrap();
        group.bench_function(format!("ecdh_{}", spec.aws_name()), |b| {
            b.iter(|| asym::derive_shared_secret(spec, private.expose(), black_box(&peer_public)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, symmetric, signing, rsa_oaep_and_ecdh);
criterion_main!(benches);
