//! Time-driven work: deleting keys whose waiting period is over, deleting imported key
//! material whose ValidTo passed, rotating keys whose rotation is due, and re-sealing material
//! after a root key rotation (`crate::reseal`). It runs on every node
//! but acts only on the leader, so each change is proposed once; the state machine re-checks due dates, so a duplicate proposal (e.g. around
//! a leader change) is refused rather than applied twice.

use crate::kms::Kms;
use kms_core::command::{Command, CommandOutput};
use kms_core::spec::RotationType;
use kms_core::state::Keys;
use std::time::Duration;
use tokio::sync::watch;

impl Kms {
    /// One pass: purge due keys, expire imported material, rotate due keys. Returns how many
    /// keys were deleted and rotated.
    ///
    /// The state is read once; a command is proposed only when something is due, so an idle
    /// region does not grow its Raft log every tick.
    pub async fn run_maintenance(&self) -> (usize, usize) {
        self.materials.evict_idle(crate::unsealed::MATERIAL_IDLE);
        if !self.region.is_leader() {
            if let Some(metrics) = crate::metrics::installed() {
                metrics.observe_reseal(None);
            }
            return (0, 0);
        }
        let now = self.now();
        let keys = match Keys::new(&self.region.reader()).all_keys() {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(error = %err, "reading keys for maintenance failed; will retry");
                return (0, 0);
            }
        };
        let purged =
            if keys.iter().any(|k| k.is_due_for_deletion(now)) { self.purge_due_keys(now).await } else { 0 };
        match self.expire_imports(&keys, now).await {
            Ok(ids) => {
                for key_id in &ids {
                    tracing::info!(key_id = %key_id, "imported key material expired; the key is pending import");
                }
            }
            Err(err) => tracing::warn!(error = %err, "expiring imported key material failed; will retry"),
        }
        let mut rotated = 0;
        // A multi-Region key rotates in its primary's region; replicas receive the material.
        let rotates_here = |k: &&kms_core::key::KeyRecord| {
            k.multi_region_config.as_ref().is_none_or(|c| c.is_primary(&self.scope.region))
        };
        for key in keys.iter().filter(|k| k.is_due_for_rotation(now)).filter(rotates_here) {
            match self.rotate(key, RotationType::Automatic).await {
                Ok(_) => rotated += 1,
                Err(err) => {
                    tracing::warn!(key_id = %key.key_id, error = %err, "automatic rotation failed; will retry")
                }
            }
        }
        self.reseal_pass(&keys).await;
        (purged, rotated)
    }

    async fn purge_due_keys(&self, now: u64) -> usize {
        match self.propose(Command::PurgeDueKeys { now }).await {
            Ok(CommandOutput::Purged(ids)) => {
                for key_id in &ids {
                    tracing::info!(key_id = %key_id, "deleted key whose waiting period ended");
                }
                ids.len()
            }
            Ok(_) => 0,
            Err(err) => {
                tracing::warn!(error = %err, "purging keys due for deletion failed; will retry");
                0
            }
        }
    }

    /// Every `interval` until `shutdown` flips to true: replicate this node's key-use records
    /// (every node), then the leader's maintenance pass.
    pub async fn maintenance_loop(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.flush_key_use().await;
                    self.run_maintenance().await;
                }
                _ = shutdown.changed() => {
                    self.flush_key_use().await;
                    return;
                }
            }
        }
    }
}
