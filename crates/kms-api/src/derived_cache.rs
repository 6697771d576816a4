//! A bounded cache of values derived from stored state (a parsed key policy, unsealed key
//! material, a decoded key record), each valid only while what it came from is still current:
//! the stored bytes themselves, or the version of the whole state they were read at.
//!
//! Callers look an entry up with the bytes they just read from the state machine, or with the
//! state's version taken before a read: an entry made from other bytes (a new policy, material
//! re-sealed under a new root key, a re-import) or at another version is replaced, never used, so
//! the cache needs no invalidation hooks into the write path.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Values of type `V` found by `K`, each valid while its source (of type `S`) is the current one.
pub(crate) struct DerivedCache<K, V, S = Vec<u8>> {
    entries: Mutex<HashMap<K, Entry<V, S>>>,
    /// Beyond this many entries the cache starts over: a memory bound, not a working-set estimate.
    capacity: usize,
}

struct Entry<V, S> {
    source: S,
    value: Arc<V>,
    last_used: Instant,
}

impl<K: Hash + Eq, V, S> DerivedCache<K, V, S> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The value derived from `source` for `key`: the cached one if it was derived from this
    /// very source, else `derive()`'s, which is then cached. `derive` runs without the lock held,
    /// so two callers missing at once may both derive; the second insert wins.
    /// `key` and `source` are borrowed and only owned on insert, so a hit allocates nothing
    /// beyond what the caller spent building `key`.
    pub(crate) fn get_or_derive<Q, T, D, E>(
        &self,
        key: &Q,
        source: &T,
        derive: impl FnOnce() -> Result<D, E>,
    ) -> Result<Arc<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        S: Borrow<T>,
        T: PartialEq + ToOwned<Owned = S> + ?Sized,
        D: Into<Arc<V>>,
    {
        let now = Instant::now();
        if let Some(entry) = self.lock().get_mut(key)
            && entry.source.borrow() == source
        {
            entry.last_used = now;
            return Ok(entry.value.clone());
        }
        let value: Arc<V> = derive()?.into();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(
            key.to_owned(),
            Entry { source: source.to_owned(), value: value.clone(), last_used: now },
        );
        Ok(value)
    }

    /// Drops the entries unused for `idle` or longer.
    pub(crate) fn evict_idle(&self, idle: Duration) {
        let now = Instant::now();
        self.lock().retain(|_, entry| now.duration_since(entry.last_used) < idle);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V, S>>> {
        // A panic while holding the lock cannot leave an entry half-written (each is one insert
        // or one field store), so a poisoned map is still sound.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(calls: &mut u32, value: &'static str) -> Result<&'static str, ()> {
        *calls += 1;
        Ok(value)
    }

    #[test]
    fn an_entry_serves_only_the_bytes_it_came_from() {
        let cache = DerivedCache::<String, &str>::new(8);
        let mut calls = 0;
        assert_eq!(*cache.get_or_derive("k", b"one".as_slice(), || derive(&mut calls, "1")).unwrap(), "1");
        assert_eq!(*cache.get_or_derive("k", b"one".as_slice(), || derive(&mut calls, "x")).unwrap(), "1");
        assert_eq!(calls, 1);
        assert_eq!(*cache.get_or_derive("k", b"two".as_slice(), || derive(&mut calls, "2")).unwrap(), "2");
        assert_eq!(*cache.get_or_derive("k", b"two".as_slice(), || derive(&mut calls, "x")).unwrap(), "2");
        assert_eq!(calls, 2);
    }

    #[test]
    fn failures_are_not_cached_and_capacity_bounds_the_map() {
        let cache = DerivedCache::<String, &str>::new(2);
        assert!(cache.get_or_derive("k", b"s".as_slice(), || Err::<&str, _>("bad")).is_err());
        assert_eq!(cache.len(), 0);
        for key in ["a", "b", "c"] {
            cache.get_or_derive(key, b"s".as_slice(), || Ok::<_, ()>(key)).unwrap();
        }
        assert!(cache.len() <= 2);
    }

    #[test]
    fn an_entry_made_at_a_version_serves_only_that_version() {
        let cache = DerivedCache::<String, &str, u64>::new(8);
        let mut calls = 0;
        assert_eq!(*cache.get_or_derive("k", &7, || derive(&mut calls, "1")).unwrap(), "1");
        assert_eq!(*cache.get_or_derive("k", &7, || derive(&mut calls, "x")).unwrap(), "1");
        assert_eq!(*cache.get_or_derive("k", &8, || derive(&mut calls, "2")).unwrap(), "2");
        assert_eq!(calls, 2);
    }

    #[test]
    fn idle_entries_are_evicted() {
        let cache = DerivedCache::new(8);
        cache.get_or_derive("k", b"s".as_slice(), || Ok::<_, ()>(1)).unwrap();
        cache.evict_idle(Duration::from_secs(60));
        assert_eq!(cache.len(), 1);
        cache.evict_idle(Duration::ZERO);
        assert_eq!(cache.len(), 0);
    }
}
