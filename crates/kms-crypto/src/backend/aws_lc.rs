//! The AWS-LC backend (`aws-lc-rs`), with the `aws-lc` feature, or its FIPS module with `fips`.
//!
//! Measured on the project's machines it seals AES-GCM about 3.5x, signs ECDSA P-256 about 3x,
//! Ed25519 about 2x and RSA-2048 about 5.6x faster than RustCrypto (see BENCHMARKS.md).
//!
//! Key material: AWS-LC keeps keys in its own allocations, and its allocator wipes every block
//! it frees (`OPENSSL_free` cleanses), so a dropped key or AES context leaves nothing behind, as
//! the RustCrypto types' zeroize-on-drop does.
//!
//! Under `fips`: signing or verifying a caller's digest (`MessageType=DIGEST`) and AES-GCM with
//! a nonce the caller draws are services AWS-LC's FIPS module runs but does not mark approved;
//! `RAW` messages are signed and verified through the approved hash-and-sign path.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, RsaKeyPair,
};

use super::rust_crypto::{self, RustCrypto};
use super::{Backend, Message};
use crate::aead::{AES128_KEY_LEN, AES256_KEY_LEN, NONCE_LEN};
use crate::asymmetric::der::{check_public_key_len, public_key_error};
use crate::asymmetric::{AsymmetricKeySpec, EncryptionAlgorithm, HashAlg, SigningAlgorithm};
use crate::{CryptoError, SecretBytes};

/// The AWS-LC backend.
pub(crate) struct AwsLc;

/// A parsed private key.
pub(crate) enum PrivateKey {
    /// One key, parsed for each of the two uses AWS-LC types apart.
    Rsa { sign: Box<RsaKeyPair>, decrypt: Box<OaepPrivateDecryptingKey> },
    /// With the one hash AWS pairs with the key's curve.
    Ecdsa { hash: HashAlg, pair: Box<EcdsaKeyPair> },
    /// PureEdDSA on AWS-LC; Ed25519ph (which AWS-LC lacks) on the RustCrypto key.
    Ed25519 { pure: Box<Ed25519KeyPair>, prehash: rust_crypto::PrivateKey },
    /// secp256k1 and ML-DSA: the RustCrypto key (see the module docs of `backend`).
    RustCrypto(rust_crypto::PrivateKey),
}

impl Backend for AwsLc {
    const NAME: &'static str = if cfg!(feature = "fips") { "AWS-LC (FIPS module)" } else { "AWS-LC" };
    type PrivateKey = PrivateKey;
    type AesGcmKey = LessSafeKey;

    fn aes_gcm_key(key: &[u8]) -> Result<LessSafeKey, CryptoError> {
        let algorithm = match key.len() {
            AES256_KEY_LEN => &AES_256_GCM,
            AES128_KEY_LEN => &AES_128_GCM,
            n => return Err(super::bad_aes_key(n)),
        };
        UnboundKey::new(algorithm, key)
            .map(LessSafeKey::new)
            .map_err(|_| CryptoError::Internal("AES-GCM key rejected".into()))
    }

    fn aes_gcm_seal(
        key: &LessSafeKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            // Only reachable for inputs beyond GCM's limits (~64 GiB of plaintext).
            .map_err(|_| CryptoError::Internal("AES-GCM encryption failed".into()))
    }

