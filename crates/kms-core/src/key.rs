//! A KMS key as the replicated state stores it, and its lifecycle: the state rules of AWS's
//! key-state table, deletion scheduling and rotation bookkeeping.
//!
//! Every transition is a method that validates first and changes the record only on success, so
//! the state machine can apply it deterministically and a rejected command changes nothing.

use crate::error::{KmsError, KmsResult};
use crate::spec::{
    KeyFamily, KeyManager, KeySpec, KeyState, KeyUsage, Origin, RotationType, WrappingAlgorithm,
    WrappingKeySpec,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milliseconds since the Unix epoch. Chosen by the proposer so every replica agrees.
pub type UnixMillis = u64;

pub const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
pub const MAX_TAGS_PER_KEY: usize = 50;
pub const DEFAULT_ROTATION_PERIOD_DAYS: u32 = 365;
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;

/// One generation of key material, sealed under the region root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialVersion {
    pub version: u32,
    /// AWS's KeyMaterialId: 64 hex digits, public.
    pub material_id: String,
    #[serde(with = "crate::bytes")]
    pub sealed: Vec<u8>,
    pub created: UnixMillis,
    /// None for the material the key was created with.
    pub rotation_type: Option<RotationType>,
}

impl std::fmt::Debug for MaterialVersion {
    // Sealed bytes are not secret, but they are noise in logs; show only their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialVersion")
            .field("version", &self.version)
            .field("material_id", &self.material_id)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// The imported-material bookkeeping of an EXTERNAL key, kept from the first import on (also
/// while the material is deleted, so that only the same material can be imported again).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// A keyed fingerprint of the material (HMAC-SHA256 under a key derived from the root key,
    /// bound to the key id): comparable, but useless without the root key. Never the material.
    #[serde(with = "crate::bytes")]
    pub fingerprint: Vec<u8>,
    /// AWS's KeyMaterialId of the imported material; the same across deletion and re-import.
    pub material_id: String,
    /// When the current material expires (ExpirationModel KEY_MATERIAL_EXPIRES); `None` when it
    /// does not expire or no material is present.
    pub valid_to: Option<UnixMillis>,
}

impl std::fmt::Debug for ImportRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRecord")
            .field("material_id", &self.material_id)
            .field("valid_to", &self.valid_to)
            .finish_non_exhaustive()
    }
}

/// What an ImportKeyMaterial command carries: the unwrapped material already sealed under the
/// root key (as version 0: imported keys hold one material), its keyed fingerprint, and ValidTo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialImport {
    pub material: MaterialVersion,
    #[serde(with = "crate::bytes")]
    pub fingerprint: Vec<u8>,
    pub valid_to: Option<UnixMillis>,
}

/// How long GetParametersForImport's public key and import token are valid (AWS: 24 hours).
pub const IMPORT_PARAMETERS_VALIDITY_MILLIS: u64 = DAY_MILLIS;
/// The most unexpired parameter sets kept per key; a newer one retires the oldest.
pub const MAX_IMPORT_PARAMETERS_PER_KEY: usize = 10;

/// One GetParametersForImport answer as the state keeps it: the RSA wrapping key pair's private
/// half sealed under the root key, and what the import token stands for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportParameters {
    pub key_id: String,
    /// 32 hex digits; the import token carries it, authenticated.
    pub token_id: String,
    pub wrapping_algorithm: WrappingAlgorithm,
    pub wrapping_key_spec: WrappingKeySpec,
    /// PKCS#8 DER of the wrapping private key, sealed under the root key.
    #[serde(with = "crate::bytes")]
    pub sealed_private_key: Vec<u8>,
    pub created: UnixMillis,
    pub valid_to: UnixMillis,
}

