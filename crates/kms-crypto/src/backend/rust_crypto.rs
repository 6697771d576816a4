//! The pure-Rust backend: `aes-gcm`, `rsa`, the `p256`/`p384`/`p521`/`k256` ECDSA crates and
//! `ed25519-dalek`. Always built: it is the whole engine without the `aws-lc` feature, and the
//! AWS-LC backend hands it the keys AWS-LC does not sign alike (secp256k1, Ed25519ph).

use aes_gcm::aead::{AeadInOut, Buffer};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};

use super::{Backend, Message};
use crate::aead::{AES128_KEY_LEN, AES256_KEY_LEN, NONCE_LEN};
use crate::asymmetric::{
    AsymmetricKeySpec, EncryptionAlgorithm, Family, HashAlg, SigningAlgorithm, algorithm_family, ecdsa,
    eddsa, rsa,
};
use crate::{CryptoError, SecretBytes};

/// The RustCrypto backend.
pub(crate) struct RustCrypto;

/// A parsed private key. The RSA, ECDSA and Ed25519 key types zeroize themselves on drop.
pub(crate) enum PrivateKey {
    Rsa(Box<::rsa::PrivateKey>),
    Ecdsa(Box<ecdsa::EcdsaKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// ML-DSA: signed from its PKCS#8 document, which the caller keeps.
    Document,
}

impl Backend for RustCrypto {
    const NAME: &'static str = "RustCrypto";
    type PrivateKey = PrivateKey;
    type AesGcmKey = Cipher;

    fn aes_gcm_key(key: &[u8]) -> Result<Cipher, CryptoError> {
        match key.len() {
            AES256_KEY_LEN => Aes256Gcm::new_from_slice(key).map(|c| Cipher::Aes256(Box::new(c))),
            AES128_KEY_LEN => Aes128Gcm::new_from_slice(key).map(|c| Cipher::Aes128(Box::new(c))),
            n => return Err(super::bad_aes_key(n)),
        }
        .map_err(|_| CryptoError::Internal("AES-GCM key rejected".into()))
    }

    fn aes_gcm_seal(
        key: &Cipher,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let nonce = (*nonce).into();
        match key {
            Cipher::Aes128(c) => c.encrypt_in_place(&nonce, aad, buf),
            Cipher::Aes256(c) => c.encrypt_in_place(&nonce, aad, buf),
        }
        // Only reachable for inputs beyond GCM's limits (~64 GiB of plaintext).
        .map_err(|_| CryptoError::Internal("AES-GCM encryption failed".into()))
    }

    fn aes_gcm_open(
        key: &Cipher,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut SecretBytes,
    ) -> Result<(), CryptoError> {
        let nonce = (*nonce).into();
        let mut view = SecretVecBuffer(buf);
        match key {
            Cipher::Aes128(c) => c.decrypt_in_place(&nonce, aad, &mut view),
            Cipher::Aes256(c) => c.decrypt_in_place(&nonce, aad, &mut view),
        }
        .map_err(|_| CryptoError::InvalidCiphertext)
    }

    fn load_private_key(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<PrivateKey, CryptoError> {
        use AsymmetricKeySpec::*;
        Ok(match spec {
            Rsa2048 | Rsa3072 | Rsa4096 => PrivateKey::Rsa(Box::new(rsa::load_private(spec, pkcs8)?)),
            EccNistP256 | EccNistP384 | EccNistP521 | EccSecgP256k1 => {
                PrivateKey::Ecdsa(Box::new(ecdsa::EcdsaKey::load(spec, pkcs8)?))
            }
            EccNistEdwards25519 => PrivateKey::Ed25519(Box::new(eddsa::load_private(pkcs8)?)),
            MlDsa44 | MlDsa65 | MlDsa87 => PrivateKey::Document,
        })
    }

    fn sign(
        key: &PrivateKey,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        match (algorithm_family(algorithm), key) {
            (Family::Rsa(hash), PrivateKey::Rsa(key)) => rsa::sign(key, algorithm, &message.digest(hash)),
            (Family::Ecdsa(hash), PrivateKey::Ecdsa(key)) => key.sign(&message.digest(hash)),
            (Family::Ed25519, PrivateKey::Ed25519(key)) => eddsa::sign(key, algorithm, message.bytes()),
            _ => Err(super::wrong_key(algorithm)),
        }
    }

    fn rsa_decrypt(
        key: &PrivateKey,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        match key {
            PrivateKey::Rsa(key) => rsa::decrypt(key, algorithm, ciphertext),
            _ => Err(super::not_rsa()),
        }
    }

    fn ecdsa_verify(
        spec: AsymmetricKeySpec,
        spki: &[u8],
        hash: HashAlg,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        ecdsa::verify(spec, spki, &message.digest(hash), signature)
    }
}

/// The two AES-GCM key sizes, so the vectors for both exercise the same code path. Boxed so the
/// expanded key schedule lives in one heap place that is zeroized on drop (the `zeroize`
/// feature of aes-gcm), rather than being moved around the stack.
pub(crate) enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

/// Lets aead decrypt straight into a [`SecretBytes`], which only ever shrinks (the tag is cut
/// off), so no plaintext is copied into memory that escapes zeroization.
struct SecretVecBuffer<'a>(&'a mut SecretBytes);

impl AsRef<[u8]> for SecretVecBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

impl AsMut<[u8]> for SecretVecBuffer<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.expose_mut()
    }
}

impl Buffer for SecretVecBuffer<'_> {
    fn extend_from_slice(&mut self, _other: &[u8]) -> aes_gcm::aead::Result<()> {
        // Decryption never grows the buffer; refusing keeps the no-reallocation promise.
        Err(aes_gcm::Error)
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}
