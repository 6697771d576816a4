//! sign → verify for every spec × algorithm × message type AWS allows, plus encrypt → decrypt,
//! ECDH agreement and data key pairs.

use super::*;
use shake::{ExtendableOutput, Shake256, Update, XofReader};

/// Signs and verifies every allowed combination for `specs`; a changed message, a changed
/// signature and a signature checked under the wrong algorithm must all fail. Returns how many
/// combinations ran.
fn sign_verify_all(specs: &[AsymmetricKeySpec]) -> usize {
    let mut ran = 0;
    for &spec in specs {
        let private = key(spec);
        let public = public(spec);
        for &algorithm in spec.signing_algorithms() {
            for &message_type in algorithm.message_types() {
                let context = format!("{spec:?} {algorithm:?} {message_type:?}");
                let message = sample_message(algorithm, message_type);
                let signature = sign(spec, private.expose(), algorithm, message_type, &message).unwrap();
                assert!(
                    verify(spec, &public, algorithm, message_type, &message, &signature).unwrap(),
                    "{context}"
                );
                let mut changed = message.clone();
                changed[0] ^= 1;
                assert!(
                    !verify(spec, &public, algorithm, message_type, &changed, &signature).unwrap(),
                    "{context}"
                );
                let mut tampered = signature.clone();
                let last = tampered.len() - 1;
                tampered[last] ^= 0x40;
                assert!(
                    !verify(spec, &public, algorithm, message_type, &message, &tampered).unwrap(),
                    "{context}"
                );
                ran += 1;
            }
        }
    }
    ran
}

#[test]
fn rsa_2048_sign_verify_and_oaep() {
    let spec = AsymmetricKeySpec::Rsa2048;
    assert_eq!(sign_verify_all(&[spec]), 12);
    oaep_round_trip(spec);
    // PSS and PKCS#1 v1.5 over the same hash are different schemes.
    let message = b"scheme separation";
    let pss =
        sign(spec, key(spec).expose(), SigningAlgorithm::RsassaPssSha256, MessageType::Raw, message).unwrap();
    assert!(
        !verify(spec, &public(spec), SigningAlgorithm::RsassaPkcs1V15Sha256, MessageType::Raw, message, &pss)
            .unwrap()
    );
}

#[test]
fn rsa_3072_sign_verify_and_oaep() {
    assert_eq!(sign_verify_all(&[AsymmetricKeySpec::Rsa3072]), 12);
    oaep_round_trip(AsymmetricKeySpec::Rsa3072);
}

#[test]
fn rsa_4096_sign_verify_and_oaep() {
    assert_eq!(sign_verify_all(&[AsymmetricKeySpec::Rsa4096]), 12);
    oaep_round_trip(AsymmetricKeySpec::Rsa4096);
}

#[test]
fn ecc_sign_verify() {
    use AsymmetricKeySpec::*;
    let ran = sign_verify_all(&[EccNistP256, EccNistP384, EccNistP521, EccSecgP256k1]);
    assert_eq!(ran, 8);
    // RAW and DIGEST are the same signature input: a RAW signature verifies as DIGEST of the hash.
    let spec = EccNistP384;
    let algorithm = SigningAlgorithm::EcdsaSha384;
    let message = b"raw vs digest";
    let signature = sign(spec, key(spec).expose(), algorithm, MessageType::Raw, message).unwrap();
    let digest = HashAlg::Sha384.digest(message);
    assert!(verify(spec, &public(spec), algorithm, MessageType::Digest, &digest, &signature).unwrap());
    // DER SEQUENCE { r, s }, not r || s.
    assert_eq!(signature[0], 0x30);
}

#[test]
fn ed25519_sign_verify() {
    assert_eq!(sign_verify_all(&[AsymmetricKeySpec::EccNistEdwards25519]), 2);
    let spec = AsymmetricKeySpec::EccNistEdwards25519;
    // The two algorithms are not interchangeable: a PureEdDSA signature over the 64 digest
    // bytes is not an Ed25519ph signature over them.
    let digest = HashAlg::Sha512.digest(b"m");
    let pure =
        sign(spec, key(spec).expose(), SigningAlgorithm::Ed25519Sha512, MessageType::Raw, &digest).unwrap();
    assert!(
        !verify(spec, &public(spec), SigningAlgorithm::Ed25519PhSha512, MessageType::Digest, &digest, &pure)
            .unwrap()
    );
}

#[test]
fn ml_dsa_sign_verify_and_external_mu() {
    use AsymmetricKeySpec::*;
    assert_eq!(sign_verify_all(&[MlDsa44, MlDsa65, MlDsa87]), 6);
    for spec in [MlDsa44, MlDsa65, MlDsa87] {
        // EXTERNAL_MU is FIPS 204 §6.2's μ of the RAW message: computed here independently of
        // the implementation, a RAW signature verifies as EXTERNAL_MU and the other way round.
        let public = public(spec);
        let message = b"external mu equals raw";
        let mu = external_mu(&public, spec, message);
        let alg = SigningAlgorithm::MlDsaShake256;
        let raw_sig = sign(spec, key(spec).expose(), alg, MessageType::Raw, message).unwrap();
        assert!(verify(spec, &public, alg, MessageType::ExternalMu, &mu, &raw_sig).unwrap(), "{spec:?}");
        let mu_sig = sign(spec, key(spec).expose(), alg, MessageType::ExternalMu, &mu).unwrap();
        assert!(verify(spec, &public, alg, MessageType::Raw, message, &mu_sig).unwrap(), "{spec:?}");
    }
}

