//! The KMS crypto engine: pure, synchronous functions over bytes. Symmetric operations live in the
//! modules below; asymmetric keys (RSA, ECDSA, ECDH, Ed25519, ML-DSA) in [`asymmetric`].
//!
//! # Threat model
//!
//! - **Key material never leaves in the clear.** At rest (RocksDB, the Raft log, snapshots) it
//!   exists only [sealed](seal) under the region root key, bound to its key id and material
//!   version so a store writer cannot swap material between keys. Unsealed material and
//!   plaintexts live in [`SecretBytes`] / [`RootKey`], wiped on drop and redacted in `Debug`;
//!   errors never carry them.
//! - **Ciphertext blobs are untrusted input.** They are [self-describing](blob) (format, key id,
//!   material version) and their header and the encryption context are AES-GCM associated data,
//!   so any change fails with a single, uninformative [`CryptoError::InvalidCiphertext`].
//! - **Nonces are random** (96 bits from the OS CSPRNG): no counter state to persist, replicate
//!   or get wrong after a crash or a leader change. The price is a cap of 2^32 encryptions per
//!   key material version (NIST SP 800-38D), reset by rotation; see [`blob`].
//! - Not covered here: side channels of the host, a compromised process, or the protection of
//!   the root key itself (the caller loads it).
//!
//! All AES-GCM goes through [`aead::aead_seal`] / [`aead::aead_open`], the functions the
//! Wycheproof vectors test.
#![forbid(unsafe_code)]

pub mod aead;
pub mod asymmetric;
pub mod backend;
pub mod blob;
mod error;
pub mod import;
pub mod mac;
pub mod material;
pub mod random;
pub mod region_wrap;
pub mod seal;
mod secret;

pub use aead::AesGcmKey;
pub use asymmetric::{
    AsymmetricKeySpec, EncryptionAlgorithm, MessageType, PrivateKey, SigningAlgorithm, derive_shared_secret,
    generate_data_key_pair, generate_private_key, max_plaintext_len, public_key_der, rsa_decrypt,
    rsa_encrypt, sign, verify,
};
pub use backend::BACKEND;
pub use blob::{BlobHeader, EncryptionContext, decrypt_blob, encode_context, encrypt_blob, parse_header};
pub use error::CryptoError;
pub use mac::{MacAlgorithm, generate_mac, verify_mac};
pub use material::{SymmetricKeySpec, generate_symmetric_material};
pub use random::random_bytes;
pub use region_wrap::{ReplicationKeyPair, WrapBinding, wrap_for_region};
pub use seal::{RootKey, RootKeyId, RootKeyRing, seal, sealed_under, unseal};
pub use secret::SecretBytes;

#[cfg(test)]
mod test_util {
    /// Decodes a hex string (whitespace-free) in tests.
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
