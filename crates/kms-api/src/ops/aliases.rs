//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use super::{page_end, page_limit};
use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::timestamp;
use crate::kms::Kms;
use kms_core::KmsResult;
use kms_core::command::Command;
use kms_core::ids::{KeyRef, validate_alias_name};
use kms_core::key::KeyRecord;
use kms_core::policy::Action;
use kms_core::state::{AliasRecord, Keys};
use kms_proto::v1 as pb;
use std::sync::Arc;

impl Kms {
    pub async fn create_alias(
        &self,
        caller: &Caller,
        req: pb::CreateAliasRequest,
    ) -> KmsResult<pb::CreateAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        let target = self.key(&req.target_key_id, false).await?;
        target.check_alias_target("CreateAlias")?;
        self.authorize(&target, &Authz::new(caller, Action::CreateAlias)).await?;
        let command = Command::CreateAlias {
            alias_name: req.alias_name,
            target_key_id: target.key_id.clone(),
            now: self.now(),
        };
        self.propose(command).await?;
        Ok(pb::CreateAliasResponse {})
    }

    pub async fn update_alias(
        &self,
        caller: &Caller,
        req: pb::UpdateAliasRequest,
    ) -> KmsResult<pb::UpdateAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        let target = self.key(&req.target_key_id, false).await?;
        target.check_alias_target("UpdateAlias")?;
        // AWS needs kms:UpdateAlias on both the key the alias leaves and the one it moves to.
        let current = self.alias_target(&req.alias_name).await?;
        self.authorize(&current, &Authz::new(caller, Action::UpdateAlias)).await?;
        self.authorize(&target, &Authz::new(caller, Action::UpdateAlias)).await?;
        let command = Command::UpdateAlias {
            alias_name: req.alias_name,
            target_key_id: target.key_id.clone(),
            now: self.now(),
        };
        self.propose(command).await?;
        Ok(pb::UpdateAliasResponse {})
    }

    pub async fn delete_alias(
        &self,
        caller: &Caller,
        req: pb::DeleteAliasRequest,
    ) -> KmsResult<pb::DeleteAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        let target = self.alias_target(&req.alias_name).await?;
        self.authorize(&target, &Authz::new(caller, Action::DeleteAlias)).await?;
        self.propose(Command::DeleteAlias { alias_name: req.alias_name }).await?;
        Ok(pb::DeleteAliasResponse {})
    }

    pub async fn list_aliases(
        &self,
        caller: &Caller,
        req: pb::ListAliasesRequest,
    ) -> KmsResult<pb::ListAliasesResponse> {
        self.authorize_without_key(caller, Action::ListAliases)?;
        let limit = page_limit(req.limit, 50, 100)?;
        let reader = self.region.reader();
        let keys = Keys::new(&reader);
        let (aliases, next_marker) = match req.key_id.as_deref() {
            // Filtered by key: at most 50 aliases per key, so one page holds them all.
            Some(key_id) => {
                let key = self.key(key_id, false).await?;
                (keys.aliases_of(&key.key_id)?, None)
            }
            None => {
                let page = keys.list_aliases(req.marker.as_deref(), limit)?;
                (page.items, page.next_marker)
            }
        };
        let aliases = aliases.iter().map(|a| self.alias_entry(a)).collect();
        let (next_marker, truncated) = page_end(next_marker);
        Ok(pb::ListAliasesResponse { aliases, next_marker, truncated })
    }

    /// The key an existing alias points at (NotFoundException for an unknown alias).
    async fn alias_target(&self, alias_name: &str) -> KmsResult<Arc<KeyRecord>> {
        self.resolve(&KeyRef::Alias(alias_name.to_string())).await
    }

    fn alias_entry(&self, alias: &AliasRecord) -> pb::AliasListEntry {
        pb::AliasListEntry {
            alias_name: alias.alias_name.clone(),
            alias_arn: self.scope.alias_arn(&alias.alias_name),
            target_key_id: alias.target_key_id.clone(),
            creation_date: Some(timestamp(alias.creation_date)),
            last_updated_date: Some(timestamp(alias.last_updated_date)),
        }
    }
}
