//! The primitives behind the engine, chosen at build time: the pure-Rust RustCrypto crates, or
//! AWS-LC (through `aws-lc-rs`) with the `aws-lc` feature, or AWS-LC's FIPS module with `fips`.
//!
//! Like a rustls crypto provider, a backend supplies only the operations whose speed matters on
//! the request path: AES-GCM (every Encrypt, Decrypt, data key and root-key seal), the
//! private-key operations of a cached [`crate::PrivateKey`] (Sign, RSA Decrypt) and ECDSA
//! verification (AWS-LC verifies P-256 about 3x faster). Everything else (key generation, public
//! keys, RSA and Ed25519 Verify, ECDH, ML-DSA, HMAC, key wrapping) is RustCrypto in every build:
//! HMAC and Ed25519 verification run at the same speed in both, an RSA verification costs a
//! fraction of a signature, and one implementation of the rarer paths is one less to keep right.
//! The measured difference is in BENCHMARKS.md.
//!
//! Both backends answer to the same trait, and the same tests check them: the Wycheproof and
//! NIST vectors, the OpenSSL interoperability suite and the round trips run once per backend
//! (CI runs the crypto tests with and without AWS-LC).
//!
//! What the AWS-LC backend delegates: secp256k1 (RustCrypto signs low-S, which AWS-LC does not,
//! and both builds must sign alike) and Ed25519ph (AWS-LC has no prehash Ed25519) keep their
//! RustCrypto keys; ML-DSA is signed from its PKCS#8 document in both.

use std::borrow::Cow;

use crate::aead::NONCE_LEN;
use crate::asymmetric::{AsymmetricKeySpec, EncryptionAlgorithm, HashAlg, SigningAlgorithm};
use crate::{CryptoError, SecretBytes};

#[cfg(any(feature = "aws-lc", feature = "fips"))]
mod aws_lc;
pub(crate) mod rust_crypto;

/// The backend this build uses.
#[cfg(any(feature = "aws-lc", feature = "fips"))]
pub(crate) type Active = aws_lc::AwsLc;
/// The backend this build uses.
#[cfg(not(any(feature = "aws-lc", feature = "fips")))]
pub(crate) type Active = rust_crypto::RustCrypto;

/// The name of the backend this build uses, for the start-up log and benchmark reports.
pub const BACKEND: &str = <Active as Backend>::NAME;

/// What a signature covers, its length already checked against the algorithm's rules.
#[derive(Clone, Copy)]
pub(crate) enum Message<'a> {
    /// The message itself: hashed by the signature scheme (or signed whole, PureEdDSA).
    Raw(&'a [u8]),
    /// The caller's digest of the message (`MessageType=DIGEST`), or Ed25519ph's 64-byte input.
    Digest(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The digest a prehash signer signs: the hash of a raw message, or the digest as given.
    pub(crate) fn digest(self, hash: HashAlg) -> Cow<'a, [u8]> {
        match self {
            Self::Raw(message) => Cow::Owned(hash.digest(message)),
            Self::Digest(digest) => Cow::Borrowed(digest),
        }
    }

    /// The bytes as given.
    pub(crate) fn bytes(self) -> &'a [u8] {
        match self {
            Self::Raw(bytes) | Self::Digest(bytes) => bytes,
        }
    }
}

/// The operations a backend supplies. Every method is a pure function over bytes; errors follow
/// the engine's rules (a stored key that does not parse is `Internal`, any decryption failure is
/// `InvalidCiphertext`) and never carry secrets.
pub(crate) trait Backend {
    /// Shown in logs and benchmark reports.
    const NAME: &'static str;
    /// A parsed private key, wiped on drop.
    type PrivateKey: Send + Sync;
    /// An AES-GCM key with its schedule expanded, wiped on drop.
    type AesGcmKey: Send + Sync;

    /// Expands a 16- or 32-byte AES-GCM key (`Internal` for any other length).
    fn aes_gcm_key(key: &[u8]) -> Result<Self::AesGcmKey, CryptoError>;

    /// AES-GCM: encrypts `buf` in place and appends the 16-byte tag. The caller reserved room
    /// for the tag, so no plaintext copy is left by a reallocation.
    fn aes_gcm_seal(
        key: &Self::AesGcmKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;

    /// AES-GCM decryption of `ciphertext || tag` in place; on success `buf` is cut down to the
    /// plaintext.
    fn aes_gcm_open(
        key: &Self::AesGcmKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut SecretBytes,
    ) -> Result<(), CryptoError>;

    /// Parses the stored PKCS#8 private key of `spec`.
    fn load_private_key(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<Self::PrivateKey, CryptoError>;

    /// Signs with a key whose spec allows `algorithm` (checked by the caller), for RSA, ECDSA
    /// and Ed25519 keys.
    fn sign(
        key: &Self::PrivateKey,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, CryptoError>;

    /// RSA-OAEP decryption; every failure is `InvalidCiphertext`.
    fn rsa_decrypt(
        key: &Self::PrivateKey,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError>;

    /// Verifies a DER ECDSA signature over `message` (hashed with `hash`, the hash AWS pairs
    /// with the curve, when raw) with a DER SubjectPublicKeyInfo on `spec`'s curve. `Ok(false)`
    /// for any signature that does not verify, high-S ones included (plain ECDSA accepts both
    /// `s` and `n - s`, as AWS does); `Err(InvalidInput)` for a key that does not parse as `spec`.
    fn ecdsa_verify(
        spec: AsymmetricKeySpec,
        spki: &[u8],
        hash: HashAlg,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, CryptoError>;
}

/// A signing algorithm reached a key of another family: `check_signing_combination` pairs every
/// algorithm with its specs first, so this is a broken invariant, not a caller's mistake.
fn wrong_key(algorithm: SigningAlgorithm) -> CryptoError {
    CryptoError::Internal(format!(
        "signing algorithm {} reached a key of another family",
        algorithm.aws_name()
    ))
}

fn not_rsa() -> CryptoError {
    CryptoError::InvalidInput("only RSA keys decrypt".into())
}

/// A key of the wrong size is a bug or corrupt stored material, never client input.
pub(crate) fn bad_aes_key(len: usize) -> CryptoError {
    CryptoError::Internal(format!("AES-GCM key of {len} bytes"))
}
