//! Key lifecycle: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::{page_end, page_limit};
use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::{enum_in, enum_out, timestamp};
use crate::kms::Kms;
use kms_core::command::Command;
use kms_core::ids::{check_length, new_key_id};
use kms_core::key::{DEFAULT_PENDING_WINDOW_DAYS, KeyChange, KeyRecord, validate_tags};
use kms_core::policy::{Action, keys};
use kms_core::spec::{KeySpec, KeyState, KeyUsage, Origin};
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;
use std::collections::BTreeMap;

pub(crate) fn tags_in(tags: &[pb::Tag]) -> KmsResult<BTreeMap<String, String>> {
    let map: BTreeMap<_, _> = tags.iter().map(|t| (t.tag_key.clone(), t.tag_value.clone())).collect();
    if map.len() != tags.len() {
        return Err(KmsError::tag("the same TagKey appears more than once"));
    }
    validate_tags(&map)?;
    Ok(map)
}

impl Kms {
    pub async fn create_key(
        &self,
        caller: &Caller,
        req: pb::CreateKeyRequest,
    ) -> KmsResult<pb::CreateKeyResponse> {
        self.authorize_without_key(caller, Action::CreateKey)?;
        let token = self.create_key_token(caller, &req)?;
        if let Some(token) = &token
            && let Some(key) = self.key_created_with(token)?
        {
            // A retry of a CreateKey this node has already applied: no new material needed.
            return Ok(pb::CreateKeyResponse { key_metadata: Some(self.metadata(&key)) });
        }
        let key_spec = self.requested_key_spec(&req)?;
        let key_usage =
            key_spec.resolve_usage(enum_in::<pb::KeyUsage, KeyUsage>("KeyUsage", req.key_usage)?)?;
        let origin = enum_in::<pb::OriginType, Origin>("Origin", req.origin)?.unwrap_or(Origin::AwsKms);
        match origin {
            Origin::AwsKms => {}
            Origin::External if key_spec.importable_material_len().is_some() => {}
            Origin::External => {
                return Err(KmsError::unsupported(format!(
                    "Origin EXTERNAL is supported for SYMMETRIC_DEFAULT and HMAC keys only, not {key_spec}"
                )));
            }
            _ => {
                return Err(KmsError::unsupported(format!(
                    "Origin {origin} is not supported by this server; only AWS_KMS and EXTERNAL"
                )));
            }
        }
        if req.custom_key_store_id.is_some() || req.xks_key_id.is_some() {
            return Err(KmsError::unsupported("custom key stores are not supported by this server"));
        }
        let description = req.description.unwrap_or_default();
        check_length("description", &description, 0, 8192)?;
        let tags = tags_in(&req.tags)?;
        let multi_region = req.multi_region.unwrap_or(false);
        if !key_spec.is_implemented() {
            return Err(KmsError::unsupported(format!(
                "KeySpec {key_spec} is not supported by this server yet"
            )));
        }

        let external = origin == Origin::External;
        let mut key = KeyRecord {
            description,
            // An EXTERNAL key starts without material and waits for ImportKeyMaterial.
            state: if external { KeyState::PendingImport } else { KeyState::Enabled },
            multi_region,
            multi_region_config: multi_region
                .then(|| kms_core::multi_region::MultiRegionConfig::new_primary(&self.scope.region)),
            tags,
            policy: req.policy,
            ..KeyRecord::new(new_key_id(multi_region), self.now(), key_spec, key_usage, origin)
        };
        if let Some(policy) = &key.policy {
            let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
            self.check_new_policy(caller, &key, policy, bypass)?;
        }
        if !external {
            // Material is generated and sealed before proposing: the Raft log only sees it sealed.
            let (material, public_key) = self.new_material(&key.key_id, key_spec, 0, None).await?;
            key.materials = vec![material];
            key.public_key = public_key;
        }
        let command = match token {
            Some(token) => Command::CreateKeyWithToken { key, token },
            None => Command::CreateKey { key },
        };
        let key = self.propose_key(command).await?;
        tracing::info!(key_id = %key.key_id, key_spec = %key.key_spec, "created key");
        Ok(pb::CreateKeyResponse { key_metadata: Some(self.metadata(&key)) })
    }

    /// KeySpec, or the deprecated CustomerMasterKeySpec; giving both is an error, as in AWS.
    fn requested_key_spec(&self, req: &pb::CreateKeyRequest) -> KmsResult<KeySpec> {
        let spec = enum_in::<pb::KeySpec, KeySpec>("KeySpec", req.key_spec)?;
        let legacy = pb::CustomerMasterKeySpec::try_from(req.customer_master_key_spec)
            .map_err(|_| KmsError::validation("invalid CustomerMasterKeySpec"))?
            .aws_name()
            .map(str::parse::<KeySpec>)
            .transpose()?;
        match (spec, legacy) {
            (Some(_), Some(_)) => {
                Err(KmsError::validation("specify KeySpec or CustomerMasterKeySpec (deprecated), not both"))
            }
            (spec, legacy) => Ok(spec.or(legacy).unwrap_or(KeySpec::SymmetricDefault)),
        }
    }

