//! A stored private key parsed once, for callers that use the same key many times.
//!
//! Parsing is not free: loading an EC or Ed25519 key from PKCS#8 derives its public key (a
//! scalar multiplication, as costly as a signature), and loading an RSA key checks it and
//! precomputes its CRT values. The service keeps these in its material cache so a Sign pays for
//! one private-key operation, not two.
//!
//! The PKCS#8 document is kept beside the parsed form for the operations that parse on use
//! (ECDH, ML-DSA). Both are wiped on drop: the RSA, ECDSA and Ed25519 key types zeroize
//! themselves, the document is a [`SecretBytes`].

use std::fmt;

use super::spec::{check_signing_combination, message_digest};
use super::{
    AsymmetricKeySpec, EncryptionAlgorithm, Family, MessageType, SigningAlgorithm, algorithm_family,
    check_ed25519_message, ecdh, ecdsa, eddsa, mldsa, rsa,
};
use crate::{CryptoError, SecretBytes};

/// A private key of one spec, parsed from its PKCS#8 DER.
pub struct PrivateKey {
    spec: AsymmetricKeySpec,
    pkcs8: SecretBytes,
    parsed: Parsed,
}

enum Parsed {
    Rsa(Box<::rsa::PrivateKey>),
    Ecdsa(Box<ecdsa::EcdsaKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// ML-DSA: its operations take the document.
    Document,
}

impl PrivateKey {
    /// Parses a stored key of `spec`. A document that does not parse as `spec` (or an RSA key
    /// of another size) is `Internal`: it came from our own store.
    pub fn from_pkcs8(spec: AsymmetricKeySpec, pkcs8: SecretBytes) -> Result<Self, CryptoError> {
        use AsymmetricKeySpec::*;
        let parsed = match spec {
            Rsa2048 | Rsa3072 | Rsa4096 => Parsed::Rsa(Box::new(rsa::load_private(spec, pkcs8.expose())?)),
            EccNistP256 | EccNistP384 | EccNistP521 | EccSecgP256k1 => {
                Parsed::Ecdsa(Box::new(ecdsa::EcdsaKey::load(spec, pkcs8.expose())?))
            }
            EccNistEdwards25519 => Parsed::Ed25519(Box::new(eddsa::load_private(pkcs8.expose())?)),
            MlDsa44 | MlDsa65 | MlDsa87 => Parsed::Document,
        };
        Ok(Self { spec, pkcs8, parsed })
    }

    pub fn spec(&self) -> AsymmetricKeySpec {
        self.spec
    }

    /// Signs `message`, with the rules of [`super::sign`].
    pub fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        check_signing_combination(self.spec, algorithm, message_type)?;
        match (algorithm_family(algorithm), &self.parsed) {
            (Family::Rsa(hash), Parsed::Rsa(key)) => {
                rsa::sign(key, algorithm, &message_digest(hash, message_type, message)?)
            }
            (Family::Ecdsa(hash), Parsed::Ecdsa(key)) => {
                key.sign(&message_digest(hash, message_type, message)?)
            }
            (Family::Ed25519, Parsed::Ed25519(key)) => {
                check_ed25519_message(algorithm, message)?;
                eddsa::sign(key, algorithm, message)
            }
            (Family::MlDsa, Parsed::Document) => {
                mldsa::sign(self.spec, self.pkcs8.expose(), message_type, message)
            }
            // check_signing_combination pairs every algorithm with its specs, so this is a
            // broken invariant, not a caller's mistake.
            _ => Err(CryptoError::Internal(format!(
                "signing algorithm {} does not belong to key spec {}",
                algorithm.aws_name(),
                self.spec.aws_name()
            ))),
        }
    }

    /// RSA-OAEP decryption, with the rules of [`super::rsa_decrypt`].
    pub fn rsa_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        match &self.parsed {
            Parsed::Rsa(key) => rsa::decrypt(key, algorithm, ciphertext),
            _ => {
                Err(CryptoError::InvalidInput(format!("key spec {} does not encrypt", self.spec.aws_name())))
            }
        }
    }

    /// ECDH with a peer's public key, with the rules of [`super::derive_shared_secret`].
    pub fn derive_shared_secret(&self, peer_public_spki_der: &[u8]) -> Result<SecretBytes, CryptoError> {
        ecdh::derive_shared_secret(self.spec, self.pkcs8.expose(), peer_public_spki_der)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("spec", &self.spec).finish_non_exhaustive()
    }
}