    fn aes_gcm_open(
        key: &LessSafeKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut SecretBytes,
    ) -> Result<(), CryptoError> {
        let opened = key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf.expose_mut())
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        buf.truncate(opened);
        Ok(())
    }

    fn load_private_key(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<PrivateKey, CryptoError> {
        use AsymmetricKeySpec::*;
        let rejected = || crate::asymmetric::der::stored_key_error(spec);
        Ok(match spec {
            Rsa2048 | Rsa3072 | Rsa4096 => {
                let sign = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| rejected())?;
                // A key swapped for one of another size in the store is refused, not used.
                if Some(sign.public_modulus_len() * 8) != spec.rsa_bits() {
                    return Err(rejected());
                }
                let decrypt = PrivateDecryptingKey::from_pkcs8(pkcs8)
                    .ok()
                    .and_then(|key| OaepPrivateDecryptingKey::new(key).ok())
                    .ok_or_else(rejected)?;
                PrivateKey::Rsa { sign: Box::new(sign), decrypt: Box::new(decrypt) }
            }
            EccNistP256 | EccNistP384 | EccNistP521 => {
                let curve = nist_ecdsa(spec).ok_or_else(|| {
                    CryptoError::Internal(format!("key spec {} is not a NIST ECDSA spec", spec.aws_name()))
                })?;
                let pair = EcdsaKeyPair::from_pkcs8(curve.signing, pkcs8).map_err(|_| rejected())?;
                PrivateKey::Ecdsa { hash: curve.hash, pair: Box::new(pair) }
            }
            EccNistEdwards25519 => PrivateKey::Ed25519 {
                pure: Box::new(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| rejected())?),
                prehash: RustCrypto::load_private_key(spec, pkcs8)?,
            },
            EccSecgP256k1 | MlDsa44 | MlDsa65 | MlDsa87 => {
                PrivateKey::RustCrypto(RustCrypto::load_private_key(spec, pkcs8)?)
            }
        })
    }

    fn sign(
        key: &PrivateKey,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        let failed = |_| CryptoError::Internal(format!("{} signing failed", algorithm.aws_name()));
        match key {
            PrivateKey::Rsa { sign, .. } => {
                let padding = rsa_padding(algorithm)?;
                let mut signature = vec![0; sign.public_modulus_len()];
                match message {
                    Message::Raw(raw) => sign.sign(padding, &SystemRandom::new(), raw, &mut signature),
                    Message::Digest(digest) => {
                        sign.sign_digest(padding, &import_digest(algorithm, digest)?, &mut signature)
                    }
                }
                .map_err(failed)?;
                Ok(signature)
            }
            PrivateKey::Ecdsa { hash, pair } => {
                if algorithm.hash() != Some(*hash) {
                    return Err(super::wrong_key(algorithm));
                }
                let signature = match message {
                    Message::Raw(raw) => pair.sign(&SystemRandom::new(), raw),
                    Message::Digest(digest) => pair.sign_digest(&import_digest(algorithm, digest)?),
                }
                .map_err(failed)?;
                Ok(signature.as_ref().to_vec())
            }
            PrivateKey::Ed25519 { pure, prehash } => match algorithm {
                SigningAlgorithm::Ed25519Sha512 => Ok(pure.sign(message.bytes()).as_ref().to_vec()),
                _ => RustCrypto::sign(prehash, algorithm, message),
            },
            PrivateKey::RustCrypto(key) => RustCrypto::sign(key, algorithm, message),
        }
    }

    fn rsa_decrypt(
        key: &PrivateKey,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let PrivateKey::Rsa { decrypt, .. } = key else {
            return Err(super::not_rsa());
        };
        if ciphertext.len() != decrypt.key_size_bytes() {
            return Err(CryptoError::InvalidCiphertext);
        }
        let oaep = match algorithm {
            EncryptionAlgorithm::RsaesOaepSha1 => &OAEP_SHA1_MGF1SHA1,
            EncryptionAlgorithm::RsaesOaepSha256 => &OAEP_SHA256_MGF1SHA256,
        };
        // Decrypted straight into wiped-on-drop memory, then cut to the plaintext's length.
        let mut plaintext = SecretBytes::zeroed(decrypt.min_output_size());
        let len = decrypt
            .decrypt(oaep, ciphertext, plaintext.expose_mut(), None)
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .len();
        plaintext.truncate(len);
        Ok(plaintext)
    }

    fn ecdsa_verify(
        spec: AsymmetricKeySpec,
        spki: &[u8],
        hash: HashAlg,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        let Some(curve) = nist_ecdsa(spec) else {
            // secp256k1 (see the module docs of `backend`).
            return RustCrypto::ecdsa_verify(spec, spki, hash, message, signature);
        };
        check_public_key_len(spki, spec)?;
        // AWS-LC also takes a bare SEC1 point here; a stored public key is always a
        // SubjectPublicKeyInfo, and the caller never supplies one for Verify. Parsed per call:
        // under Verify load the parse was under 1 % of kmsd's CPU, the verification over half.
        let key = signature::UnparsedPublicKey::new(curve.verification, spki)
            .parse()
            .map_err(|_| public_key_error(spec))?;
        let verified = match message {
            Message::Raw(raw) => key.verify_sig(raw, signature),
            Message::Digest(digest) => key.verify_digest_sig(&imported_digest(hash, digest)?, signature),
        };
        Ok(verified.is_ok())
    }
}

/// AWS-LC's ECDSA algorithms (DER signatures) for one NIST curve, with the one hash AWS pairs
/// with it.
struct NistEcdsa {
    signing: &'static EcdsaSigningAlgorithm,
    verification: &'static EcdsaVerificationAlgorithm,
    hash: HashAlg,
}

