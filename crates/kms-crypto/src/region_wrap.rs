//! Key material in flight between regions, wrapped for the destination region (HPKE, RFC 9180).
//!
//! Every region has a *replication key pair*, DHKEM(X25519, HKDF-SHA256), derived from its root
//! key: all nodes of a region hold the same pair, and nothing new is stored or replicated. A region
//! publishes the public half to the others; a sending region wraps each material for it in HPKE
//! base mode with HKDF-SHA256 and AES-256-GCM, so material never crosses a region boundary as
//! plaintext, not even inside TLS, and only the destination's root key can open it.
//!
//! The HPKE `info` binds a wrap to its source and destination regions, key id and material
//! version: a wrapped value replayed as another key's material, another version, or towards
//! another region fails to open. Who *sent* a wrap is the transport's business (mutual TLS with
//! region node certificates), not this module's.
//!
//! Wrapped layout: `0x01` (format) | 32-byte encapsulated key | AES-256-GCM ciphertext and tag.

use std::fmt;

use hpke::aead::{Aead as HpkeAead, AesGcm256};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

use crate::{CryptoError, RootKey, SecretBytes};

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// The only wrapped-material format this code writes and reads.
pub const REGION_WRAP_FORMAT_V1: u8 = 0x01;
const ENCAPPED_KEY_LEN: usize = 32;
/// The root-key derivation purpose of the replication key pair.
const KEY_PAIR_PURPOSE: &str = "region-replication-key-pair";
/// Domain separation at the start of every `info`.
const INFO_LABEL: &[u8] = b"kms.region-wrap.v1";

/// What a wrap is bound to. Every field goes into the HPKE `info`, length-prefixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapBinding<'a> {
    pub source_region: &'a str,
    pub destination_region: &'a str,
    pub key_id: &'a str,
    pub material_version: u32,
}

impl WrapBinding<'_> {
    fn info(&self) -> Result<Vec<u8>, CryptoError> {
        let mut info = INFO_LABEL.to_vec();
        for field in [self.source_region, self.destination_region, self.key_id] {
            let len = u16::try_from(field.len())
                .map_err(|_| CryptoError::InvalidInput("region name or key id too long to bind".into()))?;
            info.extend_from_slice(&len.to_be_bytes());
            info.extend_from_slice(field.as_bytes());
        }
        info.extend_from_slice(&self.material_version.to_be_bytes());
        Ok(info)
    }
}

/// A region's replication key pair. The private half is wiped on drop (x25519-dalek) and never
/// shown by `Debug`.
pub struct ReplicationKeyPair {
    private: PrivateKey,
    public: PublicKey,
}

impl ReplicationKeyPair {
    /// The pair of the region whose root key is `root`: the same on every node of the region.
    pub fn derive(root: &RootKey) -> Self {
        Self::from_ikm(root.derive(KEY_PAIR_PURPOSE).as_slice())
    }

    fn from_ikm(ikm: &[u8]) -> Self {
        let (private, public) = Kem::derive_keypair(ikm);
        Self { private, public }
    }

    /// The public key other regions wrap material for (32 bytes, X25519).
    pub fn public_key(&self) -> Vec<u8> {
        self.public.to_bytes().to_vec()
    }

    /// Opens material wrapped for this region. Any mismatch of binding or any corruption is the
    /// one `InvalidCiphertext`, without saying which.
    pub fn unwrap(&self, binding: &WrapBinding<'_>, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.open::<AesGcm256>(&binding.info()?, wrapped)
    }

    fn open<A: HpkeAead>(&self, info: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        let body = match wrapped.split_first() {
            Some((&REGION_WRAP_FORMAT_V1, body)) if body.len() > ENCAPPED_KEY_LEN => body,
            _ => return Err(CryptoError::InvalidCiphertext),
        };
        let (encapped, ciphertext) = body.split_at(ENCAPPED_KEY_LEN);
        let encapped = EncappedKey::from_bytes(encapped).map_err(|_| CryptoError::InvalidCiphertext)?;
        let plaintext = hpke::single_shot_open::<A, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &encapped,
            info,
            ciphertext,
            &[],
        )
        .map_err(|_| CryptoError::InvalidCiphertext)?;
        Ok(SecretBytes::new(plaintext))
    }
}

impl fmt::Debug for ReplicationKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationKeyPair").field("public", &self.public_key()).finish_non_exhaustive()
    }
}

