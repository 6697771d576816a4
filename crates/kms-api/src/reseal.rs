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
use kms_crypto::{RootKeyId, SecretBytes, sealed_under};

/// Keys re-sealed per maintenance pass: bounds the pass's time and its Raft traffic, so a
/// rotation over many keys shares the leader with live requests.
pub(crate) const KEYS_PER_PASS: usize = 64;

impl Kms {
    /// Re-seals the keys `stale` picked (at most [`KEYS_PER_PASS`]). Returns how many values are
    /// still sealed under another root key afterwards.
    pub(crate) async fn reseal_pass(&self, stale: StaleMaterial) -> usize {
        let StaleMaterial { active, mut remaining, keys } = stale;
        for key in &keys {
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
        if !keys.is_empty() {
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

    /// The new values for everything of `key` that is not sealed under the active root key, and
    /// an imported key's fingerprint recomputed under it from the same unsealed material.
    fn key_reseal(&self, key: &KeyRecord) -> KmsResult<KeyReseal> {
        let mut reseal = KeyReseal::default();
        for material in self.stale(&key.materials) {
            let secret = self.unseal(key, material)?;
            if let (0, Some(import)) = (material.version, &key.import) {
                reseal.fingerprint = self.refingerprint(key, &import.fingerprint, &secret);
            }
            reseal.materials.push((material.version, self.reseal(key, material, &secret)?));
        }
        for material in self.stale(&key.divergent_materials) {
            let secret = self.unseal(key, material)?;
            reseal.divergent.push((material.version, self.reseal(key, material, &secret)?));
        }
        Ok(reseal)
    }

    fn stale<'a>(&self, materials: &'a [MaterialVersion]) -> impl Iterator<Item = &'a MaterialVersion> {
        let active = self.root_keys.active_id();
        materials.iter().filter(move |m| is_stale(m, active))
    }

    /// `material`'s `secret` sealed under the active root key, beside the value it replaces.
    fn reseal(
        &self,
        key: &KeyRecord,
        material: &MaterialVersion,
        secret: &SecretBytes,
    ) -> KmsResult<Resealed> {
        let sealed =
            kms_crypto::seal(self.root_keys.active(), &key.key_id, material.version, secret.expose())
                .map_err(crypto_error)?;
        Ok(Resealed { previous: material.sealed.clone(), sealed })
    }

    /// An imported key's fingerprint of `material` under the active root key, when the stored
    /// one was made under another. (With the material deleted there is nothing to recompute it
    /// from: the old fingerprint stays, and a re-import still matches it while the old root key
    /// is in the ring.)
    fn refingerprint(&self, key: &KeyRecord, stored: &[u8], material: &SecretBytes) -> Option<Resealed> {
        let current = material_fingerprint(self.root_keys.active(), &key.key_id, material.expose());
        (current != stored).then(|| Resealed { previous: stored.to_vec(), sealed: current })
    }
}

/// The values sealed under a root key other than the active one, as a maintenance pass finds
/// them key by key: how many there are, and the first [`KEYS_PER_PASS`] keys holding any.
pub(crate) struct StaleMaterial {
    active: RootKeyId,
    remaining: usize,
    keys: Vec<KeyRecord>,
}

impl StaleMaterial {
    pub(crate) fn new(active: RootKeyId) -> Self {
        Self { active, remaining: 0, keys: Vec::new() }
    }

    pub(crate) fn note(&mut self, key: &KeyRecord) {
        let stale = stale_values(key, self.active);
        if stale == 0 {
            return;
        }
        self.remaining += stale;
        if self.keys.len() < KEYS_PER_PASS {
            self.keys.push(key.clone());
        }
    }
}

fn is_stale(material: &MaterialVersion, active: RootKeyId) -> bool {
    sealed_under(&material.sealed) != Some(active)
}

/// How many sealed values of `key` a root key other than `active` sealed. (Imported keys'
/// fingerprints are not counted: telling which root key made one takes the material.)
fn stale_values(key: &KeyRecord, active: RootKeyId) -> usize {
    key.materials.iter().chain(&key.divergent_materials).filter(|m| is_stale(m, active)).count()
}
