//! RSA: key generation (e = 65537), RSASSA-PSS and RSASSA-PKCS1-v1_5 signatures over a digest,
//! and RSAES-OAEP with SHA-1 or SHA-256 (the same hash for MGF1, empty label).
//!
//! rsa 0.10 blinds every private-key operation with the OS RNG and uses constant-time modular
//! exponentiation (the Marvin fix; see rust-stack.md §6). OAEP decryption failures are all
//! collapsed into one [`CryptoError::InvalidCiphertext`] here, so no padding oracle is exposed
//! through our error type either.

use getrandom::SysRng;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey, PublicKey};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::der::{
    check_public_key_len, encode_error, public_key_error, secret_from_document, stored_key_error,
};
use super::{AsymmetricKeySpec, EncryptionAlgorithm, SigningAlgorithm};
use crate::{CryptoError, SecretBytes};

/// Generates a key of the spec's size with public exponent 65537 (the rsa crate's default,
/// which is also what AWS uses). Takes seconds for RSA-4096 in debug builds.
pub(crate) fn generate(spec: AsymmetricKeySpec) -> Result<SecretBytes, CryptoError> {
    let bits = spec_bits(spec)?;
    let key = PrivateKey::new(&mut SysRng, bits)
        .map_err(|_| CryptoError::Internal("RSA key generation failed".into()))?;
    let doc = key.to_pkcs8_der().map_err(|_| encode_error("RSA private key"))?;
    Ok(secret_from_document(&doc))
}

/// The SubjectPublicKeyInfo (rsaEncryption, RFC 3279) of a stored private key.
pub(crate) fn public_key_der(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key = load_private(spec, pkcs8)?;
    encode_public(key.as_public_key())
}

/// Signs `digest` (already checked to be the algorithm's hash length).
pub(crate) fn sign(
    key: &PrivateKey,
    algorithm: SigningAlgorithm,
    digest: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use SigningAlgorithm::*;
    // The PSS helpers use a salt as long as the hash and MGF1 with the same hash: exactly the
    // AWS parameters. PKCS#1 v1.5 embeds the hash OID in the DigestInfo.
    let signed = match algorithm {
        RsassaPssSha256 => key.pss_sign_prehash::<Sha256>(digest),
        RsassaPssSha384 => key.pss_sign_prehash::<Sha384>(digest),
        RsassaPssSha512 => key.pss_sign_prehash::<Sha512>(digest),
        RsassaPkcs1V15Sha256 => key.pkcs1v15_sign_prehash::<Sha256>(digest),
        RsassaPkcs1V15Sha384 => key.pkcs1v15_sign_prehash::<Sha384>(digest),
        RsassaPkcs1V15Sha512 => key.pkcs1v15_sign_prehash::<Sha512>(digest),
        _ => return Err(not_rsa_algorithm(algorithm)),
    };
    signed.map_err(|_| CryptoError::Internal("RSA signing failed".into()))
}

/// Verifies `signature` over `digest`. Any failure of the signature itself (wrong length, wrong
/// value, bad padding) is `Ok(false)`; only a bad public key is an error.
pub(crate) fn verify(
    spec: AsymmetricKeySpec,
    spki: &[u8],
    algorithm: SigningAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use SigningAlgorithm::*;
    let key = load_public(spki, Some(spec))?;
    let checked = match algorithm {
        RsassaPssSha256 => key.pss_verify_prehash::<Sha256>(digest, signature),
        RsassaPssSha384 => key.pss_verify_prehash::<Sha384>(digest, signature),
        RsassaPssSha512 => key.pss_verify_prehash::<Sha512>(digest, signature),
        RsassaPkcs1V15Sha256 => key.pkcs1v15_verify_prehash::<Sha256>(digest, signature),
        RsassaPkcs1V15Sha384 => key.pkcs1v15_verify_prehash::<Sha384>(digest, signature),
        RsassaPkcs1V15Sha512 => key.pkcs1v15_verify_prehash::<Sha512>(digest, signature),
        _ => return Err(not_rsa_algorithm(algorithm)),
    };
    Ok(checked.is_ok())
}

/// OAEP-encrypts `plaintext` under a DER SubjectPublicKeyInfo RSA key of 2048, 3072 or 4096 bits.
pub(crate) fn encrypt(
    spki: &[u8],
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = load_public(spki, None)?;
    let max = oaep_max_plaintext_len(key.size(), algorithm);
    if plaintext.len() > max {
        return Err(CryptoError::InvalidInput(format!(
            "plaintext is {} bytes; this key and algorithm encrypt at most {max}",
            plaintext.len()
        )));
    }
    let sealed = match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => key.oaep_encrypt::<Sha1>(plaintext),
        EncryptionAlgorithm::RsaesOaepSha256 => key.oaep_encrypt::<Sha256>(plaintext),
    };
    sealed.map_err(|_| CryptoError::Internal("RSA-OAEP encryption failed".into()))
}

