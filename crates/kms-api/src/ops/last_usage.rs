//! GetKeyLastUsage: the last successful cryptographic use of a key, from the replicated record
//! or, if newer, from this node's not yet replicated observations (see `usage.rs`).

use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::timestamp;
use crate::kms::Kms;
use kms_core::KmsResult;
use kms_core::policy::Action;
use kms_core::state::Keys;
use kms_proto::v1 as pb;

impl Kms {
    pub async fn get_key_last_usage(
        &self,
        caller: &Caller,
        req: pb::GetKeyLastUsageRequest,
    ) -> KmsResult<pb::GetKeyLastUsageResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::GetKeyLastUsage)).await?;
        let replicated = Keys::new(&self.region.reader()).last_use(&key.key_id)?;
        let last = match (replicated, self.pending_use(&key.key_id)) {
            (Some(a), Some(b)) => Some(if b.at > a.at { b } else { a }),
            (a, b) => a.or(b),
        };
        let key_last_usage = last.map(|last| pb::KeyLastUsageData {
            operation: pb::KeyLastUsageTrackingOperation::from_aws_name(&last.operation)
                .map_or(0, Into::into),
            timestamp: Some(timestamp(last.at)),
            ..Default::default()
        });
        Ok(pb::GetKeyLastUsageResponse {
            key_id: self.key_arn(&key.key_id),
            key_last_usage,
            // Every use is tracked from the moment a key exists.
            tracking_start_date: Some(timestamp(key.creation_date)),
            key_creation_date: Some(timestamp(key.creation_date)),
        })
    }
}
