//! Sealing key material at rest under the region root key.
//!
//! Sealed layout (v2, written since root keys can rotate):
//! `0x02` (format) | 8-byte root key id | 12-byte random nonce | AES-256-GCM ciphertext | tag.
//! The v1 layout, still read, lacks the root key id: `0x01` | nonce | ciphertext | tag.
//!
//! Associated data: `"kms.seal.v1"` | format byte | `u32 len(key id)` | key id | `u32 version`,
//! followed in v2 by the root key id.
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
    aead::{AES256_KEY_LEN, AesGcmKey, NONCE_LEN, TAG_LEN, aead_open, aead_seal},
    random::{random_array, random_bytes},
};

/// The format written before root key rotation existed; read, never written.
pub const SEAL_FORMAT_V1: u8 = 0x01;
/// The format written now: it names the root key that sealed it.
pub const SEAL_FORMAT_V2: u8 = 0x02;

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

/// The public name of a root key: the first 8 bytes of a key derived from it, so it tells
/// operators and the store which root key sealed a value without revealing anything of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RootKeyId(pub [u8; ROOT_KEY_ID_LEN]);

/// Length of a [`RootKeyId`].
pub const ROOT_KEY_ID_LEN: usize = 8;

impl RootKey {
    /// This key's public id.
    pub fn id(&self) -> RootKeyId {
        let derived = self.derive("root-key-id");
        let mut id = [0u8; ROOT_KEY_ID_LEN];
        id.copy_from_slice(&derived[..ROOT_KEY_ID_LEN]);
        RootKeyId(id)
    }
}

impl fmt::Display for RootKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 2 * ROOT_KEY_ID_LEN];
        f.write_str(base16ct::lower::encode_str(&self.0, &mut hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for RootKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootKeyId({self})")
    }
}

/// The root keys a node holds: the active one, which seals everything new, and the previous ones
/// it still unseals with while a root key rotation re-seals their material (and which it keeps
/// until nothing sealed under them is left).
#[derive(Clone, Debug)]
pub struct RootKeyRing {
    /// Each key beside its id, computed once: `get` runs on every unseal, and an id is an HMAC.
    active: (RootKeyId, RootKey),
    previous: Vec<(RootKeyId, RootKey)>,
}

impl RootKeyRing {
    /// A ring of `active` and `previous`. The same key twice is refused: it would mean the
    /// rotation the configuration describes did not happen.
    pub fn new(active: RootKey, previous: Vec<RootKey>) -> Result<Self, CryptoError> {
        let ring = Self { active: with_id(active), previous: previous.into_iter().map(with_id).collect() };
        let mut ids: Vec<RootKeyId> = ring.entries().map(|(id, _)| *id).collect();
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(CryptoError::InvalidInput(format!("root key {} is listed twice", pair[0])));
        }
        Ok(ring)
    }

    /// The key that seals new material.
    pub fn active(&self) -> &RootKey {
        &self.active.1
    }

    /// The active key's id.
    pub fn active_id(&self) -> RootKeyId {
        self.active.0
    }

    /// Every key, the active one first.
    pub fn keys(&self) -> impl Iterator<Item = &RootKey> {
        self.entries().map(|(_, key)| key)
    }

    /// The key named `id`, if this ring has it.
    pub fn get(&self, id: RootKeyId) -> Option<&RootKey> {
        self.entries().find(|(key_id, _)| *key_id == id).map(|(_, key)| key)
    }

    fn entries(&self) -> impl Iterator<Item = &(RootKeyId, RootKey)> {
        std::iter::once(&self.active).chain(&self.previous)
    }
}

fn with_id(key: RootKey) -> (RootKeyId, RootKey) {
    (key.id(), key)
}

impl From<RootKey> for RootKeyRing {
    fn from(active: RootKey) -> Self {
        Self { active: with_id(active), previous: Vec::new() }
    }
}

