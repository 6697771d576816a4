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

use super::spec::{check_signing_combination, classical_message};
use super::{
    AsymmetricKeySpec, EncryptionAlgorithm, Family, MessageType, SigningAlgorithm, algorithm_family,
    check_ed25519_message, ecdh, mldsa,
};
use crate::backend::{Active, Backend, Message};
use crate::{CryptoError, SecretBytes};

/// A private key of one spec, parsed from its PKCS#8 DER by the build's [backend](crate::backend).
pub struct PrivateKey {
    spec: AsymmetricKeySpec,
    pkcs8: SecretBytes,
    parsed: <Active as Backend>::PrivateKey,
}

impl PrivateKey {
    /// Parses a stored key of `spec`. A document that does not parse as `spec` (or an RSA key
    /// of another size) is `Internal`: it came from our own store.
    pub fn from_pkcs8(spec: AsymmetricKeySpec, pkcs8: SecretBytes) -> Result<Self, CryptoError> {
        let parsed = Active::load_private_key(spec, pkcs8.expose())?;
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
        let message = match (algorithm_family(algorithm), message_type) {
            (Family::MlDsa, _) => return mldsa::sign(self.spec, self.pkcs8.expose(), message_type, message),
            (Family::Ed25519, _) => {
                check_ed25519_message(algorithm, message)?;
                match algorithm {
                    SigningAlgorithm::Ed25519PhSha512 => Message::Digest(message),
                    _ => Message::Raw(message),
                }
            }
            (Family::Rsa(hash) | Family::Ecdsa(hash), _) => classical_message(hash, message_type, message)?,
        };
        Active::sign(&self.parsed, algorithm, message)
    }

    /// RSA-OAEP decryption, with the rules of [`super::rsa_decrypt`].
    pub fn rsa_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if self.spec.rsa_bits().is_none() {
            return Err(CryptoError::InvalidInput(format!(
                "key spec {} does not encrypt",
                self.spec.aws_name()
            )));
        }
        Active::rsa_decrypt(&self.parsed, algorithm, ciphertext)
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