impl std::fmt::Debug for ImportParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportParameters")
            .field("key_id", &self.key_id)
            .field("token_id", &self.token_id)
            .field("wrapping_algorithm", &self.wrapping_algorithm)
            .field("wrapping_key_spec", &self.wrapping_key_spec)
            .field("valid_to", &self.valid_to)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub enabled: bool,
    pub period_days: u32,
    pub next_rotation: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub creation_date: UnixMillis,
    pub description: String,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    pub state: KeyState,
    pub multi_region: bool,
    pub deletion_date: Option<UnixMillis>,
    pub pending_window_days: Option<u32>,
    pub tags: BTreeMap<String, String>,
    /// Oldest first; `materials[i].version == i`. The last one is current.
    pub materials: Vec<MaterialVersion>,
    /// DER SubjectPublicKeyInfo of an asymmetric key (public, stored in the clear so that
    /// GetPublicKey, Verify and RSA Encrypt need no unsealing); empty for symmetric and HMAC keys.
    #[serde(default, with = "crate::bytes")]
    pub public_key: Vec<u8>,
    pub rotation: RotationSchedule,
    pub on_demand_rotations: u32,
    /// Set on EXTERNAL keys once material was imported. An EXTERNAL key without material (never
    /// imported, deleted, or expired) has an empty `materials` and is in PendingImport (or
    /// PendingDeletion), so every path to its material fails with "... is pending import.".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportRecord>,
    /// The key policy document as the caller gave it; `None` means AWS's default key policy
    /// for the region's account (`kms_core::policy::default_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// CUSTOMER for every key CreateKey makes; AWS for service keys (`crate::managed`). Records
    /// stored before this field existed load as CUSTOMER.
    #[serde(default, skip_serializing_if = "KeyManager::is_customer")]
    pub key_manager: KeyManager,
    /// The integrated service an AWS managed key belongs to (its alias is `alias/aws/<service>`);
    /// `None` for customer managed keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The primary and replica regions of a multi-Region key (`crate::multi_region`); `None` for
    /// single-Region keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region_config: Option<crate::multi_region::MultiRegionConfig>,
    /// Material versions this region made as a multi-Region primary that a newer primary (a
    /// forced promotion elsewhere) replaced with its own. Kept so that what they encrypted still
    /// decrypts here; never used to encrypt and never replicated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergent_materials: Vec<MaterialVersion>,
}

/// A change to an existing key, as carried by a replicated command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyChange {
    Describe {
        description: String,
    },
    Enable,
    Disable,
    ScheduleDeletion {
        window_days: u32,
    },
    CancelDeletion,
    EnableRotation {
        period_days: u32,
    },
    DisableRotation,
    Rotate {
        material: MaterialVersion,
    },
    Tag {
        tags: BTreeMap<String, String>,
    },
    Untag {
        tag_keys: Vec<String>,
    },
    /// DeleteImportedKeyMaterial: the key keeps its fingerprint and goes to PendingImport.
    DeleteImportedMaterial,
    /// PutKeyPolicy with a document the proposer validated. Allowed in every key state.
    PutPolicy {
        policy: String,
    },
}

impl KeyChange {
    /// Whether the change is to a property related multi-Region keys share, which only the
    /// primary may change and replication carries to the replicas.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Rotate { .. } | Self::EnableRotation { .. } | Self::DisableRotation)
    }

    /// The AWS operation the change comes from, for messages.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Describe { .. } => "UpdateKeyDescription",
            Self::Enable => "EnableKey",
            Self::Disable => "DisableKey",
            Self::ScheduleDeletion { .. } => "ScheduleKeyDeletion",
            Self::CancelDeletion => "CancelKeyDeletion",
            Self::EnableRotation { .. } => "EnableKeyRotation",
            Self::DisableRotation => "DisableKeyRotation",
            Self::Rotate { material } if material.rotation_type == Some(RotationType::Automatic) => {
                "automatic rotation"
            }
            Self::Rotate { .. } => "RotateKeyOnDemand",
            Self::Tag { .. } => "TagResource",
            Self::Untag { .. } => "UntagResource",
            Self::DeleteImportedMaterial => "DeleteImportedKeyMaterial",
            Self::PutPolicy { .. } => "PutKeyPolicy",
        }
    }
}

