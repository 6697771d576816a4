//! An optional cache of data keys for envelope encryption, with the limits of the AWS
//! Encryption SDK's caching materials manager: a cached data key is used for at most
//! `max_age`, at most `max_messages` messages and at most `max_bytes` bytes of plaintext in
//! total, and is wiped from memory when it is evicted.
//!
//! Caching trades isolation for fewer KMS calls: every message encrypted with one cached data
//! key is exposed if that key leaks, and a key's policy or alias change is only seen after
//! `max_age`. Reusing a data key is cryptographically safe in this format (every message
//! derives its own content key from a random message id), so the limits are about blast radius
//! and KMS's audit trail, not about AES-GCM.
//!
//! Entries are keyed by the requested key id (as given: key id, ARN or alias) and the whole
//! encryption context. The cache is used only for messages whose plaintext length is declared
//! up front ([`EncryptOptions::with_plaintext_length`](crate::envelope::EncryptOptions::with_plaintext_length)),
//! so the byte limit holds before any byte is encrypted; an encryption that runs past its declared
//! length fails.
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! use kms_client::cache::{CacheLimits, DataKeyCache};
//! use kms_client::envelope::EncryptOptions;
//!
//! let limits = CacheLimits::new(Duration::from_secs(300)).with_max_messages(1000).with_max_bytes(1 << 30);
//! let cache = Arc::new(DataKeyCache::new(16, limits));
//! let options = EncryptOptions::new("alias/app").with_cache(cache).with_plaintext_length(4096);
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::envelope::{DataKey, EncryptionContext};

/// How long and how much one cached data key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Age (from the GenerateDataKey call) after which an entry is no longer used.
    pub max_age: Duration,
    /// Messages one data key may encrypt, the first included.
    pub max_messages: u64,
    /// Plaintext bytes one data key may encrypt in total, over all its messages.
    pub max_bytes: u64,
}

impl CacheLimits {
    /// The AWS Encryption SDK's default message limit (2^32).
    pub const DEFAULT_MAX_MESSAGES: u64 = 1 << 32;

    /// Limits with the given maximum age, 2^32 messages and no byte limit.
    pub fn new(max_age: Duration) -> Self {
        Self { max_age, max_messages: Self::DEFAULT_MAX_MESSAGES, max_bytes: u64::MAX }
    }

    /// Sets the message limit.
    #[must_use]
    pub fn with_max_messages(mut self, max_messages: u64) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// Sets the byte limit.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// Counters of a cache's use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Messages that took a cached data key.
    pub hits: u64,
    /// Messages that needed a GenerateDataKey call.
    pub misses: u64,
    /// Entries dropped (and wiped) because a limit was reached or room was needed.
    pub evictions: u64,
}

/// A bounded cache of data keys, shared by concurrent encryptions (wrap it in an `Arc`).
pub struct DataKeyCache {
    limits: CacheLimits,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, EncryptionContext), Entry>,
    stats: CacheStats,
}

/// One cached data key. Its plaintext is a `Zeroizing` buffer: removing the entry from the map
/// (eviction, `clear`, dropping the cache) wipes it.
struct Entry {
    key: DataKey,
    created: Instant,
    last_used: Instant,
    messages: u64,
    bytes: u64,
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("limits", &self.limits)
            .field("capacity", &self.capacity)
            .field("entries", &self.len())
            .finish()
    }
}

