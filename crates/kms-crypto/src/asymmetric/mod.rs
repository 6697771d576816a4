//! The asymmetric half of the engine: key generation for every asymmetric key spec, public keys,
//! Sign/Verify, RSA-OAEP Encrypt/Decrypt, ECDH, and data key pairs — pure, synchronous
//! functions over bytes with AWS KMS semantics (aws-kms-api.md §2.2, §2.3).
//!
//! # Formats
//!
//! - Private keys are PKCS#8 DER (RFC 5958) for every spec: the one form the caller seals under
//!   the root key and the form `GenerateDataKeyPair` returns. They are only ever held in
//!   [`SecretBytes`].
//! - Public keys are DER SubjectPublicKeyInfo (RFC 5280), what `GetPublicKey` returns.
//! - ECDSA signatures are DER `SEQUENCE { r, s }`; RSA, Ed25519 and ML-DSA signatures are their
//!   standard fixed-length encodings.
//!
//! # Errors
//!
//! - A disallowed spec/algorithm/message-type combination, a `DIGEST` of the wrong length, an
//!   oversized message or plaintext, a malformed public key: [`CryptoError::InvalidInput`].
//! - A stored private key that does not parse as the spec says: [`CryptoError::Internal`] (it
//!   came from our own store, not from the client).
//! - A signature that does not verify, whatever the reason (wrong key, tampered, not even
//!   well-formed): `Ok(false)`, which the caller maps to `KMSInvalidSignatureException`.
//! - Any RSA-OAEP decryption failure: [`CryptoError::InvalidCiphertext`].
//!
//! No message carries key material, plaintext or signatures.

pub(crate) mod der;
mod ec;
mod ecdh;
pub(crate) mod ecdsa;
pub(crate) mod eddsa;
mod mldsa;
mod private_key;
pub(crate) mod rsa;
mod spec;

pub use private_key::PrivateKey;

pub use spec::{
    AsymmetricKeySpec, EXTERNAL_MU_LEN, EncryptionAlgorithm, HashAlg, MAX_RAW_MESSAGE_LEN, MessageType,
    SigningAlgorithm,
};

use crate::backend::{Active, Backend};
use crate::{CryptoError, SecretBytes};
use spec::{check_digest_len, check_raw_len, check_signing_combination, classical_message, message_digest};

/// Generates a new private key for `spec`, as PKCS#8 DER. RSA keys use e = 65537; RSA-4096
/// takes seconds, so async callers run this on a blocking thread.
pub fn generate_private_key(spec: AsymmetricKeySpec) -> Result<SecretBytes, CryptoError> {
    use AsymmetricKeySpec::*;
    match spec {
        Rsa2048 | Rsa3072 | Rsa4096 => rsa::generate(spec),
        EccNistP256 => ec::generate::<p256::NistP256>(),
        EccNistP384 => ec::generate::<p384::NistP384>(),
        EccNistP521 => ec::generate::<p521::NistP521>(),
        EccSecgP256k1 => ec::generate::<k256::Secp256k1>(),
        EccNistEdwards25519 => eddsa::generate(),
        MlDsa44 | MlDsa65 | MlDsa87 => mldsa::generate(spec),
    }
}

/// The DER SubjectPublicKeyInfo of a stored PKCS#8 private key of `spec`.
pub fn public_key_der(spec: AsymmetricKeySpec, private_pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use AsymmetricKeySpec::*;
    match spec {
        Rsa2048 | Rsa3072 | Rsa4096 => rsa::public_key_der(spec, private_pkcs8),
        EccNistP256 => ec::public_key_der::<p256::NistP256>(spec, private_pkcs8),
        EccNistP384 => ec::public_key_der::<p384::NistP384>(spec, private_pkcs8),
        EccNistP521 => ec::public_key_der::<p521::NistP521>(spec, private_pkcs8),
        EccSecgP256k1 => ec::public_key_der::<k256::Secp256k1>(spec, private_pkcs8),
        EccNistEdwards25519 => eddsa::public_key_der(private_pkcs8),
        MlDsa44 | MlDsa65 | MlDsa87 => mldsa::public_key_der(spec, private_pkcs8),
    }
}

/// Signs `message` with the stored key of `spec`.
///
/// `RAW` messages (at most 4096 bytes) are hashed with the algorithm's hash; a `DIGEST` message
/// must be exactly that hash's length. Ed25519 and ML-DSA follow their own rules (see
/// [`SigningAlgorithm`] and the `eddsa`/`mldsa` modules).
pub fn sign(
    spec: AsymmetricKeySpec,
    private_pkcs8: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    parse(spec, private_pkcs8)?.sign(algorithm, message_type, message)
}