impl KeyRecord {
    /// A new enabled customer managed key of `key_spec`/`key_usage`/`origin`, without material,
    /// description, tags or policy; callers set what differs with struct update syntax.
    pub fn new(
        key_id: String,
        creation_date: UnixMillis,
        key_spec: KeySpec,
        key_usage: KeyUsage,
        origin: Origin,
    ) -> Self {
        Self {
            key_id,
            creation_date,
            description: String::new(),
            key_spec,
            key_usage,
            origin,
            state: KeyState::Enabled,
            multi_region: false,
            deletion_date: None,
            pending_window_days: None,
            tags: BTreeMap::new(),
            materials: Vec::new(),
            public_key: Vec::new(),
            rotation: RotationSchedule::default(),
            on_demand_rotations: 0,
            import: None,
            policy: None,
            key_manager: KeyManager::Customer,
            service: None,
            multi_region_config: None,
            divergent_materials: Vec::new(),
        }
    }

    pub fn current_material(&self) -> KmsResult<&MaterialVersion> {
        self.materials.last().ok_or_else(|| {
            if self.origin == Origin::External {
                // Imported material deleted or expired, or never imported.
                self.state_error(KeyState::PendingImport)
            } else {
                KmsError::internal(format!("key {} has no key material", self.key_id))
            }
        })
    }

    pub fn material(&self, version: u32) -> Option<&MaterialVersion> {
        self.materials.get(version as usize).filter(|m| m.version == version)
    }

    /// Every material that may have encrypted under `version`: the key's own, then any divergent
    /// one (see `divergent_materials`). Decryption tries them in this order.
    pub fn decryption_materials(&self, version: u32) -> impl Iterator<Item = &MaterialVersion> {
        self.material(version)
            .into_iter()
            .chain(self.divergent_materials.iter().filter(move |m| m.version == version))
    }

    /// The gate of every cryptographic operation (Encrypt, Decrypt, GenerateMac, ...).
    pub fn check_usable(&self) -> KmsResult<()> {
        match self.state {
            KeyState::Enabled | KeyState::Updating => Ok(()),
            KeyState::Disabled => Err(KmsError::disabled(format!("{} is disabled.", self.key_id))),
            state => Err(self.state_error(state)),
        }
    }

    /// The usage gate: `needed` is what the operation requires.
    pub fn check_usage(&self, needed: KeyUsage, operation: &str) -> KmsResult<()> {
        if self.key_usage == needed {
            Ok(())
        } else {
            Err(KmsError::invalid_key_usage(format!(
                "{operation} needs a key with KeyUsage {needed}; key {} is {} ({})",
                self.key_id, self.key_usage, self.key_spec
            )))
        }
    }

    fn state_error(&self, state: KeyState) -> KmsError {
        let what = match state {
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => "pending deletion",
            KeyState::PendingImport => "pending import",
            KeyState::Unavailable => "unavailable",
            KeyState::Creating => "creating",
            KeyState::Updating => "updating",
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
        };
        KmsError::invalid_state(format!("{} is {what}.", self.key_id))
    }

