//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use super::{page_end, page_limit};
use crate::caller::Caller;
use crate::convert::timestamp;
use crate::kms::Kms;
use kms_core::KmsResult;
use kms_core::command::Command;
use kms_core::ids::validate_alias_name;
use kms_core::state::{AliasRecord, Keys};
use kms_proto::v1 as pb;

impl Kms {
    pub async fn create_alias(
        &self,
        _caller: &Caller,
        req: pb::CreateAliasRequest,
    ) -> KmsResult<pb::CreateAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        let target = self.key(&req.target_key_id, false).await?;
        let command = Command::CreateAlias {
            alias_name: req.alias_name,
            target_key_id: target.key_id,
            now: self.now(),
        };
        self.propose(command).await?;
        Ok(pb::CreateAliasResponse {})
    }

    pub async fn update_alias(
        &self,
        _caller: &Caller,
        req: pb::UpdateAliasRequest,
    ) -> KmsResult<pb::UpdateAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        let target = self.key(&req.target_key_id, false).await?;
        let command = Command::UpdateAlias {
            alias_name: req.alias_name,
            target_key_id: target.key_id,
            now: self.now(),
        };
        self.propose(command).await?;
        Ok(pb::UpdateAliasResponse {})
    }

    pub async fn delete_alias(
        &self,
        _caller: &Caller,
        req: pb::DeleteAliasRequest,
    ) -> KmsResult<pb::DeleteAliasResponse> {
        validate_alias_name(&req.alias_name)?;
        self.propose(Command::DeleteAlias { alias_name: req.alias_name }).await?;
        Ok(pb::DeleteAliasResponse {})
    }

    pub async fn list_aliases(
        &self,
        _caller: &Caller,
        req: pb::ListAliasesRequest,
    ) -> KmsResult<pb::ListAliasesResponse> {
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