/// Verifies `signature` over `message` with a DER SubjectPublicKeyInfo key of `spec`.
///
/// `Ok(false)` for any signature that does not verify; `Err(InvalidInput)` for inputs that are
/// malformed independently of the signature (a disallowed combination, a wrong `DIGEST` length,
/// a public key that does not parse as `spec`).
pub fn verify(
    spec: AsymmetricKeySpec,
    public_spki_der: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    check_signing_combination(spec, algorithm, message_type)?;
    match algorithm_family(algorithm) {
        Family::Rsa(hash) => {
            let digest = message_digest(hash, message_type, message)?;
            rsa::verify(spec, public_spki_der, algorithm, &digest, signature)
        }
        Family::Ecdsa(hash) => {
            let message = classical_message(hash, message_type, message)?;
            Active::ecdsa_verify(spec, public_spki_der, hash, message, signature)
        }
        Family::Ed25519 => {
            check_ed25519_message(algorithm, message)?;
            eddsa::verify(public_spki_der, algorithm, message, signature)
        }
        Family::MlDsa => mldsa::verify(spec, public_spki_der, message_type, message, signature),
    }
}

/// RSA-OAEP encryption under a DER SubjectPublicKeyInfo RSA key (2048, 3072 or 4096 bits), as a
/// client does offline with a downloaded public key. A plaintext longer than
/// [`max_plaintext_len`] is `InvalidInput`.
pub fn rsa_encrypt(
    public_spki_der: &[u8],
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    rsa::encrypt(public_spki_der, algorithm, plaintext)
}

/// RSA-OAEP decryption with the stored key of an RSA `spec`. Every decryption failure is
/// [`CryptoError::InvalidCiphertext`].
pub fn rsa_decrypt(
    spec: AsymmetricKeySpec,
    private_pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    parse(spec, private_pkcs8)?.rsa_decrypt(algorithm, ciphertext)
}

/// Parses a borrowed stored key for one operation.
fn parse(spec: AsymmetricKeySpec, private_pkcs8: &[u8]) -> Result<PrivateKey, CryptoError> {
    PrivateKey::from_pkcs8(spec, SecretBytes::new(private_pkcs8.to_vec()))
}

/// The largest plaintext RSA-OAEP encrypts under `spec` (key bytes − 2·hash bytes − 2: RSA_2048
/// 214/190, RSA_3072 342/318, RSA_4096 470/446 for SHA-1/SHA-256). 0 for a non-RSA spec.
pub fn max_plaintext_len(spec: AsymmetricKeySpec, algorithm: EncryptionAlgorithm) -> usize {
    spec.rsa_bits().map_or(0, |bits| rsa::oaep_max_plaintext_len(bits / 8, algorithm))
}

/// ECDH between the stored key of `spec` (ECC_NIST_P256/P384/P521) and a peer's DER
/// SubjectPublicKeyInfo on the same curve; returns the raw shared x-coordinate, as AWS does.
pub fn derive_shared_secret(
    spec: AsymmetricKeySpec,
    private_pkcs8: &[u8],
    peer_public_spki_der: &[u8],
) -> Result<SecretBytes, CryptoError> {
    ecdh::derive_shared_secret(spec, private_pkcs8, peer_public_spki_der)
}

/// A fresh data key pair: the private key as PKCS#8 DER and the public key as DER
/// SubjectPublicKeyInfo. Allowed for the `DataKeyPairSpec` values: RSA_2048/3072/4096,
/// ECC_NIST_P256/P384/P521, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519.
pub fn generate_data_key_pair(spec: AsymmetricKeySpec) -> Result<(SecretBytes, Vec<u8>), CryptoError> {
    if !spec.is_data_key_pair_spec() {
        return Err(CryptoError::InvalidInput(format!(
            "key spec {} is not a data key pair spec",
            spec.aws_name()
        )));
    }
    let private = generate_private_key(spec)?;
    let public = public_key_der(spec, private.expose())?;
    Ok((private, public))
}

/// Which implementation an algorithm belongs to, with the hash the classical ones sign.
pub(crate) enum Family {
    Rsa(HashAlg),
    Ecdsa(HashAlg),
    Ed25519,
    MlDsa,
}

pub(crate) fn algorithm_family(algorithm: SigningAlgorithm) -> Family {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 | RsassaPkcs1V15Sha256 => Family::Rsa(HashAlg::Sha256),
        RsassaPssSha384 | RsassaPkcs1V15Sha384 => Family::Rsa(HashAlg::Sha384),
        RsassaPssSha512 | RsassaPkcs1V15Sha512 => Family::Rsa(HashAlg::Sha512),
        EcdsaSha256 => Family::Ecdsa(HashAlg::Sha256),
        EcdsaSha384 => Family::Ecdsa(HashAlg::Sha384),
        EcdsaSha512 => Family::Ecdsa(HashAlg::Sha512),
        Ed25519Sha512 | Ed25519PhSha512 => Family::Ed25519,
        MlDsaShake256 => Family::MlDsa,
    }
}

/// Ed25519 message rules (the message type was checked with the algorithm): PureEdDSA signs the
/// `RAW` message itself (≤ 4096 bytes); Ed25519ph takes a 64-byte SHA-512 `DIGEST`.
fn check_ed25519_message(algorithm: SigningAlgorithm, message: &[u8]) -> Result<(), CryptoError> {
    match algorithm {
        SigningAlgorithm::Ed25519PhSha512 => check_digest_len(HashAlg::Sha512, message),
        _ => check_raw_len(message),
    }
}

#[cfg(test)]
mod tests;
