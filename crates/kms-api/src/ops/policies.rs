//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. A key has one policy, named
//! `default`; a key created without one has AWS's default key policy for the account.

use super::page_limit;
use crate::authz::Authz;
use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::key::KeyChange;
use kms_core::policy::{Action, DEFAULT_POLICY_NAME, default_policy, keys};
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;

/// PolicyName, when given, must be `default`: no other policy exists.
fn check_policy_name(name: Option<&str>) -> KmsResult<()> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::not_found(format!(
            "No such policy exists: '{other}'; a key has one policy, named {DEFAULT_POLICY_NAME}"
        ))),
    }
}

impl Kms {
    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        req: pb::GetKeyPolicyRequest,
    ) -> KmsResult<pb::GetKeyPolicyResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::GetKeyPolicy)).await?;
        check_policy_name(req.policy_name.as_deref())?;
        let policy = key.policy.clone().unwrap_or_else(|| default_policy(&self.scope));
        Ok(pb::GetKeyPolicyResponse { policy, policy_name: DEFAULT_POLICY_NAME.into() })
    }

    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        req: pb::PutKeyPolicyRequest,
    ) -> KmsResult<pb::PutKeyPolicyResponse> {
        let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
        check_policy_name(req.policy_name.as_deref())?;
        let key = self.key(&req.key_id, false).await?;
        key.check_managed_operation("PutKeyPolicy")?;
        let authz =
            Authz::new(caller, Action::PutKeyPolicy).condition(keys::BYPASS_LOCKOUT_CHECK, Some(bypass));
        self.authorize(&key, &authz).await?;
        self.check_new_policy(caller, &key, &req.policy, bypass)?;
        self.apply_key_change(&key, KeyChange::PutPolicy { policy: req.policy }).await?;
        tracing::info!(key_id = %key.key_id, bypass, "replaced key policy");
        Ok(pb::PutKeyPolicyResponse {})
    }

    pub async fn list_key_policies(
        &self,
        caller: &Caller,
        req: pb::ListKeyPoliciesRequest,
    ) -> KmsResult<pb::ListKeyPoliciesResponse> {
        page_limit(req.limit, 100, 1000)?;
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::ListKeyPolicies)).await?;
        if req.marker.is_some() {
            // The one page never has a next one, so no marker of ours exists.
            return Err(KmsError::invalid_marker("marker is not one this service returned"));
        }
        Ok(pb::ListKeyPoliciesResponse {
            policy_names: vec![DEFAULT_POLICY_NAME.into()],
            next_marker: String::new(),
            truncated: false,
        })
    }
}
