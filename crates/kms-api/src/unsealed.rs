//! Unsealed key material for the crypto path: a hot key costs no root-key decryption, no AES key
//! expansion and no private-key parsing per request.
//!
//! - Entries are found by key id and material version and used only while the sealed value
//!   they came from is still the stored one. Re-sealing, a re-import or a replicated update
//!   store new sealed bytes (every seal draws a fresh nonce), so a stale entry is never used.
//! - The cache is consulted only after the key record was read and the request authorised
//!   against it, so disabling a key, deleting it or revoking a grant takes effect at once.
//! - Entries unused for [`MATERIAL_IDLE`] are dropped by every node's maintenance tick, so the
//!   material of a key that was deleted (or is just cold) does not stay in memory; dropping an
//!   entry wipes it ([`SecretBytes`] and the parsed key types zeroize themselves).

use std::sync::Arc;
use std::time::Duration;

use kms_core::key::{KeyRecord, MaterialVersion};
use kms_core::spec::KeySpec;
use kms_core::{KmsError, KmsResult};
use kms_crypto::{AesGcmKey, PrivateKey, SecretBytes};

use crate::derived_cache::DerivedCache;
use crate::engine;
use crate::kms::{Kms, crypto_error};

/// The material of one key version, ready to use.
pub(crate) enum Unsealed {
    /// A symmetric encryption key (AES-256), its schedule expanded.
    Aes(AesGcmKey),
    /// HMAC key bytes.
    Mac(SecretBytes),
    Private(PrivateKey),
}

/// Keyed by key id and material version; a lookup builds that pair, one small allocation.
pub(crate) type MaterialCache = DerivedCache<(String, u32), Unsealed>;

/// Key versions held at most; beyond it the cache starts over. An entry is at most a few KiB
/// (RSA-4096 with its CRT values), so this bounds the cache to tens of MiB.
pub(crate) const MAX_CACHED_MATERIALS: usize = 16_384;

/// How long an unused entry stays.
pub(crate) const MATERIAL_IDLE: Duration = Duration::from_secs(300);

impl Unsealed {
    pub(crate) fn aes(&self) -> KmsResult<&AesGcmKey> {
        match self {
            Self::Aes(key) => Ok(key),
            other => Err(other.not("an AES key")),
        }
    }

    pub(crate) fn mac(&self) -> KmsResult<&SecretBytes> {
        match self {
            Self::Mac(secret) => Ok(secret),
            other => Err(other.not("an HMAC key")),
        }
    }

    pub(crate) fn private(&self) -> KmsResult<&PrivateKey> {
        match self {
            Self::Private(key) => Ok(key),
            other => Err(other.not("a private key")),
        }
    }

    /// A key's material reached an operation of another kind of key: a broken invariant (every
    /// operation checks the key's spec first), not a caller's mistake.
    fn not(&self, expected: &str) -> KmsError {
        let found = match self {
            Self::Aes(_) => "an AES key",
            Self::Mac(_) => "an HMAC key",
            Self::Private(_) => "a private key",
        };
        KmsError::internal(format!("expected {expected} as key material, found {found}"))
    }
}

impl Kms {
    /// The material of one version of `key`, in the form its spec uses (see [`Self::unseal_as`]),
    /// from the cache or unsealed into it.
    pub(crate) fn unsealed(&self, key: &KeyRecord, material: &MaterialVersion) -> KmsResult<Arc<Unsealed>> {
        self.materials.get_or_derive(&(key.key_id.clone(), material.version), &material.sealed, || {
            self.unseal_as(key, material)
        })
    }

    /// Unseals one version of `key` into the form its spec uses: an expanded AES key
    /// (`SYMMETRIC_DEFAULT`; the ciphertext blob refuses any but an AES-256 one, so a wrong-sized
    /// stored material fails there, as `Internal`), HMAC key bytes, or a parsed private key.
    fn unseal_as(&self, key: &KeyRecord, material: &MaterialVersion) -> KmsResult<Unsealed> {
        match key.key_spec {
            KeySpec::SymmetricDefault => {
                let secret = self.unseal(key, material)?;
                Ok(Unsealed::Aes(AesGcmKey::new(secret.expose()).map_err(crypto_error)?))
            }
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                Ok(Unsealed::Mac(self.unseal(key, material)?))
            }
            spec => {
                let spec = engine::asymmetric_spec(spec)?;
                let pkcs8 = self.unseal(key, material)?;
                Ok(Unsealed::Private(PrivateKey::from_pkcs8(spec, pkcs8).map_err(crypto_error)?))
            }
        }
    }
}
