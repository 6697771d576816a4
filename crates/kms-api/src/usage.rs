//! Last-use tracking for GetKeyLastUsage.
//!
//! A cryptographic call must not pay for a Raft round trip, so each node notes the last
//! successful use of each key in memory and replicates what it saw in one `RecordKeyUse`
//! command per maintenance tick. A crash loses at most one tick of observations, which only
//! makes a reported last use slightly older, never wrong about a use that did not happen.

use kms_core::key::UnixMillis;
use kms_core::state::KeyUse;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    pending: Mutex<HashMap<String, KeyUse>>,
}

impl UsageTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, KeyUse>> {
        // The map holds plain data that is valid after any panic; keep using it.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn record(&self, key_id: &str, operation: &str, at: UnixMillis) {
        let mut pending = self.lock();
        match pending.get_mut(key_id) {
            Some(existing) if existing.at > at => {}
            // Every cryptographic request lands here: update in place, allocating nothing when
            // the operation is the one already noted.
            Some(existing) => {
                existing.at = at;
                if existing.operation != operation {
                    existing.operation = operation.to_string();
                }
            }
            None => {
                let key_use = KeyUse { key_id: key_id.to_string(), operation: operation.to_string(), at };
                pending.insert(key_id.to_string(), key_use);
            }
        }
    }

    /// The use noted here and not replicated yet, if any.
    pub(crate) fn pending(&self, key_id: &str) -> Option<KeyUse> {
        self.lock().get(key_id).cloned()
    }

    /// Takes everything noted so far, for replication.
    pub(crate) fn take(&self) -> Vec<KeyUse> {
        self.lock().drain().map(|(_, key_use)| key_use).collect()
    }

    /// Puts back what could not be replicated, unless newer uses were noted meanwhile.
    pub(crate) fn restore(&self, uses: Vec<KeyUse>) {
        for key_use in uses {
            self.record(&key_use.key_id, &key_use.operation, key_use.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_use_per_key() {
        let tracker = UsageTracker::default();
        tracker.record("k1", "Encrypt", 10);
        tracker.record("k1", "Decrypt", 5);
        tracker.record("k2", "Sign", 7);
        assert_eq!(tracker.pending("k1").unwrap().operation, "Encrypt");
        let mut taken = tracker.take();
        taken.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        assert_eq!(taken.len(), 2);
        assert!(tracker.pending("k1").is_none());
        tracker.record("k1", "GenerateMac", 20);
        tracker.restore(taken);
        assert_eq!(tracker.pending("k1").unwrap().operation, "GenerateMac");
        assert_eq!(tracker.pending("k2").unwrap().operation, "Sign");
    }
}
