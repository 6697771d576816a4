//! Multi-Region keys: ReplicateKey and UpdatePrimaryRegion. The rules are kms-core's
//! (`kms_core::multi_region`); the delivery between regions is `crate::regions`.

use super::keys::tags_in;
use crate::authz::Authz;
use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::command::Command;
use kms_core::ids::{RegionScope, check_length};
use kms_core::multi_region::{ReplicaInit, ReplicaUpdate};
use kms_core::policy::Action;
use kms_core::spec::KeyState;
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;

impl Kms {
    pub async fn replicate_key(
        &self,
        caller: &Caller,
        req: pb::ReplicateKeyRequest,
    ) -> KmsResult<pb::ReplicateKeyResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.check_region("ReplicaRegion", &req.replica_region)?;
        let description = req.description.unwrap_or_default();
        check_length("description", &description, 0, 8192)?;
        let tags = tags_in(&req.tags)?;
        self.authorize(&key, &Authz::new(caller, Action::ReplicateKey)).await?;
        kms_core::multi_region::check_replicable(&self.scope.region, &key, &req.replica_region)?;
        let replica_scope = RegionScope { region: req.replica_region.clone(), ..self.scope.clone() };
        let init = ReplicaInit { description, policy: req.policy, tags };
        // What the replica will be once its region applies the update: checked now, so a policy
        // that would lock its owner out is refused here rather than silently in the other region.
        let update = ReplicaUpdate::of(&key, Some(init.clone()))?;
        let mut replica = kms_core::multi_region::replica_record(&update, &init, self.now());
        if let Some(policy) = &init.policy {
            let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
            self.check_new_policy(caller, &replica, policy, bypass)?;
        }
        // The replica's region creates it in Creating now (or says it already holds the key);
        // the outbox brings the material once the command below commits.
        let announcement = update.into_announcement(&req.replica_region);
        crate::regions::replicator::announce_replica(self, &req.replica_region, announcement).await?;
        let command = Command::ReplicateKey {
            key_id: key.key_id.clone(),
            replica_region: req.replica_region.clone(),
            init: init.clone(),
            now: self.now(),
        };
        let primary = self.propose_key(command).await?;
        // AWS answers with the replica in Creating: it becomes Enabled in its region once the
        // update arrives there.
        replica.multi_region_config = primary.multi_region_config.clone();
        if replica.state == KeyState::Enabled {
            replica.state = KeyState::Creating;
        }
        Ok(pb::ReplicateKeyResponse {
            replica_key_metadata: Some(crate::convert::key_metadata(&replica, &replica_scope)),
            replica_policy: init.policy.unwrap_or_else(|| kms_core::policy::default_policy(&replica_scope)),
            replica_tags: init
                .tags
                .into_iter()
                .map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value })
                .collect(),
        })
    }

    pub async fn update_primary_region(
        &self,
        caller: &Caller,
        req: pb::UpdatePrimaryRegionRequest,
    ) -> KmsResult<pb::UpdatePrimaryRegionResponse> {
        let key = self.key(&req.key_id, false).await?;
        if req.primary_region != self.scope.region {
            self.check_region("PrimaryRegion", &req.primary_region)?;
        }
        self.authorize(&key, &Authz::new(caller, Action::UpdatePrimaryRegion)).await?;
        let command = Command::UpdatePrimaryRegion {
            key_id: key.key_id.clone(),
            primary_region: req.primary_region,
            force: req.force.unwrap_or(false),
            now: self.now(),
        };
        self.propose_key(command).await?;
        Ok(pb::UpdatePrimaryRegionResponse {})
    }

    /// `region` must be another region of this deployment (configured under `[regions]`).
    fn check_region(&self, field: &str, region: &str) -> KmsResult<()> {
        check_length(field, region, 1, 32)?;
        if self.peers.contains(region) {
            return Ok(());
        }
        let known: Vec<&str> = self.peers.names().collect();
        Err(KmsError::validation(format!(
            "{field} {region} is not another region of this deployment (known: {}); add it under \
             [regions.{region}] in every region's configuration",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )))
    }
}