/// Seals `material` for key `key_id`, material version `material_version`.
pub fn seal(
    root: &RootKey,
    key_id: &str,
    material_version: u32,
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let root_id = root.id();
    let aad = associated_data(SEAL_FORMAT_V2, key_id, material_version, Some(root_id))?;
    let nonce = random_array::<NONCE_LEN>()?;
    let sealed = aead_seal(&AesGcmKey::new(&root.0)?, &nonce, &aad, material)?;
    let mut out = Vec::with_capacity(1 + ROOT_KEY_ID_LEN + NONCE_LEN + sealed.len());
    out.push(SEAL_FORMAT_V2);
    out.extend_from_slice(&root_id.0);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Which root key sealed `sealed`: `Some(id)` for the v2 format, `None` for v1 (which does not
/// say) and for anything unreadable.
pub fn sealed_under(sealed: &[u8]) -> Option<RootKeyId> {
    match sealed.split_first() {
        Some((&SEAL_FORMAT_V2, rest)) => rest.get(..ROOT_KEY_ID_LEN)?.try_into().ok().map(RootKeyId),
        _ => None,
    }
}

/// Recovers the material sealed for `key_id` / `material_version` with whichever key of `keys`
/// sealed it. A missing root key, a wrong key id or version, or any corruption, is `Internal`:
/// sealed material comes from our own replicated store, so a failure means a misconfigured root
/// key or a damaged store, not a bad request.
pub fn unseal(
    keys: &RootKeyRing,
    key_id: &str,
    material_version: u32,
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    match sealed.split_first() {
        Some((&SEAL_FORMAT_V1, body)) => {
            let aad = associated_data(SEAL_FORMAT_V1, key_id, material_version, None)?;
            // v1 does not name its root key: it can only be from before a rotation, so each
            // key of the ring is tried, the active one first.
            keys.keys().find_map(|root| open(root, &aad, body).ok()).ok_or_else(unseal_failed)
        }
        Some((&SEAL_FORMAT_V2, _)) => {
            let root_id = sealed_under(sealed).ok_or_else(unseal_failed)?;
            let root = keys.get(root_id).ok_or_else(|| {
                CryptoError::Internal(format!(
                    "key material is sealed under root key {root_id}, which this node does not hold: \
                     add it to the previous root keys until the re-seal has finished"
                ))
            })?;
            let aad = associated_data(SEAL_FORMAT_V2, key_id, material_version, Some(root_id))?;
            open(root, &aad, &sealed[1 + ROOT_KEY_ID_LEN..])
        }
        _ => Err(unseal_failed()),
    }
}

/// Opens `nonce | ciphertext | tag` under `root`.
fn open(root: &RootKey, aad: &[u8], body: &[u8]) -> Result<SecretBytes, CryptoError> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(unseal_failed());
    }
    let (nonce, ciphertext_and_tag) = body.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unseal_failed())?;
    aead_open(&AesGcmKey::new(&root.0)?, &nonce, aad, ciphertext_and_tag).map_err(|_| unseal_failed())
}

fn unseal_failed() -> CryptoError {
    CryptoError::Internal(
        "sealed key material failed to unseal (wrong root key, key id or version, or corrupt)".into(),
    )
}