/// Wraps `material` for the region whose replication public key is `public_key`.
///
/// The ephemeral key comes from the OS CSPRNG through the `hpke` crate, which panics if the OS
/// generator fails; on Linux `getrandom(2)` cannot fail once the pool is initialised, and the
/// replicator (the only caller) runs long after every other secret of the process was drawn.
pub fn wrap_for_region(
    public_key: &[u8],
    binding: &WrapBinding<'_>,
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let public = PublicKey::from_bytes(public_key).map_err(|_| {
        CryptoError::InvalidInput(format!(
            "the replication public key of region {} is not an X25519 public key",
            binding.destination_region
        ))
    })?;
    let (encapped, ciphertext) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public,
        &binding.info()?,
        material,
        &[],
    )
    .map_err(|e| CryptoError::Internal(format!("HPKE seal failed: {e}")))?;
    let mut out = Vec::with_capacity(1 + ENCAPPED_KEY_LEN + ciphertext.len());
    out.push(REGION_WRAP_FORMAT_V1);
    out.extend_from_slice(&encapped.to_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    fn binding(key_id: &str, version: u32) -> WrapBinding<'_> {
        WrapBinding {
            source_region: "eu-west-1",
            destination_region: "us-east-1",
            key_id,
            material_version: version,
        }
    }

    const MRK: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";

    /// RFC 9180 Appendix A.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode,
    /// sequence 0): the key pair derived from `ikmR` is the RFC's, and it opens the RFC's
    /// ciphertext through the same code path as our AES-256-GCM wraps. The RFC has no X25519
    /// vector with AES-256-GCM; AES-GCM itself is checked against Wycheproof in `aead`.
    #[test]
    fn rfc9180_a1_key_derivation_and_open() {
        let pair = ReplicationKeyPair::from_ikm(&hex(
            "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
        ));
        assert_eq!(
            pair.public_key(),
            hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
        );
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let enc = hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
        let ct =
            hex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a");
        let encapped = EncappedKey::from_bytes(&enc).unwrap();
        let aad = hex("436f756e742d30");
        let pt = hpke::single_shot_open::<hpke::aead::AesGcm128, HkdfSha256, Kem>(
            &OpModeR::Base,
            &pair.private,
            &encapped,
            &info,
            &ct,
            &aad,
        )
        .unwrap();
        assert_eq!(pt, hex("4265617574792069732074727574682c20747275746820626561757479"));
    }

    #[test]
    fn wraps_open_only_in_the_destination_with_the_same_binding() {
        let dest = ReplicationKeyPair::derive(&RootKey::generate().unwrap());
        let other = ReplicationKeyPair::derive(&RootKey::generate().unwrap());
        let material = [7u8; 32];
        let wrapped = wrap_for_region(&dest.public_key(), &binding(MRK, 3), &material).unwrap();
        assert_eq!(dest.unwrap(&binding(MRK, 3), &wrapped).unwrap().expose(), &material);
        assert!(!wrapped.windows(material.len()).any(|w| w == material), "material in the clear");

        let refused = |pair: &ReplicationKeyPair, b: &WrapBinding<'_>, w: &[u8]| {
            assert_eq!(pair.unwrap(b, w).unwrap_err(), CryptoError::InvalidCiphertext);
        };
        refused(&other, &binding(MRK, 3), &wrapped);
        refused(&dest, &binding(MRK, 4), &wrapped);
        refused(&dest, &binding("mrk-00000000000000000000000000000000", 3), &wrapped);
        let reversed =
            WrapBinding { source_region: "us-east-1", destination_region: "eu-west-1", ..binding(MRK, 3) };
        refused(&dest, &reversed, &wrapped);
        for i in 0..wrapped.len() {
            let mut tampered = wrapped.clone();
            tampered[i] ^= 0x01;
            refused(&dest, &binding(MRK, 3), &tampered);
        }
        refused(&dest, &binding(MRK, 3), &wrapped[..wrapped.len() - 1]);
        refused(&dest, &binding(MRK, 3), &[]);
    }

    #[test]
    fn the_pair_is_a_function_of_the_root_key() {
        let root = RootKey::generate().unwrap();
        assert_eq!(
            ReplicationKeyPair::derive(&root).public_key(),
            ReplicationKeyPair::derive(&root.clone()).public_key()
        );
        let other = ReplicationKeyPair::derive(&RootKey::generate().unwrap());
        assert_ne!(ReplicationKeyPair::derive(&root).public_key(), other.public_key());
        assert!(!format!("{:?}", ReplicationKeyPair::derive(&root)).contains("private"));
    }

    #[test]
    fn a_bad_public_key_is_invalid_input() {
        let err = wrap_for_region(&[1, 2, 3], &binding(MRK, 0), b"x").unwrap_err();
        assert!(matches!(err, CryptoError::InvalidInput(_)), "{err:?}");
    }
}