/// OAEP-decrypts `ciphertext`. Every failure after the key loads is the same
/// [`CryptoError::InvalidCiphertext`]: wrong length, integer out of range, bad padding, a label
/// mismatch all look alike to the caller.
///
/// rsa 0.10 deliberately ignores the first octet Y of the encoded message (its reading of the
/// CFRG RSA guidance), so it accepts an EM whose Y is not zero. RFC 8017 §7.1.2 step 3g requires
/// rejecting it, as OpenSSL and AWS-LC do and as Wycheproof expects ("First byte is 1"). We
/// restore the check with a second, blinded raw RSA operation whose first octet is compared in
/// constant time, and combine it with the crate's verdict in one branch, so no timing or error
/// difference tells the two failures apart (Manger's attack needs exactly that distinction).
/// The price is a second private-key operation per RSA Decrypt.
pub(crate) fn decrypt(
    key: &PrivateKey,
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if ciphertext.len() != key.size() {
        return Err(CryptoError::InvalidCiphertext);
    }
    let opened = match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => key.oaep_decrypt::<Sha1>(ciphertext),
        EncryptionAlgorithm::RsaesOaepSha256 => key.oaep_decrypt::<Sha256>(ciphertext),
    };
    let first_octet_ok = first_octet_is_zero(key, ciphertext);
    // The Vec comes back at its final size; wrapping it moves it without a copy, and a
    // plaintext refused below is wiped on drop.
    match opened.map(SecretBytes::new) {
        Ok(plaintext) if bool::from(first_octet_ok) => Ok(plaintext),
        _ => Err(CryptoError::InvalidCiphertext),
    }
}

/// Whether the first octet of EM = c^d mod n (as k octets) is zero, computed without
/// secret-dependent branches. The integer and its bytes are wiped on drop.
fn first_octet_is_zero(key: &PrivateKey, ciphertext: &[u8]) -> Choice {
    let Ok(c) = BoxedUint::from_be_slice(ciphertext, key.n_bits_precision()) else {
        return Choice::from(0);
    };
    let Ok(em) = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut SysRng), &c) else {
        return Choice::from(0);
    };
    let em = Zeroizing::new(em);
    let bytes = Zeroizing::new(em.to_be_bytes());
    // `bytes` has the limb-aligned storage width; EM's first octet and anything above it (zero
    // since em < n) are the octets before the last k - 1.
    let Some(head_len) = (bytes.len() + 1).checked_sub(key.size()) else {
        return Choice::from(0);
    };
    let head = bytes[..head_len].iter().fold(0u8, |acc, b| acc | b);
    head.ct_eq(&0)
}

/// RFC 8017 §7.1.1: mLen ≤ k − 2·hLen − 2.
pub(crate) fn oaep_max_plaintext_len(modulus_bytes: usize, algorithm: EncryptionAlgorithm) -> usize {
    modulus_bytes.saturating_sub(2 * algorithm.hash_len() + 2)
}

fn spec_bits(spec: AsymmetricKeySpec) -> Result<usize, CryptoError> {
    spec.rsa_bits()
        .ok_or_else(|| CryptoError::InvalidInput(format!("key spec {} is not an RSA spec", spec.aws_name())))
}

/// Parses a stored PKCS#8 RSA key and checks its modulus has the spec's size, so a key
/// swapped for a smaller one in the store is refused rather than used.
pub(crate) fn load_private(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<PrivateKey, CryptoError> {
    let bits = spec_bits(spec)?;
    let key = PrivateKey::from_pkcs8_der(pkcs8).map_err(|_| stored_key_error(spec))?;
    if modulus_bits(key.as_public_key()) != bits {
        return Err(stored_key_error(spec));
    }
    Ok(key)
}

/// Parses a DER SubjectPublicKeyInfo RSA key. With a spec, the modulus must have that size;
/// without one (encryption with a downloaded key), any AWS size is accepted.
fn load_public(spki: &[u8], spec: Option<AsymmetricKeySpec>) -> Result<PublicKey, CryptoError> {
    let named = spec.unwrap_or(AsymmetricKeySpec::Rsa2048);
    let error = || match spec {
        Some(spec) => public_key_error(spec),
        None => CryptoError::InvalidInput(
            "public key is not a DER SubjectPublicKeyInfo RSA key of 2048, 3072 or 4096 bits".into(),
        ),
    };
    check_public_key_len(spki, named).map_err(|_| error())?;
    let key = PublicKey::from_public_key_der(spki).map_err(|_| error())?;
    let bits = modulus_bits(&key);
    let size_ok = match spec {
        Some(spec) => spec.rsa_bits() == Some(bits),
        None => matches!(bits, 2048 | 3072 | 4096),
    };
    if !size_ok {
        return Err(error());
    }
    Ok(key)
}

fn modulus_bits(key: &PublicKey) -> usize {
    key.n().bit_width_vartime() as usize
}

fn encode_public(key: &PublicKey) -> Result<Vec<u8>, CryptoError> {
    key.to_public_key_der().map(|doc| doc.into_vec()).map_err(|_| encode_error("RSA public key"))
}

fn not_rsa_algorithm(algorithm: SigningAlgorithm) -> CryptoError {
    CryptoError::InvalidInput(format!("signing algorithm {} is not an RSA algorithm", algorithm.aws_name()))
}
