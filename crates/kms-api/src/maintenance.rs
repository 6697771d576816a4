//! Time-driven work: deleting keys whose waiting period is over, deleting imported key
//! material whose ValidTo passed, rotating keys whose rotation is due, and re-sealing material
//! after a root key rotation (`crate::reseal`). It runs on every node
//! but acts only on the leader, so each change is proposed once; the state machine re-checks due dates, so a duplicate proposal (e.g. around
//! a leader change) is refused rather than applied twice.

use crate::kms::Kms;
use crate::reseal::StaleMaterial;
use kms_core::command::{Command, CommandOutput};
use kms_core::key::{KeyRecord, UnixMillis};
use kms_core::spec::RotationType;
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use std::time::Duration;
use tokio::sync::watch;

impl Kms {
    /// One pass: purge due keys, expire imported material, rotate due keys, re-seal. Returns how
    /// many keys were deleted and rotated.
    ///
    /// The keys are read once, a page at a time; a command is proposed only when something is
    /// due, so an idle region does not grow its Raft log every tick.
    pub async fn run_maintenance(&self) -> (usize, usize) {
        self.materials.evict_idle(crate::unsealed::MATERIAL_IDLE);
        if !self.region.is_leader() {
            if let Some(metrics) = crate::metrics::installed() {
                metrics.observe_reseal(None);
            }
            return (0, 0);
        }
        let now = self.now();
        // Reading every key takes time in proportion to their number (seconds for a million):
        // on the blocking pool it does not hold up the requests of a runtime worker meanwhile.
        let kms = self.clone();
        let survey = tokio::task::spawn_blocking(move || kms.survey_keys(now))
            .await
            .unwrap_or_else(|err| Err(KmsError::internal(format!("maintenance survey task failed: {err}"))));
        let survey = match survey {
            Ok(survey) => survey,
            Err(err) => {
                tracing::warn!(error = %err, "reading keys for maintenance failed; will retry");
                return (0, 0);
            }
        };
        let purged = if survey.deletion_due { self.purge_due_keys(now).await } else { 0 };
        match self.expire_imports(survey.material_expired, now).await {
            Ok(ids) => {
                for key_id in &ids {
                    tracing::info!(key_id = %key_id, "imported key material expired; the key is pending import");
                }
            }
            Err(err) => tracing::warn!(error = %err, "expiring imported key material failed; will retry"),
        }
        let mut rotated = 0;
        for key in &survey.due_for_rotation {
            match self.rotate(key, RotationType::Automatic).await {
                Ok(_) => rotated += 1,
                Err(err) => {
                    tracing::warn!(key_id = %key.key_id, error = %err, "automatic rotation failed; will retry")
                }
            }
        }
        self.reseal_pass(survey.stale).await;
        (purged, rotated)
    }

    /// Reads every key, a page at a time, and keeps only what the pass acts on: memory stays
    /// bounded by a page and the keys picked, whatever the number of keys.
    fn survey_keys(&self, now: UnixMillis) -> KmsResult<Survey> {
        let mut survey = Survey {
            deletion_due: false,
            material_expired: false,
            due_for_rotation: Vec::new(),
            stale: StaleMaterial::new(self.root_keys.active_id()),
        };
        Keys::new(&self.region.reader()).for_each_key(|key| {
            survey.deletion_due |= key.is_due_for_deletion(now);
            survey.material_expired |= key.is_material_expired(now);
            survey.stale.note(&key);
            // A multi-Region key rotates in its primary's region; replicas receive the material.
            let rotates_here =
                key.multi_region_config.as_ref().is_none_or(|c| c.is_primary(&self.scope.region));
            if rotates_here && key.is_due_for_rotation(now) {
                survey.due_for_rotation.push(key);
            }
        })?;
        Ok(survey)
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

/// What one maintenance pass acts on.
struct Survey {
    /// Some key's deletion date passed.
    deletion_due: bool,
    /// Some key's imported material expired.
    material_expired: bool,
    due_for_rotation: Vec<KeyRecord>,
    stale: StaleMaterial,
}