/// The curve of a NIST ECDSA spec; `None` for every other spec (secp256k1 included).
fn nist_ecdsa(spec: AsymmetricKeySpec) -> Option<NistEcdsa> {
    let (signing, verification, hash) = match spec {
        AsymmetricKeySpec::EccNistP256 => {
            (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P256_SHA256_ASN1, HashAlg::Sha256)
        }
        AsymmetricKeySpec::EccNistP384 => {
            (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1, HashAlg::Sha384)
        }
        AsymmetricKeySpec::EccNistP521 => {
            (&signature::ECDSA_P521_SHA512_ASN1_SIGNING, &signature::ECDSA_P521_SHA512_ASN1, HashAlg::Sha512)
        }
        _ => return None,
    };
    Some(NistEcdsa { signing, verification, hash })
}

fn rsa_padding(algorithm: SigningAlgorithm) -> Result<&'static dyn signature::RsaEncoding, CryptoError> {
    use SigningAlgorithm::*;
    // AWS's PSS parameters are aws-lc-rs's: MGF1 with the message hash, a salt as long as it.
    Ok(match algorithm {
        RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return Err(super::wrong_key(algorithm)),
    })
}

/// A caller's digest as AWS-LC takes it, for the hash the signing algorithm names.
fn import_digest(algorithm: SigningAlgorithm, digest: &[u8]) -> Result<Digest, CryptoError> {
    imported_digest(algorithm.hash().ok_or_else(|| super::wrong_key(algorithm))?, digest)
}

/// A caller's digest as AWS-LC takes it.
fn imported_digest(hash: HashAlg, digest: &[u8]) -> Result<Digest, CryptoError> {
    let hash = match hash {
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha384 => &digest::SHA384,
        HashAlg::Sha512 => &digest::SHA512,
    };
    // The caller checked the length already; a mismatch here is a broken invariant.
    Digest::import_less_safe(digest, hash)
        .map_err(|_| CryptoError::Internal("digest of the wrong length".into()))
}

/// The two backends side by side, where their outputs are deterministic and so must be equal
/// byte for byte. (Randomized signatures are checked by verification in the suites that run on
/// whichever backend the build uses.)
#[cfg(test)]
mod tests {
    use super::*;
    use crate::asymmetric::{MessageType, generate_private_key};
    use crate::random::random_bytes;