    fn is_pending_deletion(&self) -> bool {
        matches!(self.state, KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    }

    /// Rejects management changes on a key waiting to be deleted (note 3 of the state table).
    fn check_not_pending_deletion(&self) -> KmsResult<()> {
        if self.is_pending_deletion() { Err(self.state_error(self.state)) } else { Ok(()) }
    }

    /// Applies `change` at time `now`, or leaves the record untouched and explains why not.
    pub fn apply_change(&mut self, change: &KeyChange, now: UnixMillis) -> KmsResult<()> {
        let mut next = self.clone();
        next.apply_change_in_place(change, now)?;
        *self = next;
        Ok(())
    }

    fn apply_change_in_place(&mut self, change: &KeyChange, now: UnixMillis) -> KmsResult<()> {
        self.check_manageable(change)?;
        match change {
            KeyChange::Describe { description } => {
                self.check_not_pending_deletion()?;
                self.description = description.clone();
            }
            KeyChange::Enable | KeyChange::Disable => {
                self.check_not_pending_deletion()?;
                if matches!(self.state, KeyState::PendingImport | KeyState::Creating) {
                    return Err(self.state_error(self.state));
                }
                self.state =
                    if *change == KeyChange::Enable { KeyState::Enabled } else { KeyState::Disabled };
            }
            KeyChange::ScheduleDeletion { window_days } => {
                self.check_not_pending_deletion()?;
                check_pending_window(*window_days)?;
                self.state = KeyState::PendingDeletion;
                self.pending_window_days = Some(*window_days);
                self.deletion_date = Some(now + u64::from(*window_days) * DAY_MILLIS);
            }
            KeyChange::CancelDeletion => {
                if !self.is_pending_deletion() {
                    return Err(KmsError::invalid_state(format!("{} is not pending deletion.", self.key_id)));
                }
                // An EXTERNAL key whose material is gone cannot be used until it is re-imported.
                self.state = if self.origin == Origin::External && self.materials.is_empty() {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                self.deletion_date = None;
                self.pending_window_days = None;
            }
            KeyChange::EnableRotation { period_days } => {
                self.check_rotatable("EnableKeyRotation")?;
                check_rotation_period(*period_days)?;
                let period_changed = self.rotation.period_days != *period_days;
                if !self.rotation.enabled || period_changed {
                    self.rotation.next_rotation = Some(now + u64::from(*period_days) * DAY_MILLIS);
                }
                self.rotation.enabled = true;
                self.rotation.period_days = *period_days;
            }
            KeyChange::DisableRotation => {
                self.check_rotatable("DisableKeyRotation")?;
                self.rotation.enabled = false;
                self.rotation.next_rotation = None;
            }
            KeyChange::Rotate { material } => self.rotate(material, now)?,
            KeyChange::Tag { tags } => {
                self.check_not_pending_deletion()?;
                let mut merged = self.tags.clone();
                merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                if merged.len() > MAX_TAGS_PER_KEY {
                    return Err(KmsError::limit_exceeded(format!(
                        "key {} would have {} tags; at most {MAX_TAGS_PER_KEY} are allowed",
                        self.key_id,
                        merged.len()
                    )));
                }
                self.tags = merged;
            }
            KeyChange::Untag { tag_keys } => {
                self.check_not_pending_deletion()?;
                for key in tag_keys {
                    self.tags.remove(key);
                }
            }
            KeyChange::DeleteImportedMaterial => {
                self.check_external("DeleteImportedKeyMaterial")?;
                if matches!(self.state, KeyState::Creating | KeyState::Updating | KeyState::Unavailable) {
                    return Err(self.state_error(self.state));
                }
                self.drop_imported_material();
            }
            KeyChange::PutPolicy { policy } => self.policy = Some(policy.clone()),
        }
        Ok(())
    }

    /// Imported material operations need a key with origin EXTERNAL (note 9 of the state table).
    fn check_external(&self, operation: &str) -> KmsResult<()> {
        if self.origin == Origin::External {
            Ok(())
        } else {
            Err(KmsError::unsupported(format!(
                "{operation} needs a key with origin EXTERNAL; key {} has origin {}",
                self.key_id, self.origin
            )))
        }
    }

    /// The gate of GetParametersForImport and ImportKeyMaterial (notes 8, 9, 14, 15): an
    /// EXTERNAL key that is Enabled, Disabled or PendingImport.
    pub fn check_importable(&self, operation: &str) -> KmsResult<()> {
        self.check_external(operation)?;
        if self.key_spec.importable_material_len().is_none() {
            return Err(KmsError::unsupported(format!(
                "{operation}: importing {} key material is not supported by this server",
                self.key_spec
            )));
        }
        match self.state {
            KeyState::Enabled | KeyState::Disabled | KeyState::PendingImport => Ok(()),
            state => Err(self.state_error(state)),
        }
    }

    /// ImportKeyMaterial at time `now`, or the record untouched and why not. The first import
    /// fixes the key's material; later ones must bring the same material (compared by keyed
    /// fingerprint, in constant time) and may change ValidTo.
    pub fn import_material(&mut self, import: &MaterialImport, now: UnixMillis) -> KmsResult<()> {
        self.check_importable("ImportKeyMaterial")?;
        if let Some(valid_to) = import.valid_to
            && valid_to <= now
        {
            return Err(KmsError::validation("ValidTo must be in the future"));
        }
        if import.material.version != 0 {
            return Err(KmsError::internal(format!(
                "imported material for key {} must be version 0, not {}",
                self.key_id, import.material.version
            )));
        }
        let material_id = match &self.import {
            Some(existing) => {
                if !ct_eq(&existing.fingerprint, &import.fingerprint) {
                    return Err(KmsError::incorrect_key_material(format!(
                        "the key material is not the material previously imported into key {}",
                        self.key_id
                    )));
                }
                existing.material_id.clone()
            }
            None => import.material.material_id.clone(),
        };
        if self.materials.is_empty() {
            let mut material = import.material.clone();
            material.material_id = material_id.clone();
            self.materials.push(material);
        }
        self.import = Some(ImportRecord {
            fingerprint: import.fingerprint.clone(),
            material_id,
            valid_to: import.valid_to,
        });
        if self.state == KeyState::PendingImport {
            self.state = KeyState::Enabled;
        }
        Ok(())
    }

    /// Whether imported material with an expiration date has reached it.
    pub fn is_material_expired(&self, now: UnixMillis) -> bool {
        self.origin == Origin::External
            && !self.materials.is_empty()
            && self.import.as_ref().and_then(|i| i.valid_to).is_some_and(|t| t <= now)
    }

    /// Deletes expired imported material (the key goes to PendingImport); false if not due.
    pub fn expire_material(&mut self, now: UnixMillis) -> bool {
        let due = self.is_material_expired(now);
        if due {
            self.drop_imported_material();
        }
        due
    }

    fn drop_imported_material(&mut self) {
        self.materials.clear();
        if let Some(import) = &mut self.import {
            import.valid_to = None;
        }
        // A key waiting for deletion keeps waiting (note 9: allowed in PendingDeletion).
        if !self.is_pending_deletion() {
            self.state = KeyState::PendingImport;
        }
    }

    /// Rotation is for symmetric encryption keys with KMS-generated material (§3.4).
    pub fn check_rotatable(&self, operation: &str) -> KmsResult<()> {
        if self.key_spec.family() != KeyFamily::Symmetric || self.origin != Origin::AwsKms {
            return Err(KmsError::unsupported(format!(
                "{operation} is supported only for symmetric encryption keys with origin AWS_KMS; \
                 key {} is {} with origin {}",
                self.key_id, self.key_spec, self.origin
            )));
        }
        self.check_usable()
    }

    fn rotate(&mut self, material: &MaterialVersion, now: UnixMillis) -> KmsResult<()> {
        let automatic = material.rotation_type == Some(RotationType::Automatic);
        self.check_rotatable(if automatic { "automatic rotation" } else { "RotateKeyOnDemand" })?;
        if material.version as usize != self.materials.len() {
            // Two rotations raced; the later one was built on stale state. Deterministic no.
            return Err(KmsError::conflict(format!(
                "key {} was rotated concurrently; retry the request",
                self.key_id
            )));
        }
        if automatic {
            match self.rotation.next_rotation {
                Some(due) if self.rotation.enabled && due <= now => {
                    self.rotation.next_rotation =
                        Some(now + u64::from(self.rotation.period_days) * DAY_MILLIS);
                }
                _ => {
                    return Err(KmsError::conflict(format!(
                        "automatic rotation of key {} is not due",
                        self.key_id
                    )));
                }
            }
        } else {
            if self.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                return Err(KmsError::limit_exceeded(format!(
                    "key {} has already been rotated on demand {MAX_ON_DEMAND_ROTATIONS} times, \
                     the most AWS allows",
                    self.key_id
                )));
            }
            self.on_demand_rotations += 1;
        }
        self.materials.push(material.clone());
        Ok(())
    }

    /// Whether the deletion date has passed, so the key must now be removed for good.
    pub fn is_due_for_deletion(&self, now: UnixMillis) -> bool {
        self.state == KeyState::PendingDeletion && self.deletion_date.is_some_and(|d| d <= now)
    }

    pub fn is_due_for_rotation(&self, now: UnixMillis) -> bool {
        self.state == KeyState::Enabled
            && self.rotation.enabled
            && self.rotation.next_rotation.is_some_and(|due| due <= now)
    }
}

/// Constant-time equality of two byte strings (their lengths are not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn check_pending_window(days: u32) -> KmsResult<()> {
    if (7..=30).contains(&days) {
        Ok(())
    } else {
        Err(KmsError::validation(format!(
            "PendingWindowInDays must be between 7 and 30 days, inclusive (got {days})"
        )))
    }
}

