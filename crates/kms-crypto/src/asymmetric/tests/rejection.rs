//! Inputs that must be refused, and how.

use super::*;
use AsymmetricKeySpec::*;

#[test]
fn digest_of_the_wrong_length_is_invalid_input_naming_the_length() {
    let cases = [
        (Rsa2048, SigningAlgorithm::RsassaPssSha384, 48),
        (Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha512, 64),
        (EccNistP256, SigningAlgorithm::EcdsaSha256, 32),
        (EccNistP384, SigningAlgorithm::EcdsaSha384, 48),
        (EccNistP521, SigningAlgorithm::EcdsaSha512, 64),
        (EccSecgP256k1, SigningAlgorithm::EcdsaSha256, 32),
        (EccNistEdwards25519, SigningAlgorithm::Ed25519PhSha512, 64),
    ];
    for (spec, algorithm, expected) in cases {
        for len in [0, expected - 1, expected + 1, 20] {
            let digest = vec![1; len];
            for result in [
                sign(spec, key(spec).expose(), algorithm, MessageType::Digest, &digest).map(|_| ()),
                verify(spec, &public(spec), algorithm, MessageType::Digest, &digest, &[0; 64]).map(|_| ()),
            ] {
                match result {
                    Err(CryptoError::InvalidInput(message)) => {
                        assert!(message.contains(&expected.to_string()), "{spec:?} {len}: {message}")
                    }
                    other => panic!("{spec:?} {algorithm:?} digest of {len} bytes: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn signature_from_another_key_is_false() {
    // Same spec, different key: for every family.
    let message = b"who signed this";
    let rsa = sign(
        Rsa2048,
        other_rsa_2048().expose(),
        SigningAlgorithm::RsassaPssSha256,
        MessageType::Raw,
        message,
    )
    .unwrap();
    assert!(
        !verify(
            Rsa2048,
            &public(Rsa2048),
            SigningAlgorithm::RsassaPssSha256,
            MessageType::Raw,
            message,
            &rsa
        )
        .unwrap()
    );
    for spec in [EccNistP256, EccNistP384, EccNistP521, EccSecgP256k1, EccNistEdwards25519, MlDsa44] {
        let other = generate_private_key(spec).unwrap();
        let algorithm = spec.signing_algorithms()[0];
        let message_type = algorithm.message_types()[0];
        let message = sample_message(algorithm, message_type);
        let signature = sign(spec, other.expose(), algorithm, message_type, &message).unwrap();
        assert!(
            !verify(spec, &public(spec), algorithm, message_type, &message, &signature).unwrap(),
            "{spec:?}"
        );
    }
}

#[test]
fn spec_and_algorithm_mismatch_is_invalid_input() {
    use SigningAlgorithm::*;
    let mismatches = [
        (EccNistP256, EcdsaSha384),
        (EccNistP256, EcdsaSha512),
        (EccNistP384, EcdsaSha256),
        (EccNistP521, EcdsaSha384),
        (EccSecgP256k1, EcdsaSha512),
        (EccNistP256, RsassaPssSha256),
        (Rsa2048, EcdsaSha256),
        (Rsa3072, Ed25519Sha512),
        (EccNistEdwards25519, EcdsaSha512),
        (MlDsa65, Ed25519Sha512),
        (EccNistEdwards25519, MlDsaShake256),
    ];
    for (spec, algorithm) in mismatches {
        let message = b"m";
        assert!(
            is_invalid_input(sign(spec, key(spec).expose(), algorithm, MessageType::Raw, message)),
            "{spec:?}"
        );
        assert!(is_invalid_input(verify(spec, &public(spec), algorithm, MessageType::Raw, message, &[0; 8])));
    }
    // Message types AWS does not allow with the algorithm.
    let bad_types = [
        (EccNistEdwards25519, Ed25519Sha512, MessageType::Digest),
        (EccNistEdwards25519, Ed25519PhSha512, MessageType::Raw),
        (MlDsa44, MlDsaShake256, MessageType::Digest),
        (EccNistP256, EcdsaSha256, MessageType::ExternalMu),
        (Rsa2048, RsassaPkcs1V15Sha256, MessageType::ExternalMu),
    ];
    for (spec, algorithm, message_type) in bad_types {
        let message = vec![0; 64];
        assert!(is_invalid_input(sign(spec, key(spec).expose(), algorithm, message_type, &message)));
        assert!(is_invalid_input(verify(spec, &public(spec), algorithm, message_type, &message, &[0; 8])));
    }
}

#[test]
fn ml_dsa_message_limits() {
    let alg = SigningAlgorithm::MlDsaShake256;
    let private = key(MlDsa44).expose();
    for len in [0, 32, 63, 65] {
        assert!(
            is_invalid_input(sign(MlDsa44, private, alg, MessageType::ExternalMu, &vec![0; len])),
            "{len}"
        );
    }
    assert!(sign(MlDsa44, private, alg, MessageType::Raw, &[7; MAX_RAW_MESSAGE_LEN]).is_ok());
    assert!(is_invalid_input(sign(MlDsa44, private, alg, MessageType::Raw, &[7; MAX_RAW_MESSAGE_LEN + 1])));
    assert!(is_invalid_input(verify(
        MlDsa44,
        &public(MlDsa44),
        alg,
        MessageType::Raw,
        &[7; MAX_RAW_MESSAGE_LEN + 1],
        &[0; 2420]
    )));
}

#[test]
fn oaep_one_byte_over_the_limit_is_invalid_input() {
    let public = public(Rsa2048);
    for (algorithm, max) in
        [(EncryptionAlgorithm::RsaesOaepSha1, 214), (EncryptionAlgorithm::RsaesOaepSha256, 190)]
    {
        assert!(rsa_encrypt(&public, algorithm, &vec![1; max]).is_ok());
        match rsa_encrypt(&public, algorithm, &vec![1; max + 1]) {
            Err(CryptoError::InvalidInput(message)) => {
                assert!(message.contains(&max.to_string()), "{message}")
            }
            other => panic!("{algorithm:?}: {other:?}"),
        }
    }
}

#[test]
fn oaep_decryption_failures_are_invalid_ciphertext() {
    let public = public(Rsa2048);
    let private = key(Rsa2048).expose();
    let ciphertext = rsa_encrypt(&public, EncryptionAlgorithm::RsaesOaepSha256, b"secret").unwrap();
    let mut tampered = ciphertext.clone();
    tampered[100] ^= 1;
    let cases: [(&[u8], EncryptionAlgorithm); 6] = [
        (&tampered, EncryptionAlgorithm::RsaesOaepSha256),
        (&ciphertext, EncryptionAlgorithm::RsaesOaepSha1),
        (&ciphertext[1..], EncryptionAlgorithm::RsaesOaepSha256),
        (&[], EncryptionAlgorithm::RsaesOaepSha256),
        (&[0xFF; 256], EncryptionAlgorithm::RsaesOaepSha256),
        (&[0; 257], EncryptionAlgorithm::RsaesOaepSha256),
    ];
    for (bytes, algorithm) in cases {
        assert_eq!(
            rsa_decrypt(Rsa2048, private, algorithm, bytes).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
    }
    // A ciphertext for another key of the same size.
    let other_public = public_key_der(Rsa2048, other_rsa_2048().expose()).unwrap();
    let foreign = rsa_encrypt(&other_public, EncryptionAlgorithm::RsaesOaepSha256, b"secret").unwrap();
    assert_eq!(
        rsa_decrypt(Rsa2048, private, EncryptionAlgorithm::RsaesOaepSha256, &foreign).unwrap_err(),
        CryptoError::InvalidCiphertext
    );
}

#[test]
fn bad_peer_keys_for_ecdh_are_invalid_input() {
    let private = key(EccNistP256).expose();
    let peer = public(EccNistP256);
    assert!(derive_shared_secret(EccNistP256, private, &peer).is_ok());
    for len in [0, 1, 10, 26, 27, peer.len() - 1] {
        assert!(
            is_invalid_input(derive_shared_secret(EccNistP256, private, &peer[..len])),
            "truncated to {len}"
        );
    }
    let mut trailing = peer.clone();
    trailing.push(0);
    assert!(is_invalid_input(derive_shared_secret(EccNistP256, private, &trailing)));
    // Off-curve point: flip a bit of y.
    let mut off_curve = peer.clone();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 1;
    assert!(is_invalid_input(derive_shared_secret(EccNistP256, private, &off_curve)));
    // Other curves and other key types.
    for other in [EccNistP384, EccSecgP256k1, EccNistEdwards25519, Rsa2048] {
        assert!(is_invalid_input(derive_shared_secret(EccNistP256, private, &public(other))), "{other:?}");
    }
    assert!(is_invalid_input(derive_shared_secret(EccNistP256, private, &[0x30; 9000])));
    assert!(is_invalid_input(derive_shared_secret(EccNistP256, private, b"garbage that is not DER at all")));
}

#[test]
fn ecdh_only_on_nist_curves() {
    for spec in [EccSecgP256k1, EccNistEdwards25519, Rsa2048, MlDsa44] {
        assert!(is_invalid_input(derive_shared_secret(spec, key(spec).expose(), &public(spec))), "{spec:?}");
    }
}

#[test]
fn malformed_public_keys_are_invalid_input() {
    let message = b"m";
    for spec in AsymmetricKeySpec::ALL {
        let algorithm = spec.signing_algorithms()[0];
        let message_type = algorithm.message_types()[0];
        let message = if message_type == MessageType::Raw { message.to_vec() } else { vec![0; 64] };
        let good = public(spec);
        for bad in [&[][..], &good[..good.len() / 2], b"\x30\x03\x02\x01\x00"] {
            let result = verify(spec, bad, algorithm, message_type, &message, &[0; 64]);
            assert!(is_invalid_input(result), "{spec:?}");
        }
    }
    // An RSA key of the wrong size for the spec.
    let algorithm = SigningAlgorithm::RsassaPssSha256;
    assert!(is_invalid_input(verify(
        Rsa3072,
        &public(Rsa2048),
        algorithm,
        MessageType::Raw,
        message,
        &[0; 384]
    )));
    assert!(is_invalid_input(rsa_encrypt(&public(EccNistP256), EncryptionAlgorithm::RsaesOaepSha256, b"x")));
}

#[test]
fn garbage_signatures_are_false_never_a_panic() {
    // Deterministic pseudo-random bytes of many lengths, plus structured near-misses.
    let mut state = 0x1234_5678_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    };
    for spec in AsymmetricKeySpec::ALL {
        let public = public(spec);
        for &algorithm in spec.signing_algorithms() {
            let message_type = algorithm.message_types()[0];
            let message = sample_message(algorithm, message_type);
            for len in [0usize, 1, 2, 8, 63, 64, 65, 72, 104, 139, 256, 384, 512, 2420, 3309, 4627, 6000] {
                let signature: Vec<u8> = (0..len).map(|_| next()).collect();
                let verdict = verify(spec, &public, algorithm, message_type, &message, &signature);
                assert_eq!(verdict, Ok(false), "{spec:?} {algorithm:?} len {len}");
            }
            let mut der_like = vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00];
            assert_eq!(verify(spec, &public, algorithm, message_type, &message, &der_like), Ok(false));
            der_like[4] = 0x01;
            der_like[7] = 0x01;
            assert_eq!(verify(spec, &public, algorithm, message_type, &message, &der_like), Ok(false));
        }
    }
}

#[test]
fn stored_key_of_the_wrong_spec_is_internal() {
    let message = HashAlg::Sha256.digest(b"m");
    let p384_key = key(EccNistP384).expose();
    let result = sign(EccNistP256, p384_key, SigningAlgorithm::EcdsaSha256, MessageType::Digest, &message);
    assert!(matches!(result, Err(CryptoError::Internal(_))), "{result:?}");
    let result =
        sign(Rsa3072, key(Rsa2048).expose(), SigningAlgorithm::RsassaPssSha256, MessageType::Raw, b"m");
    assert!(matches!(result, Err(CryptoError::Internal(_))), "{result:?}");
    assert!(matches!(public_key_der(MlDsa65, key(MlDsa44).expose()), Err(CryptoError::Internal(_))));
    assert!(matches!(public_key_der(EccNistEdwards25519, b"junk"), Err(CryptoError::Internal(_))));
    // The error names the spec, not the bytes.
    let message = public_key_der(EccNistP256, &[0xAB; 40]).unwrap_err().to_string();
    assert!(message.contains("ECC_NIST_P256") && !message.to_lowercase().contains("ab ab"), "{message}");
}

#[test]
fn secrets_do_not_show_in_debug() {
    let (private, _) = generate_data_key_pair(EccNistP256).unwrap();
    assert_eq!(format!("{private:?}"), format!("SecretBytes(<redacted {} bytes>)", private.len()));
}
