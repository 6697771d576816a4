//! Sealing key material at rest under the region root key.
//!
//! Sealed layout: `0x01` (format) | 12-byte random nonce | AES-256-GCM ciphertext | 16-byte tag.
//!
//! Associated data: `"kms.seal.v1"` | format byte | `u32 len(key id)` | key id | `u32 version`.
//! The purpose label keeps a sealed value from being accepted in any other role the root key
//! might one day have; the key id and version bind the material to its slot, so a sealed value
//! copied onto another key or version (by someone who can write the store but does not hold the
//! root key) fails to unseal instead of silently becoming that key's material.
//!
//! Random nonces: the root key seals once per key creation or rotation, many orders of
//! magnitude below the 2^32 random-nonce limit of NIST SP 800-38D.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    CryptoError, SecretBytes,
    aead::{AES256_KEY_LEN, NONCE_LEN, TAG_LEN, aead_open, aead_seal},
    random::{random_array, random_bytes},
};

/// The only sealed-material format this code writes and reads.
pub const SEAL_FORMAT_V1: u8 = 0x01;

/// Domain separation label in the associated data.
const SEAL_PURPOSE: &[u8] = b"kms.seal.v1";

/// The region root key: 32 bytes that seal all key material of a region at rest. Wiped on drop;
/// `Debug` shows only that it is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey([u8; AES256_KEY_LEN]);

impl RootKey {
    /// A fresh random root key from the OS CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        Self::from_bytes(random_bytes(AES256_KEY_LEN)?.expose())
    }

    /// A root key from exactly 32 bytes (e.g. read from a protected file). Any other length is
    /// `InvalidInput`; the message states the length, never the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key: [u8; AES256_KEY_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::InvalidInput(format!("root key must be {AES256_KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        Ok(Self(key))
    }
}

impl RootKey {
    /// A 32-byte key for one `purpose`, derived from the root key (HMAC-SHA256 as a PRF, i.e.
    /// one HKDF-Expand block), so the root key itself serves only AES-GCM sealing.
    pub(crate) fn derive(&self, purpose: &str) -> zeroize::Zeroizing<[u8; 32]> {
        let mac = crate::mac::generate_mac(
            crate::mac::MacAlgorithm::HmacSha256,
            &self.0,
            &[b"kms.derive.v1\0", purpose.as_bytes()].concat(),
        );
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac);
        let mut mac = mac;
        mac.zeroize();
        key
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// Seals `material` for key `key_id`, material version `material_version`.
pub fn seal(
    root: &RootKey,
    key_id: &str,
    material_version: u32,
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let aad = associated_data(key_id, material_version)?;
    let nonce = random_array::<NONCE_LEN>()?;
    let sealed = aead_seal(&root.0, &nonce, &aad, material)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEAL_FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Recovers the material sealed for `key_id` / `material_version`. A wrong root key, key id or
/// version, or any corruption, is `Internal`: sealed material comes from our own replicated
/// store, so a failure means a misconfigured root key or a damaged store, not a bad request.
pub fn unseal(
    root: &RootKey,
    key_id: &str,
    material_version: u32,
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let aad = associated_data(key_id, material_version)?;
    let body = match sealed.split_first() {
        Some((&SEAL_FORMAT_V1, body)) if body.len() >= NONCE_LEN + TAG_LEN => body,
        _ => return Err(unseal_failed()),
    };
    let (nonce, ciphertext_and_tag) = body.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unseal_failed())?;
    aead_open(&root.0, &nonce, &aad, ciphertext_and_tag).map_err(|_| unseal_failed())
}

fn unseal_failed() -> CryptoError {
    CryptoError::Internal(
        "sealed key material failed to unseal (wrong root key, key id or version, or corrupt)".into(),
    )
}

fn associated_data(key_id: &str, material_version: u32) -> Result<Vec<u8>, CryptoError> {
    let id_len =
        u32::try_from(key_id.len()).map_err(|_| CryptoError::InvalidInput("key id too long".into()))?;
    let mut aad = Vec::with_capacity(SEAL_PURPOSE.len() + 1 + 4 + key_id.len() + 4);
    aad.extend_from_slice(SEAL_PURPOSE);
    aad.push(SEAL_FORMAT_V1);
    aad.extend_from_slice(&id_len.to_be_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(&material_version.to_be_bytes());
    Ok(aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn unseal_fails(r: Result<SecretBytes, CryptoError>) -> bool {
        matches!(r, Err(CryptoError::Internal(_)))
    }

    #[test]
    fn roundtrip() {
        let root = RootKey::generate().unwrap();
        for material in [&b""[..], &[9u8; 32], &[1u8; 64]] {
            let sealed = seal(&root, ID, 2, material).unwrap();
            assert_eq!(sealed[0], SEAL_FORMAT_V1);
            assert_eq!(sealed.len(), 1 + NONCE_LEN + material.len() + TAG_LEN);
            assert_eq!(unseal(&root, ID, 2, &sealed).unwrap().expose(), material);
        }
    }

    #[test]
    fn bound_to_root_key_key_id_and_version() {
        let root = RootKey::from_bytes(&[3u8; 32]).unwrap();
        let sealed = seal(&root, ID, 2, &[9u8; 32]).unwrap();
        let other_root = RootKey::from_bytes(&[4u8; 32]).unwrap();
        assert!(unseal_fails(unseal(&other_root, ID, 2, &sealed)));
        assert!(unseal_fails(unseal(&root, "1234abcd-12ab-34cd-56ef-1234567890ac", 2, &sealed)));
        assert!(unseal_fails(unseal(&root, ID, 1, &sealed)));
        assert!(unseal_fails(unseal(&root, ID, 3, &sealed)));
    }

    #[test]
    fn any_modification_fails() {
        let root = RootKey::generate().unwrap();
        let sealed = seal(&root, ID, 1, &[5u8; 32]).unwrap();
        for pos in 0..sealed.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = sealed.clone();
                bad[pos] ^= mask;
                assert!(unseal_fails(unseal(&root, ID, 1, &bad)), "pos {pos} mask {mask:#x}");
            }
        }
        for len in 0..sealed.len() {
            assert!(unseal_fails(unseal(&root, ID, 1, &sealed[..len])), "len {len}");
        }
    }

    #[test]
    fn root_key_length_and_debug() {
        assert!(matches!(RootKey::from_bytes(&[0u8; 31]), Err(CryptoError::InvalidInput(_))));
        assert!(matches!(RootKey::from_bytes(&[0u8; 33]), Err(CryptoError::InvalidInput(_))));
        let root = RootKey::from_bytes(&[0xAB; 32]).unwrap();
        let shown = format!("{root:?}");
        assert_eq!(shown, "RootKey(<redacted>)");
    }

    #[test]
    fn sealed_material_is_not_the_plaintext() {
        let root = RootKey::generate().unwrap();
        let material = [0x11u8; 32];
        let sealed = seal(&root, ID, 1, &material).unwrap();
        assert!(!sealed.windows(8).any(|w| w == &material[..8]));
    }
}