    pub async fn describe_key(
        &self,
        caller: &Caller,
        req: pb::DescribeKeyRequest,
    ) -> KmsResult<pb::DescribeKeyResponse> {
        let key = self.key(&req.key_id, true).await?;
        self.authorize(
            &key,
            &Authz::new(caller, Action::DescribeKey).named(&req.key_id).tokens(&req.grant_tokens),
        )
        .await?;
        Ok(pb::DescribeKeyResponse { key_metadata: Some(self.metadata(&key)) })
    }

    pub async fn list_keys(
        &self,
        caller: &Caller,
        req: pb::ListKeysRequest,
    ) -> KmsResult<pb::ListKeysResponse> {
        self.authorize_without_key(caller, Action::ListKeys)?;
        let limit = page_limit(req.limit, 100, 1000)?;
        let page = Keys::new(&self.region.reader()).list_keys(req.marker.as_deref(), limit)?;
        let keys = page
            .items
            .iter()
            .map(|k| pb::KeyListEntry { key_id: k.key_id.clone(), key_arn: self.key_arn(&k.key_id) })
            .collect();
        let (next_marker, truncated) = page_end(page.next_marker);
        Ok(pb::ListKeysResponse { keys, next_marker, truncated })
    }

    /// Applies one change to a key named by id or ARN (management operations take no aliases),
    /// if `authz` allows it.
    pub(crate) async fn change_key(
        &self,
        authz: &Authz<'_>,
        key_id: &str,
        change: KeyChange,
    ) -> KmsResult<KeyRecord> {
        let key = self.key(key_id, false).await?;
        // Nobody manages an AWS managed key: refused with AWS's exception, whatever the policy.
        key.check_manageable(&change)?;
        self.authorize(&key, authz).await?;
        self.apply_key_change(&key, change).await
    }

    /// Proposes `change` to a key the caller was already authorized on.
    pub(crate) async fn apply_key_change(&self, key: &KeyRecord, change: KeyChange) -> KmsResult<KeyRecord> {
        let command = Command::ChangeKey { key_id: key.key_id.clone(), change, now: self.now() };
        self.propose_key(command).await
    }

    pub async fn update_key_description(
        &self,
        caller: &Caller,
        req: pb::UpdateKeyDescriptionRequest,
    ) -> KmsResult<pb::UpdateKeyDescriptionResponse> {
        check_length("description", &req.description, 0, 8192)?;
        let authz = Authz::new(caller, Action::UpdateKeyDescription);
        self.change_key(&authz, &req.key_id, KeyChange::Describe { description: req.description }).await?;
        Ok(pb::UpdateKeyDescriptionResponse {})
    }

    pub async fn enable_key(
        &self,
        caller: &Caller,
        req: pb::EnableKeyRequest,
    ) -> KmsResult<pb::EnableKeyResponse> {
        self.change_key(&Authz::new(caller, Action::EnableKey), &req.key_id, KeyChange::Enable).await?;
        Ok(pb::EnableKeyResponse {})
    }

    pub async fn disable_key(
        &self,
        caller: &Caller,
        req: pb::DisableKeyRequest,
    ) -> KmsResult<pb::DisableKeyResponse> {
        self.change_key(&Authz::new(caller, Action::DisableKey), &req.key_id, KeyChange::Disable).await?;
        Ok(pb::DisableKeyResponse {})
    }

    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        req: pb::ScheduleKeyDeletionRequest,
    ) -> KmsResult<pb::ScheduleKeyDeletionResponse> {
        let window_days = match req.pending_window_in_days {
            None => DEFAULT_PENDING_WINDOW_DAYS,
            Some(days) => u32::try_from(days).unwrap_or(0),
        };
        kms_core::key::check_pending_window(window_days)?;
        let authz = Authz::new(caller, Action::ScheduleKeyDeletion)
            .condition(keys::PENDING_WINDOW_DAYS, Some(window_days));
        let key = self.change_key(&authz, &req.key_id, KeyChange::ScheduleDeletion { window_days }).await?;
        tracing::info!(key_id = %key.key_id, window_days, "scheduled key deletion");
        Ok(pb::ScheduleKeyDeletionResponse {
            key_id: self.key_arn(&key.key_id),
            deletion_date: key.deletion_date.map(timestamp),
            key_state: enum_out::<pb::KeyState>(key.state),
            pending_window_in_days: Some(window_days as i32),
        })
    }

    pub async fn cancel_key_deletion(
        &self,
        caller: &Caller,
        req: pb::CancelKeyDeletionRequest,
    ) -> KmsResult<pb::CancelKeyDeletionResponse> {
        let authz = Authz::new(caller, Action::CancelKeyDeletion);
        let key = self.change_key(&authz, &req.key_id, KeyChange::CancelDeletion).await?;
        Ok(pb::CancelKeyDeletionResponse { key_id: self.key_arn(&key.key_id) })
    }
}