/// μ = SHAKE256(tr ‖ 0x00 ‖ 0x00 ‖ M, 64), tr = SHAKE256(pk, 64) (FIPS 204 Algorithms 2 and 7,
/// empty context). The raw public key is the SPKI's last bytes (after the BIT STRING header).
fn external_mu(spki: &[u8], spec: AsymmetricKeySpec, message: &[u8]) -> Vec<u8> {
    let pk_len = match spec {
        AsymmetricKeySpec::MlDsa44 => 1312,
        AsymmetricKeySpec::MlDsa65 => 1952,
        _ => 2592,
    };
    let pk = &spki[spki.len() - pk_len..];
    let tr = shake256(&[pk]);
    shake256(&[&tr, &[0, 0], message])
}

fn shake256(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Shake256::default();
    for part in parts {
        hasher.update(part);
    }
    let mut out = vec![0; 64];
    hasher.finalize_xof().read(&mut out);
    out
}

fn oaep_round_trip(spec: AsymmetricKeySpec) {
    let public = public(spec);
    for algorithm in [EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256] {
        let max = max_plaintext_len(spec, algorithm);
        for len in [1, max] {
            let plaintext = vec![0xA5; len];
            let ciphertext = rsa_encrypt(&public, algorithm, &plaintext).unwrap();
            assert_eq!(ciphertext.len(), spec.rsa_bits().unwrap() / 8);
            let opened = rsa_decrypt(spec, key(spec).expose(), algorithm, &ciphertext).unwrap();
            assert!(opened.ct_eq(&plaintext), "{spec:?} {algorithm:?} {len}");
        }
        let over = vec![0; max + 1];
        assert!(is_invalid_input(rsa_encrypt(&public, algorithm, &over)), "{spec:?} {algorithm:?}");
    }
}

#[test]
fn max_plaintext_lengths_match_aws_table() {
    use AsymmetricKeySpec::*;
    use EncryptionAlgorithm::*;
    let table = [(Rsa2048, 214, 190), (Rsa3072, 342, 318), (Rsa4096, 470, 446)];
    for (spec, sha1, sha256) in table {
        assert_eq!(max_plaintext_len(spec, RsaesOaepSha1), sha1);
        assert_eq!(max_plaintext_len(spec, RsaesOaepSha256), sha256);
    }
    assert_eq!(max_plaintext_len(EccNistP256, RsaesOaepSha256), 0);
}

#[test]
fn ecdh_agrees_in_both_directions() {
    use AsymmetricKeySpec::*;
    for (spec, len) in [(EccNistP256, 32), (EccNistP384, 48), (EccNistP521, 66)] {
        let (peer_private, peer_public) = generate_data_key_pair(spec).unwrap();
        let ours = derive_shared_secret(spec, key(spec).expose(), &peer_public).unwrap();
        let theirs = derive_shared_secret(spec, peer_private.expose(), &public(spec)).unwrap();
        assert_eq!(ours.len(), len, "{spec:?}");
        assert!(ours.ct_eq(theirs.expose()), "{spec:?}");
    }
}

#[test]
fn data_key_pairs_for_every_data_key_pair_spec() {
    use AsymmetricKeySpec::*;
    // RSA pairs are covered by generate_private_key + public_key_der above; generating more
    // RSA keys here would only slow the suite down.
    for spec in [EccNistP256, EccNistP384, EccNistP521, EccSecgP256k1, EccNistEdwards25519] {
        let (private, public) = generate_data_key_pair(spec).unwrap();
        assert_eq!(public_key_der(spec, private.expose()).unwrap(), public, "{spec:?}");
        let (again, _) = generate_data_key_pair(spec).unwrap();
        assert!(!again.ct_eq(private.expose()), "{spec:?}: two pairs are equal");
        let algorithm = spec.signing_algorithms()[0];
        let message_type = algorithm.message_types()[0];
        let message = sample_message(algorithm, message_type);
        let signature = sign(spec, private.expose(), algorithm, message_type, &message).unwrap();
        assert!(verify(spec, &public, algorithm, message_type, &message, &signature).unwrap());
    }
    for spec in [MlDsa44, MlDsa65, MlDsa87] {
        assert!(is_invalid_input(generate_data_key_pair(spec)), "{spec:?}");
    }
}

#[test]
fn public_keys_are_spki_with_the_expected_algorithm() {
    use AsymmetricKeySpec::*;
    // DER of the AlgorithmIdentifier OIDs (and curve OIDs) that must appear in each SPKI.
    let expectations: [(AsymmetricKeySpec, &str); 8] = [
        (EccNistP256, "06072a8648ce3d020106082a8648ce3d030107"),
        (EccNistP384, "06072a8648ce3d020106052b81040022"),
        (EccNistP521, "06072a8648ce3d020106052b81040023"),
        (EccSecgP256k1, "06072a8648ce3d020106052b8104000a"),
        (EccNistEdwards25519, "06032b6570"),
        (MlDsa44, "0609608648016503040311"),
        (MlDsa65, "0609608648016503040312"),
        (MlDsa87, "0609608648016503040313"),
    ];
    for (spec, oid) in expectations {
        let spki = public(spec);
        assert_eq!(spki[0], 0x30, "{spec:?}");
        let oid = crate::test_util::hex(oid);
        assert!(spki.windows(oid.len()).any(|w| w == oid.as_slice()), "{spec:?}");
    }
    // Uncompressed points: 0x04 after the BIT STRING's unused-bits byte.
    let p256 = public(EccNistP256);
    assert_eq!(p256.len(), 91);
    assert_eq!(p256[23..27], [0x03, 0x42, 0x00, 0x04]);
    assert_eq!(public(EccNistEdwards25519).len(), 44);
}
