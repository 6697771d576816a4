//! Root key rotation, the re-seal half: the leader re-seals, a few keys per maintenance pass,
//! every value that a root key other than the active one sealed, until none is left.
//!
//! A rotation rolls through a region without downtime (docs/architecture.md, "Root key
//! rotation"): every node first learns the new root key as a previous one, then each is
//! restarted with it active and the old one previous. From then on new material is sealed under
//! the new key, every node can still unseal the old, and this pass moves the old values over.
//! Once [`Metrics`](crate::metrics::Metrics)' `kms_root_key_stale_sealed_values` reads 0 on the
//! leader, the old key can leave the configuration.

use crate::kms::{Kms, crypto_error};
use kms_core::KmsResult;
use kms_core::command::{Command, CommandOutput};
use kms_core::key::{KeyRecord, MaterialVersion};
use kms_core::reseal::{KeyReseal, Resealed};
use kms_crypto::import::material_fingerprint;
use kms_crypto::{RootKeyId, sealed_under};

/// Keys re-sealed per maintenance pass: bounds the pass's time and its Raft traffic, so a
/// rotation over many keys shares the leader with live requests.
pub(crate) const KEYS_PER_PASS: usize = 64;

impl Kms {
    /// Re-seals up to [`KEYS_PER_PASS`] keys that hold values sealed under another root key.
    /// Returns how many values are still sealed under another root key afterwards.
    pub(crate) async fn reseal_pass(&self, keys: &[KeyRecord]) -> usize {
        let active = self.root_keys.active().id();
        let stale: Vec<&KeyRecord> = keys.iter().filter(|key| stale_values(key, active) > 0).collect();
        let mut remaining: usize = stale.iter().map(|key| stale_values(key, active)).sum();
        for key in stale.iter().take(KEYS_PER_PASS) {
            match self.reseal_key(key).await {
                Ok(replaced) => remaining = remaining.saturating_sub(replaced as usize),
                Err(err) => {
                    tracing::warn!(key_id = %key.key_id, error = %err, "re-sealing under the new root key failed; will retry")
                }
            }
        }
        if let Some(metrics) = crate::metrics::installed() {
            metrics.observe_reseal(Some(remaining));
        }
        if !stale.is_empty() {
            tracing::info!(root_key = %active, remaining, "re-sealed key material under the active root key");
        }
        remaining
    }

    /// Proposes `key`'s re-sealed values; returns how many the state machine replaced.
    async fn reseal_key(&self, key: &KeyRecord) -> KmsResult<u32> {
        let reseal = self.key_reseal(key)?;
        if reseal.is_empty() {
            return Ok(0);
        }
        match self.propose(Command::ResealKey { key_id: key.key_id.clone(), reseal }).await? {
            CommandOutput::Resealed(replaced) => Ok(replaced),
            other => {
                Err(kms_core::KmsError::internal(format!("state machine answered {other:?} to ResealKey")))
            }
        }
    }

    /// The new values for everything of `key` that is not sealed under the active root key.
    fn key_reseal(&self, key: &KeyRecord) -> KmsResult<KeyReseal> {
        let active = self.root_keys.active().id();
        let reseal_all = |materials: &[MaterialVersion]| -> KmsResult<Vec<(u32, Resealed)>> {
            materials
                .iter()
                .filter(|m| sealed_under(&m.sealed) != Some(active))
                .map(|m| Ok((m.version, self.reseal_material(key, m)?)))
                .collect()
        };
        Ok(KeyReseal {
            materials: reseal_all(&key.materials)?,
            divergent: reseal_all(&key.divergent_materials)?,
            fingerprint: self.refingerprint(key)?,
        })
    }

    fn reseal_material(&self, key: &KeyRecord, material: &MaterialVersion) -> KmsResult<Resealed> {
        let secret = self.unseal(key, material)?;
        let sealed =
            kms_crypto::seal(self.root_keys.active(), &key.key_id, material.version, secret.expose())
                .map_err(crypto_error)?;
        Ok(Resealed { previous: material.sealed.clone(), sealed })
    }

    /// An imported key's fingerprint under the active root key, when it is under another one and
    /// the material is present to compute it from. (With the material deleted, the old
    /// fingerprint stays; a re-import still matches it while the old root key is in the ring.)
    fn refingerprint(&self, key: &KeyRecord) -> KmsResult<Option<Resealed>> {
        let (Some(import), Some(material)) = (&key.import, key.materials.first()) else {
            return Ok(None);
        };
        let secret = self.unseal(key, material)?;
        let current = material_fingerprint(self.root_keys.active(), &key.key_id, secret.expose());
        Ok((current != import.fingerprint)
            .then(|| Resealed { previous: import.fingerprint.clone(), sealed: current }))
    }
}

/// How many sealed values of `key` a root key other than `active` sealed. (Imported keys'
/// fingerprints are not counted: telling which root key made one takes the material.)
fn stale_values(key: &KeyRecord, active: RootKeyId) -> usize {
    key.materials
        .iter()
        .chain(&key.divergent_materials)
        .filter(|m| sealed_under(&m.sealed) != Some(active))
        .count()
}