fn associated_data(
    format: u8,
    key_id: &str,
    material_version: u32,
    root_id: Option<RootKeyId>,
) -> Result<Vec<u8>, CryptoError> {
    let id_len =
        u32::try_from(key_id.len()).map_err(|_| CryptoError::InvalidInput("key id too long".into()))?;
    let mut aad = Vec::with_capacity(SEAL_PURPOSE.len() + 1 + 4 + key_id.len() + 4 + ROOT_KEY_ID_LEN);
    aad.extend_from_slice(SEAL_PURPOSE);
    aad.push(format);
    aad.extend_from_slice(&id_len.to_be_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(&material_version.to_be_bytes());
    if let Some(root_id) = root_id {
        aad.extend_from_slice(&root_id.0);
    }
    Ok(aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn unseal_fails(r: Result<SecretBytes, CryptoError>) -> bool {
        matches!(r, Err(CryptoError::Internal(_)))
    }

    fn ring(root: &RootKey) -> RootKeyRing {
        root.clone().into()
    }

    /// What `seal` wrote before root keys had ids: the v1 layout.
    fn seal_v1(root: &RootKey, key_id: &str, version: u32, material: &[u8]) -> Vec<u8> {
        let aad = associated_data(SEAL_FORMAT_V1, key_id, version, None).unwrap();
        let nonce = random_array::<NONCE_LEN>().unwrap();
        [
            &[SEAL_FORMAT_V1][..],
            &nonce,
            &aead_seal(&AesGcmKey::new(&root.0).unwrap(), &nonce, &aad, material).unwrap(),
        ]
        .concat()
    }

    #[test]
    fn roundtrip() {
        let root = RootKey::generate().unwrap();
        for material in [&b""[..], &[9u8; 32], &[1u8; 64]] {
            let sealed = seal(&root, ID, 2, material).unwrap();
            assert_eq!(sealed[0], SEAL_FORMAT_V2);
            assert_eq!(sealed.len(), 1 + ROOT_KEY_ID_LEN + NONCE_LEN + material.len() + TAG_LEN);
            assert_eq!(sealed_under(&sealed), Some(root.id()));
            assert_eq!(unseal(&ring(&root), ID, 2, &sealed).unwrap().expose(), material);
        }
    }

    #[test]
    fn bound_to_root_key_key_id_and_version() {
        let root = RootKey::from_bytes(&[3u8; 32]).unwrap();
        let sealed = seal(&root, ID, 2, &[9u8; 32]).unwrap();
        let other_root = RootKey::from_bytes(&[4u8; 32]).unwrap();
        assert!(unseal_fails(unseal(&ring(&other_root), ID, 2, &sealed)));
        assert!(unseal_fails(unseal(&ring(&root), "1234abcd-12ab-34cd-56ef-1234567890ac", 2, &sealed)));
        assert!(unseal_fails(unseal(&ring(&root), ID, 1, &sealed)));
        assert!(unseal_fails(unseal(&ring(&root), ID, 3, &sealed)));
    }

    #[test]
    fn any_modification_fails() {
        let root = RootKey::generate().unwrap();
        let keys = RootKeyRing::new(root.clone(), vec![RootKey::generate().unwrap()]).unwrap();
        for sealed in [seal(&root, ID, 1, &[5u8; 32]).unwrap(), seal_v1(&root, ID, 1, &[5u8; 32])] {
            for pos in 0..sealed.len() {
                for mask in [0x01u8, 0x80, 0xFF] {
                    let mut bad = sealed.clone();
                    bad[pos] ^= mask;
                    assert!(unseal_fails(unseal(&keys, ID, 1, &bad)), "pos {pos} mask {mask:#x}");
                }
            }
            for len in 0..sealed.len() {
                assert!(unseal_fails(unseal(&keys, ID, 1, &sealed[..len])), "len {len}");
            }
        }
    }

    #[test]
    fn a_ring_unseals_what_any_of_its_keys_sealed_and_seals_with_the_active_one() {
        let (old, new) = (RootKey::from_bytes(&[1u8; 32]).unwrap(), RootKey::from_bytes(&[2u8; 32]).unwrap());
        assert_ne!(old.id(), new.id());
        let under_old = seal(&old, ID, 0, b"old material").unwrap();
        let legacy = seal_v1(&old, ID, 0, b"legacy material");
        let rotated = RootKeyRing::new(new.clone(), vec![old.clone()]).unwrap();
        assert_eq!(rotated.active().id(), new.id());
        assert_eq!(unseal(&rotated, ID, 0, &under_old).unwrap().expose(), b"old material");
        assert_eq!(unseal(&rotated, ID, 0, &legacy).unwrap().expose(), b"legacy material");
        assert_eq!(sealed_under(&legacy), None);

        // Once the old key is gone, what it sealed fails, naming the key that is missing.
        let err = unseal(&ring(&new), ID, 0, &under_old).unwrap_err();
        assert!(err.to_string().contains(&old.id().to_string()), "{err}");
        assert!(unseal_fails(unseal(&ring(&new), ID, 0, &legacy)));

        // The id in a v2 header is authenticated: pointing it at another key of the ring fails.
        let mut relabelled = under_old.clone();
        relabelled[1..1 + ROOT_KEY_ID_LEN].copy_from_slice(&new.id().0);
        assert!(unseal_fails(unseal(&rotated, ID, 0, &relabelled)));

        assert!(RootKeyRing::new(new.clone(), vec![old.clone(), new.clone()]).is_err());
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