pub fn check_rotation_period(days: u32) -> KmsResult<()> {
    if (90..=2560).contains(&days) {
        Ok(())
    } else {
        Err(KmsError::validation(format!(
            "RotationPeriodInDays must be between 90 and 2560 days, inclusive (got {days})"
        )))
    }
}

/// Tag rules of TagResource / CreateKey (§1.8).
pub fn validate_tags(tags: &BTreeMap<String, String>) -> KmsResult<()> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(KmsError::tag(format!("tag key '{key}' must be 1 to 128 characters long")));
        }
        if value.chars().count() > 256 {
            return Err(KmsError::tag(format!(
                "the value of tag '{key}' must be at most 256 characters long"
            )));
        }
        if key.starts_with("aws:") {
            return Err(KmsError::tag(format!("tag key '{key}' uses the reserved prefix aws:")));
        }
    }
    if tags.len() > MAX_TAGS_PER_KEY {
        return Err(KmsError::limit_exceeded(format!(
            "{} tags given; at most {MAX_TAGS_PER_KEY} are allowed per key",
            tags.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    pub(crate) fn material(version: u32, rotation_type: Option<RotationType>) -> MaterialVersion {
        MaterialVersion {
            version,
            material_id: format!("{version:064x}"),
            sealed: vec![version as u8; 8],
            created: 0,
            rotation_type,
        }
    }

    fn key(spec: KeySpec) -> KeyRecord {
        let usage = spec.resolve_usage(None).unwrap_or(KeyUsage::GenerateVerifyMac);
        KeyRecord {
            materials: vec![material(0, None)],
            ..KeyRecord::new("k1".into(), 0, spec, usage, Origin::AwsKms)
        }
    }

    #[test]
    fn deletion_is_scheduled_and_cancelled_to_disabled() {
        let mut k = key(KeySpec::SymmetricDefault);
        k.apply_change(&KeyChange::ScheduleDeletion { window_days: 7 }, 1000).unwrap();
        assert_eq!(k.state, KeyState::PendingDeletion);
        assert_eq!(k.deletion_date, Some(1000 + 7 * DAY_MILLIS));
        assert!(!k.is_due_for_deletion(1000));
        assert!(k.is_due_for_deletion(1000 + 7 * DAY_MILLIS));
        assert_eq!(k.check_usable().unwrap_err().kind, ErrorKind::KMSInvalidStateException);
        let err = k.apply_change(&KeyChange::Enable, 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);
        k.apply_change(&KeyChange::CancelDeletion, 0).unwrap();
        assert_eq!(k.state, KeyState::Disabled);
        assert_eq!(k.deletion_date, None);
        assert_eq!(k.check_usable().unwrap_err().kind, ErrorKind::DisabledException);
    }

    #[test]
    fn rejected_changes_leave_the_record_untouched() {
        let mut k = key(KeySpec::SymmetricDefault);
        let before = k.clone();
        for bad in [6, 31, 0] {
            let err = k.apply_change(&KeyChange::ScheduleDeletion { window_days: bad }, 0);
            assert_eq!(err.unwrap_err().kind, ErrorKind::ValidationException);
        }
        assert_eq!(
            k.apply_change(&KeyChange::CancelDeletion, 0).unwrap_err().kind,
            ErrorKind::KMSInvalidStateException
        );
        assert_eq!(k, before);
    }

    #[test]
    fn rotation_rules() {
        let mut hmac = key(KeySpec::Hmac256);
        let err = hmac.apply_change(&KeyChange::EnableRotation { period_days: 90 }, 0);
        assert_eq!(err.unwrap_err().kind, ErrorKind::UnsupportedOperationException);

        let mut k = key(KeySpec::SymmetricDefault);
        for bad in [89, 2561] {
            let err = k.apply_change(&KeyChange::EnableRotation { period_days: bad }, 0);
            assert_eq!(err.unwrap_err().kind, ErrorKind::ValidationException);
        }
        k.apply_change(&KeyChange::EnableRotation { period_days: 90 }, 0).unwrap();
        let due = 90 * DAY_MILLIS;
        assert!(!k.is_due_for_rotation(due - 1) && k.is_due_for_rotation(due));
        let auto = KeyChange::Rotate { material: material(1, Some(RotationType::Automatic)) };
        assert_eq!(k.apply_change(&auto, due - 1).unwrap_err().kind, ErrorKind::ConflictException);
        k.apply_change(&auto, due).unwrap();
        assert_eq!(k.current_material().unwrap().version, 1);
        assert_eq!(k.rotation.next_rotation, Some(2 * due));
        // The same automatic rotation proposed twice applies once.
        assert!(k.apply_change(&auto, due).is_err());
    }

    #[test]
    fn on_demand_rotation_is_capped_at_25() {
        let mut k = key(KeySpec::SymmetricDefault);
        for version in 1..=25 {
            let change = KeyChange::Rotate { material: material(version, Some(RotationType::OnDemand)) };
            k.apply_change(&change, 0).unwrap();
        }
        let change = KeyChange::Rotate { material: material(26, Some(RotationType::OnDemand)) };
        assert_eq!(k.apply_change(&change, 0).unwrap_err().kind, ErrorKind::LimitExceededException);
        assert_eq!(k.materials.len(), 26);
    }

    fn external(spec: KeySpec) -> KeyRecord {
        KeyRecord { origin: Origin::External, state: KeyState::PendingImport, materials: vec![], ..key(spec) }
    }

    pub(crate) fn import(fingerprint: u8, valid_to: Option<UnixMillis>) -> MaterialImport {
        let mut material = material(0, None);
        material.material_id = format!("{fingerprint:064x}");
        MaterialImport { material, fingerprint: vec![fingerprint; 32], valid_to }
    }

    #[test]
    fn a_key_pending_import_fails_cleanly_everywhere() {
        let mut k = external(KeySpec::SymmetricDefault);
        for err in [k.current_material().unwrap_err(), k.check_usable().unwrap_err()] {
            assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);
            assert_eq!(err.message, "k1 is pending import.");
        }
        for change in [KeyChange::Enable, KeyChange::Disable] {
            let err = k.apply_change(&change, 0).unwrap_err();
            assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);
        }
        for change in [KeyChange::EnableRotation { period_days: 365 }, KeyChange::DisableRotation] {
            let err = k.apply_change(&change, 0).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
        }
        // Deleting material that is not there is accepted and changes nothing.
        let before = k.clone();
        k.apply_change(&KeyChange::DeleteImportedMaterial, 0).unwrap();
        assert_eq!(k, before);
    }

    #[test]
    fn import_delete_and_reimport_the_same_material() {
        let mut k = external(KeySpec::SymmetricDefault);
        k.import_material(&import(7, None), 10).unwrap();
        assert_eq!(k.state, KeyState::Enabled);
        assert_eq!(k.current_material().unwrap().material_id, format!("{:064x}", 7));
        k.apply_change(&KeyChange::Disable, 11).unwrap();
        k.apply_change(&KeyChange::DeleteImportedMaterial, 12).unwrap();
        assert_eq!(k.state, KeyState::PendingImport);
        assert!(k.materials.is_empty());
        assert_eq!(k.current_material().unwrap_err().kind, ErrorKind::KMSInvalidStateException);

        // Different material is refused and changes nothing.
        let before = k.clone();
        let err = k.import_material(&import(8, None), 13).unwrap_err();
        assert_eq!(err.kind, ErrorKind::IncorrectKeyMaterialException);
        assert_eq!(k, before);

        // The same material again: version 0 with the first material id, so old ciphertexts
        // (which name version 0) decrypt again.
        let mut again = import(7, Some(1000));
        again.material.material_id = "f".repeat(64);
        k.import_material(&again, 14).unwrap();
        assert_eq!(k.state, KeyState::Enabled);
        assert_eq!(k.materials.len(), 1);
        assert_eq!(k.current_material().unwrap().version, 0);
        assert_eq!(k.current_material().unwrap().material_id, format!("{:064x}", 7));
        assert_eq!(k.import.as_ref().unwrap().valid_to, Some(1000));

        // Importing the same material into a key that has it only updates ValidTo.
        k.import_material(&import(7, None), 15).unwrap();
        assert_eq!((k.materials.len(), k.import.as_ref().unwrap().valid_to), (1, None));
        let err = k.import_material(&import(9, None), 16).unwrap_err();
        assert_eq!(err.kind, ErrorKind::IncorrectKeyMaterialException);
    }

    #[test]
    fn imported_material_expires() {
        let mut k = external(KeySpec::Hmac256);
        assert_eq!(
            k.import_material(&import(1, Some(100)), 100).unwrap_err().kind,
            ErrorKind::ValidationException,
            "ValidTo must be in the future"
        );
        k.import_material(&import(1, Some(100)), 50).unwrap();
        assert!(!k.is_material_expired(99) && k.is_material_expired(100));
        assert!(!k.expire_material(99));
        assert!(k.expire_material(100));
        assert_eq!(k.state, KeyState::PendingImport);
        assert!(!k.expire_material(200), "expires once");
        k.import_material(&import(1, None), 300).unwrap();
        assert!(!k.is_material_expired(u64::MAX));
    }

    #[test]
    fn import_rules_by_origin_and_state() {
        let mut generated = key(KeySpec::SymmetricDefault);
        let err = generated.import_material(&import(1, None), 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
        let err = generated.apply_change(&KeyChange::DeleteImportedMaterial, 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
        let mut rsa = external(KeySpec::Rsa2048);
        assert_eq!(
            rsa.import_material(&import(1, None), 0).unwrap_err().kind,
            ErrorKind::UnsupportedOperationException
        );

        // Pending deletion: no import (note 8); deleting material keeps the key waiting, and
        // cancelling leaves it pending import rather than disabled.
        let mut k = external(KeySpec::SymmetricDefault);
        k.import_material(&import(1, None), 0).unwrap();
        k.apply_change(&KeyChange::ScheduleDeletion { window_days: 7 }, 0).unwrap();
        let err = k.import_material(&import(1, None), 1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);
        assert_eq!(
            k.check_importable("GetParametersForImport").unwrap_err().message,
            "k1 is pending deletion."
        );
        k.apply_change(&KeyChange::DeleteImportedMaterial, 2).unwrap();
        assert_eq!(k.state, KeyState::PendingDeletion);
        k.apply_change(&KeyChange::CancelDeletion, 3).unwrap();
        assert_eq!(k.state, KeyState::PendingImport);

        // With material, cancelling gives Disabled as usual.
        let mut k = external(KeySpec::SymmetricDefault);
        k.import_material(&import(1, None), 0).unwrap();
        k.apply_change(&KeyChange::ScheduleDeletion { window_days: 7 }, 0).unwrap();
        k.apply_change(&KeyChange::CancelDeletion, 1).unwrap();
        assert_eq!(k.state, KeyState::Disabled);
        let err =
            k.apply_change(&KeyChange::Rotate { material: material(1, Some(RotationType::OnDemand)) }, 2);
        assert_eq!(err.unwrap_err().kind, ErrorKind::UnsupportedOperationException);
    }

    #[test]
    fn records_without_import_fields_still_load() {
        let mut json = serde_json::to_value(key(KeySpec::SymmetricDefault)).unwrap();
        json.as_object_mut().unwrap().remove("import");
        let k: KeyRecord = serde_json::from_value(json).unwrap();
        assert_eq!(k.import, None);
    }

    #[test]
    fn disabled_keys_refuse_rotation() {
        let mut k = key(KeySpec::SymmetricDefault);
        k.apply_change(&KeyChange::Disable, 0).unwrap();
        let change = KeyChange::Rotate { material: material(1, Some(RotationType::OnDemand)) };
        assert_eq!(k.apply_change(&change, 0).unwrap_err().kind, ErrorKind::DisabledException);
    }
}
