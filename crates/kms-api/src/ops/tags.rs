//! Tags: TagResource, UntagResource, ListResourceTags.

use super::keys::tags_in;
use super::{page_end, page_limit};
use crate::authz::Authz;
use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::key::KeyChange;
use kms_core::policy::{Action, keys};
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;

impl Kms {
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        req: pb::TagResourceRequest,
    ) -> KmsResult<pb::TagResourceResponse> {
        let tags = tags_in(&req.tags)?;
        let mut authz = Authz::new(caller, Action::TagResource);
        for (tag, value) in &tags {
            authz = authz.condition(keys::TAG_KEYS, Some(tag)).tag(tag, value);
        }
        self.change_key(&authz, &req.key_id, KeyChange::Tag { tags }).await?;
        Ok(pb::TagResourceResponse {})
    }

    pub async fn untag_resource(
        &self,
        caller: &Caller,
        req: pb::UntagResourceRequest,
    ) -> KmsResult<pb::UntagResourceResponse> {
        if req.tag_keys.is_empty() {
            return Err(KmsError::validation("TagKeys must name at least one tag"));
        }
        let authz = req.tag_keys.iter().fold(Authz::new(caller, Action::UntagResource), |authz, tag| {
            authz.condition(keys::TAG_KEYS, Some(tag))
        });
        self.change_key(&authz, &req.key_id, KeyChange::Untag { tag_keys: req.tag_keys }).await?;
        Ok(pb::UntagResourceResponse {})
    }

    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        req: pb::ListResourceTagsRequest,
    ) -> KmsResult<pb::ListResourceTagsResponse> {
        let limit = page_limit(req.limit, 50, 50)?;
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::ListResourceTags)).await?;
        let start = req.marker.clone().unwrap_or_default();
        if req.marker.is_some() && !key.tags.contains_key(&start) {
            return Err(KmsError::invalid_marker("marker is not one this service returned"));
        }
        let mut remaining = key.tags.range(start..);
        let tags = remaining
            .by_ref()
            .take(limit)
            .map(|(k, v)| pb::Tag { tag_key: k.clone(), tag_value: v.clone() })
            .collect();
        let (next_marker, truncated) = page_end(remaining.next().map(|(k, _)| k.clone()));
        Ok(pb::ListResourceTagsResponse { tags, next_marker, truncated })
    }
}
