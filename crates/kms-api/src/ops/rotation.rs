//! Rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations, and the automatic rotation the maintenance loop drives.

use super::{page_end, page_limit};
use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::{enum_out, timestamp};
use crate::kms::Kms;
use kms_core::command::Command;
use kms_core::key::{DEFAULT_ROTATION_PERIOD_DAYS, KeyChange, KeyRecord};
use kms_core::policy::{Action, keys};
use kms_core::spec::{KeyFamily, Origin, RotationType};
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;

impl Kms {
    // AWS answers the bare key id (not the ARN) in the rotation operations' responses.

    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        req: pb::EnableKeyRotationRequest,
    ) -> KmsResult<pb::EnableKeyRotationResponse> {
        let period_days = match req.rotation_period_in_days {
            None => DEFAULT_ROTATION_PERIOD_DAYS,
            Some(days) => u32::try_from(days).unwrap_or(0),
        };
        kms_core::key::check_rotation_period(period_days)?;
        let authz = Authz::new(caller, Action::EnableKeyRotation)
            .condition(keys::ROTATION_PERIOD_DAYS, Some(period_days));
        self.change_key(&authz, &req.key_id, KeyChange::EnableRotation { period_days }).await?;
        Ok(pb::EnableKeyRotationResponse {})
    }

    pub async fn disable_key_rotation(
        &self,
        caller: &Caller,
        req: pb::DisableKeyRotationRequest,
    ) -> KmsResult<pb::DisableKeyRotationResponse> {
        let authz = Authz::new(caller, Action::DisableKeyRotation);
        self.change_key(&authz, &req.key_id, KeyChange::DisableRotation).await?;
        Ok(pb::DisableKeyRotationResponse {})
    }

    pub async fn get_key_rotation_status(
        &self,
        caller: &Caller,
        req: pb::GetKeyRotationStatusRequest,
    ) -> KmsResult<pb::GetKeyRotationStatusResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::GetKeyRotationStatus)).await?;
        if key.key_spec.family() != KeyFamily::Symmetric {
            return Err(KmsError::unsupported(format!(
                "key {} is {}; only symmetric encryption keys rotate",
                key.key_id, key.key_spec
            )));
        }
        if key.origin == Origin::External {
            // Note 6 of the key-state table: imported material does not rotate automatically.
            return Err(KmsError::unsupported(format!(
                "key {} has origin EXTERNAL; automatic rotation is only for origin AWS_KMS",
                key.key_id
            )));
        }
        let rotation = &key.rotation;
        Ok(pb::GetKeyRotationStatusResponse {
            key_rotation_enabled: rotation.enabled,
            key_id: key.key_id.clone(),
            rotation_period_in_days: rotation.enabled.then_some(rotation.period_days as i32),
            next_rotation_date: rotation.next_rotation.filter(|_| rotation.enabled).map(timestamp),
            on_demand_rotation_start_date: None,
        })
    }

    pub async fn rotate_key_on_demand(
        &self,
        caller: &Caller,
        req: pb::RotateKeyOnDemandRequest,
    ) -> KmsResult<pb::RotateKeyOnDemandResponse> {
        let key = self.key(&req.key_id, false).await?;
        key.check_managed_operation("RotateKeyOnDemand")?;
        self.authorize(&key, &Authz::new(caller, Action::RotateKeyOnDemand)).await?;
        let key = self.rotate(&key, RotationType::OnDemand).await?;
        Ok(pb::RotateKeyOnDemandResponse { key_id: key.key_id })
    }

    /// Adds a material version. The state machine re-checks every rule against the state it
    /// applies on, so a stale read here can only lead to a refused command, never a wrong one.
    pub(crate) async fn rotate(&self, key: &KeyRecord, rotation_type: RotationType) -> KmsResult<KeyRecord> {
        // Checked here too (the state machine has the last word) so that no material is generated
        // for a key that cannot rotate.
        key.check_rotatable(if rotation_type == RotationType::Automatic {
            "automatic rotation"
        } else {
            "RotateKeyOnDemand"
        })?;
        let version = key.materials.len() as u32;
        let (material, _) =
            self.new_material(&key.key_id, key.key_spec, version, Some(rotation_type)).await?;
        let command = Command::ChangeKey {
            key_id: key.key_id.clone(),
            change: KeyChange::Rotate { material },
            now: self.now(),
        };
        let rotated = self.propose_key(command).await?;
        tracing::info!(key_id = %key.key_id, version, ?rotation_type, "rotated key material");
        Ok(rotated)
    }

    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        req: pb::ListKeyRotationsRequest,
    ) -> KmsResult<pb::ListKeyRotationsResponse> {
        let limit = page_limit(req.limit, 100, 1000)?;
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::ListKeyRotations)).await?;
        if key.key_spec.family() != KeyFamily::Symmetric {
            return Err(KmsError::unsupported(format!(
                "key {} is {}; only symmetric encryption keys rotate",
                key.key_id, key.key_spec
            )));
        }
        let include_all = req.include_key_material == i32::from(pb::IncludeKeyMaterial::AllKeyMaterial);
        let start: usize = match req.marker.as_deref() {
            None => 0,
            Some(marker) => marker
                .parse()
                .map_err(|_| KmsError::invalid_marker("marker is not one this service returned"))?,
        };
        let current = key.materials.len().saturating_sub(1);
        let mut listed = key
            .materials
            .iter()
            .filter(|m| include_all || m.rotation_type.is_some())
            .filter(|m| m.version as usize >= start);
        let rotations = listed
            .by_ref()
            .take(limit)
            .map(|m| pb::RotationsListEntry {
                key_id: key.key_id.clone(),
                key_material_id: m.material_id.clone(),
                key_material_state: if m.version as usize == current {
                    pb::KeyMaterialState::Current.into()
                } else {
                    pb::KeyMaterialState::NonCurrent.into()
                },
                rotation_date: Some(timestamp(m.created)),
                rotation_type: m.rotation_type.map_or(0, enum_out::<pb::RotationType>),
                ..Default::default()
            })
            .collect();
        let (next_marker, truncated) = page_end(listed.next().map(|m| m.version.to_string()));
        Ok(pb::ListKeyRotationsResponse { rotations, next_marker, truncated })
    }
}