impl DataKeyCache {
    /// A cache of at most `capacity` data keys (least recently used evicted first).
    pub fn new(capacity: usize, limits: CacheLimits) -> Self {
        Self { limits, capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The limits every entry is held to.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Number of cached data keys (some may have expired and not been evicted yet).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds no data key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicts (and wipes) every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        let evicted = inner.entries.len() as u64;
        inner.entries.clear();
        inner.stats.evictions += evicted;
    }

    /// Hits, misses and evictions so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    /// A cached data key for a message of `bytes` plaintext bytes, counting the message against
    /// the entry's limits; `None` (a miss) if there is none that may take this message.
    pub(crate) fn get(&self, key_id: &str, context: &EncryptionContext, bytes: u64) -> Option<DataKey> {
        self.get_at(key_id, context, bytes, Instant::now())
    }

    /// Caches a data key that was just generated for a message of `bytes` bytes (counted as
    /// its first message), if it may serve another one.
    pub(crate) fn put(&self, key_id: &str, context: &EncryptionContext, key: &DataKey, bytes: u64) {
        self.put_at(key_id, context, key, bytes, Instant::now());
    }

    fn get_at(&self, key_id: &str, context: &EncryptionContext, bytes: u64, now: Instant) -> Option<DataKey> {
        let limits = self.limits;
        let mut inner = self.lock();
        if bytes > limits.max_bytes {
            // No key could take this message; the entries stay for smaller ones.
            inner.stats.misses += 1;
            return None;
        }
        let map_key = (key_id.to_string(), context.clone());
        let usable = inner.entries.get(&map_key).map(|entry| {
            !entry.expired(limits, now)
                && entry.messages < limits.max_messages
                && entry.bytes.saturating_add(bytes) <= limits.max_bytes
        });
        match usable {
            Some(true) => {
                inner.stats.hits += 1;
                let entry = inner.entries.get_mut(&map_key)?;
                entry.messages += 1;
                entry.bytes = entry.bytes.saturating_add(bytes);
                entry.last_used = now;
                Some(entry.key.clone())
            }
            Some(false) => {
                // Spent or too old: it can serve no later message either.
                inner.entries.remove(&map_key);
                inner.stats.evictions += 1;
                inner.stats.misses += 1;
                None
            }
            None => {
                inner.stats.misses += 1;
                None
            }
        }
    }

    fn put_at(&self, key_id: &str, context: &EncryptionContext, key: &DataKey, bytes: u64, now: Instant) {
        let limits = self.limits;
        let could_serve_another = self.capacity > 0
            && limits.max_messages > 1
            && bytes < limits.max_bytes
            && limits.max_age > Duration::ZERO;
        if !could_serve_another {
            return;
        }
        let mut inner = self.lock();
        inner.evict_expired(limits, now);
        if inner.entries.len() >= self.capacity {
            inner.evict_least_recently_used();
        }
        let entry = Entry { key: key.clone(), created: now, last_used: now, messages: 1, bytes };
        // Two encryptions that missed at once both generate a key; the later one is kept.
        inner.entries.insert((key_id.to_string(), context.clone()), entry);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves at worst a counter not incremented; the map
        // itself is never left half-updated, so the cache stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entry {
    fn expired(&self, limits: CacheLimits, now: Instant) -> bool {
        now.saturating_duration_since(self.created) >= limits.max_age
    }
}

impl Inner {
    fn evict_expired(&mut self, limits: CacheLimits, now: Instant) {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !entry.expired(limits, now));
        self.stats.evictions += (before - self.entries.len()) as u64;
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self.entries.iter().min_by_key(|(_, entry)| entry.last_used).map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.entries.remove(&key);
            self.stats.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn data_key(byte: u8) -> DataKey {
        DataKey {
            plaintext: Zeroizing::new(vec![byte; 32]),
            ciphertext_blob: vec![byte; 8],
            key_id: "arn:aws:kms:dev-1:000000000000:key/k".into(),
        }
    }

    fn context(app: &str) -> EncryptionContext {
        [("app", app)].into_iter().collect()
    }

    fn cache(limits: CacheLimits) -> DataKeyCache {
        DataKeyCache::new(8, limits)
    }

    #[test]
    fn a_stored_key_is_returned_for_the_same_key_id_and_context_only() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)));
        let now = Instant::now();
        assert!(cache.get_at("k", &context("a"), 10, now).is_none());
        cache.put_at("k", &context("a"), &data_key(1), 10, now);
        let hit = cache.get_at("k", &context("a"), 10, now).unwrap();
        assert_eq!(*hit.plaintext, vec![1; 32]);
        assert!(cache.get_at("k", &context("b"), 10, now).is_none(), "another context");
        assert!(cache.get_at("alias/k", &context("a"), 10, now).is_none(), "another key id");
        assert!(cache.get_at("k", &EncryptionContext::new(), 10, now).is_none(), "no context");
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 4, evictions: 0 });
    }

    #[test]
    fn max_age_expires_an_entry() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)));
        let t0 = Instant::now();
        cache.put_at("k", &context("a"), &data_key(1), 1, t0);
        assert!(cache.get_at("k", &context("a"), 1, t0 + Duration::from_secs(59)).is_some());
        assert!(cache.get_at("k", &context("a"), 1, t0 + Duration::from_secs(60)).is_none());
        assert!(cache.is_empty(), "the expired entry is evicted");
        assert_eq!(cache.stats().evictions, 1);
    }

    #[test]
    fn max_messages_counts_the_first_message() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)).with_max_messages(3));
        let now = Instant::now();
        cache.put_at("k", &context("a"), &data_key(1), 1, now); // message 1
        assert!(cache.get_at("k", &context("a"), 1, now).is_some()); // message 2
        assert!(cache.get_at("k", &context("a"), 1, now).is_some()); // message 3
        assert!(cache.get_at("k", &context("a"), 1, now).is_none(), "a 4th message needs a new key");
        assert!(cache.is_empty());
    }

    #[test]
    fn max_messages_of_one_never_caches() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)).with_max_messages(1));
        cache.put_at("k", &context("a"), &data_key(1), 1, Instant::now());
        assert!(cache.is_empty());
    }

    #[test]
    fn max_bytes_counts_every_message_and_refuses_one_that_would_cross_it() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)).with_max_bytes(100));
        let now = Instant::now();
        cache.put_at("k", &context("a"), &data_key(1), 40, now);
        assert!(cache.get_at("k", &context("a"), 50, now).is_some(), "90 of 100 bytes");
        assert!(cache.get_at("k", &context("a"), 11, now).is_none(), "101 bytes would cross the limit");
        assert!(cache.is_empty());
        // A message larger than the limit bypasses the cache entirely.
        cache.put_at("k", &context("a"), &data_key(2), 100, now);
        assert!(cache.is_empty(), "a key that used up its bytes at once is not stored");
        cache.put_at("k", &context("a"), &data_key(2), 10, now);
        assert!(cache.get_at("k", &context("a"), 101, now).is_none());
        assert_eq!(cache.len(), 1, "a bypassing message leaves the entry for others");
        assert!(cache.get_at("k", &context("a"), 90, now).is_some(), "exactly the limit");
    }

    #[test]
    fn capacity_evicts_the_least_recently_used_entry() {
        let cache = DataKeyCache::new(2, CacheLimits::new(Duration::from_secs(60)));
        let t0 = Instant::now();
        cache.put_at("k", &context("a"), &data_key(1), 1, t0);
        cache.put_at("k", &context("b"), &data_key(2), 1, t0 + Duration::from_millis(1));
        assert!(cache.get_at("k", &context("a"), 1, t0 + Duration::from_millis(2)).is_some());
        cache.put_at("k", &context("c"), &data_key(3), 1, t0 + Duration::from_millis(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get_at("k", &context("b"), 1, t0 + Duration::from_millis(4)).is_none(), "b was LRU");
        assert!(cache.get_at("k", &context("a"), 1, t0 + Duration::from_millis(4)).is_some());
        assert!(cache.get_at("k", &context("c"), 1, t0 + Duration::from_millis(4)).is_some());
    }

    #[test]
    fn clear_evicts_everything() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)));
        cache.put_at("k", &context("a"), &data_key(1), 1, Instant::now());
        cache.put_at("k", &context("b"), &data_key(2), 1, Instant::now());
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.stats().evictions, 2);
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let cache = cache(CacheLimits::new(Duration::from_secs(60)));
        cache.put_at("k", &context("a"), &data_key(0xAB), 1, Instant::now());
        let shown = format!("{cache:?} {:?}", data_key(0xAB));
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("abab"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