    type VerifyFn = fn(AsymmetricKeySpec, &[u8], HashAlg, Message<'_>, &[u8]) -> Result<bool, CryptoError>;

    fn seal_with<B: Backend>(key: &[u8], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        B::aes_gcm_seal(&B::aes_gcm_key(key).unwrap(), nonce, b"aad", &mut buf).unwrap();
        buf
    }

    fn open_with<B: Backend>(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let mut buf = SecretBytes::new(sealed.to_vec());
        B::aes_gcm_open(&B::aes_gcm_key(key).unwrap(), nonce, b"aad", &mut buf)?;
        Ok(buf)
    }

    #[test]
    fn aes_gcm_agrees_with_rustcrypto_both_ways() {
        for (key_len, plaintext_len) in [(32, 0), (32, 1), (32, 32), (32, 4096), (16, 100)] {
            let key = random_bytes(key_len).unwrap();
            let key = key.expose();
            let nonce: [u8; NONCE_LEN] = random_bytes(NONCE_LEN).unwrap().expose().try_into().unwrap();
            let plaintext = random_bytes(plaintext_len).unwrap();
            let sealed = seal_with::<AwsLc>(key, &nonce, plaintext.expose());
            assert_eq!(
                sealed,
                seal_with::<RustCrypto>(key, &nonce, plaintext.expose()),
                "key {key_len} B, plaintext {plaintext_len} B"
            );
            assert_eq!(open_with::<RustCrypto>(key, &nonce, &sealed).unwrap().expose(), plaintext.expose());
            assert_eq!(open_with::<AwsLc>(key, &nonce, &sealed).unwrap().expose(), plaintext.expose());

            let mut tampered = sealed;
            tampered[0] ^= 1;
            let refused = open_with::<AwsLc>(key, &nonce, &tampered);
            assert_eq!(refused.unwrap_err(), CryptoError::InvalidCiphertext);
        }
        assert!(matches!(AwsLc::aes_gcm_key(&[0; 24]), Err(CryptoError::Internal(_))));
    }

    /// RSASSA-PKCS1-v1_5 and PureEdDSA are deterministic: both backends must sign alike, from a
    /// raw message and from its digest.
    #[test]
    fn deterministic_signatures_equal_rustcrypto() {
        use SigningAlgorithm::*;
        let cases = [
            (AsymmetricKeySpec::Rsa2048, RsassaPkcs1V15Sha256),
            (AsymmetricKeySpec::Rsa2048, RsassaPkcs1V15Sha384),
            (AsymmetricKeySpec::Rsa3072, RsassaPkcs1V15Sha512),
            (AsymmetricKeySpec::EccNistEdwards25519, Ed25519Sha512),
            (AsymmetricKeySpec::EccNistEdwards25519, Ed25519PhSha512),
        ];
        for (spec, algorithm) in cases {
            let pkcs8 = generate_private_key(spec).unwrap();
            let ours = AwsLc::load_private_key(spec, pkcs8.expose()).unwrap();
            let theirs = RustCrypto::load_private_key(spec, pkcs8.expose()).unwrap();
            let raw = b"the same message for both backends";
            let digest = algorithm.hash().unwrap().digest(raw);
            for message_type in algorithm.message_types() {
                let message = match message_type {
                    MessageType::Raw => Message::Raw(raw),
                    _ => Message::Digest(&digest),
                };
                assert_eq!(
                    AwsLc::sign(&ours, algorithm, message).unwrap(),
                    RustCrypto::sign(&theirs, algorithm, message).unwrap(),
                    "{} {}",
                    algorithm.aws_name(),
                    message_type.aws_name()
                );
            }
        }
    }

    /// ECDSA signatures are randomized, so the backends are checked against each other by
    /// verification: each accepts the other's signatures, from a raw message and its digest,
    /// and both refuse a changed message and a key of another curve alike. (Wycheproof's ECDSA
    /// vectors run on whichever backend the build uses.)
    #[test]
    fn ecdsa_verification_agrees_with_rustcrypto() {
        use AsymmetricKeySpec::*;
        for (spec, algorithm) in [
            (EccNistP256, SigningAlgorithm::EcdsaSha256),
            (EccNistP384, SigningAlgorithm::EcdsaSha384),
            (EccNistP521, SigningAlgorithm::EcdsaSha512),
            (EccSecgP256k1, SigningAlgorithm::EcdsaSha256),
        ] {
            let pkcs8 = generate_private_key(spec).unwrap();
            let spki = crate::asymmetric::public_key_der(spec, pkcs8.expose()).unwrap();
            let hash = algorithm.hash().unwrap();
            let raw = b"one message, two backends";
            let digest = hash.digest(raw);
            let signatures = [
                AwsLc::sign(
                    &AwsLc::load_private_key(spec, pkcs8.expose()).unwrap(),
                    algorithm,
                    Message::Raw(raw),
                ),
                RustCrypto::sign(
                    &RustCrypto::load_private_key(spec, pkcs8.expose()).unwrap(),
                    algorithm,
                    Message::Raw(raw),
                ),
            ];
            let verifiers: [VerifyFn; 2] = [AwsLc::ecdsa_verify, RustCrypto::ecdsa_verify];
            for signature in signatures.map(Result::unwrap) {
                for verify in verifiers {
                    assert!(verify(spec, &spki, hash, Message::Raw(raw), &signature).unwrap(), "{spec:?}");
                    assert!(
                        verify(spec, &spki, hash, Message::Digest(&digest), &signature).unwrap(),
                        "{spec:?}"
                    );
                    assert!(
                        !verify(spec, &spki, hash, Message::Raw(b"another message"), &signature).unwrap()
                    );
                    assert!(!verify(spec, &spki, hash, Message::Raw(raw), &signature[1..]).unwrap());
                }
            }
            let other_curve = if spec == EccNistP384 { EccNistP256 } else { EccNistP384 };
            for verify in verifiers {
                let refused = verify(other_curve, &spki, hash, Message::Raw(raw), &[0x30, 0]);
                assert!(matches!(refused, Err(CryptoError::InvalidInput(_))), "{spec:?} as {other_curve:?}");
            }
        }
    }

    #[test]
    fn a_stored_key_of_another_size_or_curve_is_refused() {
        let rsa_2048 = generate_private_key(AsymmetricKeySpec::Rsa2048).unwrap();
        let p256 = generate_private_key(AsymmetricKeySpec::EccNistP256).unwrap();
        for (spec, pkcs8) in [
            (AsymmetricKeySpec::Rsa3072, rsa_2048.expose()),
            (AsymmetricKeySpec::EccNistP384, p256.expose()),
            (AsymmetricKeySpec::EccNistEdwards25519, p256.expose()),
            (AsymmetricKeySpec::EccNistP256, rsa_2048.expose()),
        ] {
            let loaded = AwsLc::load_private_key(spec, pkcs8);
            assert!(matches!(loaded, Err(CryptoError::Internal(_))), "{}", spec.aws_name());
        }
    }
}

/// A `fips` build runs on the validated module, in FIPS mode (its power-on self-tests passed).
#[cfg(all(test, feature = "fips"))]
mod fips_tests {
    #[test]
    fn the_module_is_in_fips_mode() {
        aws_lc_rs::try_fips_mode().unwrap();
        assert_eq!(super::super::BACKEND, "AWS-LC (FIPS module)");
    }
}
