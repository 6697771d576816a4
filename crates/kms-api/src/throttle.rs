//! Per-principal request rate limits, AWS style: every authenticated principal has its own token
//! bucket for each operation family (cryptographic operations, management reads, management
//! writes), and a request beyond its bucket is refused with ThrottlingException before it reaches
//! the operation.
//!
//! The buckets are `governor`'s keyed GCRA limiters: one atomic state per (principal, family), no
//! lock held across an await, O(1) per request. Memory is bounded: a principal whose bucket has
//! refilled is indistinguishable from one never seen, so idle principals are forgotten (at most
//! one sweep per [`SWEEP_INTERVAL`], when the number tracked reaches the cap); if the cap is still
//! reached after a sweep, every principal is forgotten (a fresh burst for all: memory stays
//! bounded, and that only happens when more principals than the cap are busy at once).

use crate::caller::Caller;
use crate::kms::Kms;
use crate::metrics::Api;
use governor::clock::{Clock, DefaultClock, Reference as _};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use kms_core::{KmsError, KmsResult};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

/// How often, at most, idle principals are looked for (the sweep walks every bucket).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The families AWS KMS sets its request quotas by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Encrypt, Decrypt, GenerateDataKey*, Sign, ...: AWS's shared "cryptographic operations" quota.
    Cryptographic,
    /// Describe*, Get*, List*.
    ManagementRead,
    /// Everything else: creating, changing and deleting keys, aliases, grants, policies, tags.
    ManagementWrite,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Cryptographic, Family::ManagementRead, Family::ManagementWrite];

    /// The family of an operation, by its AWS name.
    pub fn of(operation: &str) -> Family {
        const CRYPTOGRAPHIC: &[&str] = &[
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "GenerateRandom",
            "GenerateMac",
            "VerifyMac",
            "Sign",
            "Verify",
            "DeriveSharedSecret",
        ];
        if CRYPTOGRAPHIC.contains(&operation) {
            Family::Cryptographic
        } else if ["Describe", "Get", "List"].iter().any(|prefix| operation.starts_with(prefix)) {
            Family::ManagementRead
        } else {
            Family::ManagementWrite
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Cryptographic => "cryptographic",
            Family::ManagementRead => "management read",
            Family::ManagementWrite => "management write",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One family's limit: a bucket of `burst` requests refilled at `per_second`. `per_second = 0`
/// turns the family's limit off; `burst = 0` means one second's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(per_second);
        let period = Duration::from_secs(1) / per_second.get();
        // `period` is at least 1 ns for any u32 rate, which is all `with_period` asks.
        Quota::with_period(period).map(|quota| quota.allow_burst(burst))
    }
}

/// The limits of a node. The defaults follow AWS KMS's default quotas per account and Region
/// (cryptographic operations share 5,500/s; DescribeKey and GetPublicKey allow 2,000/s, the List
/// operations 100/s; most writes 5 to 50/s), rounded so that scripted administration still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub cryptographic: Rate,
    pub management_read: Rate,
    pub management_write: Rate,
    /// The most principals tracked at once (per family).
    pub max_principals: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            cryptographic: Rate { per_second: 5500, burst: 5500 },
            management_read: Rate { per_second: 1000, burst: 1000 },
            management_write: Rate { per_second: 100, burst: 200 },
            max_principals: 100_000,
        }
    }
}

impl RateLimits {
    fn rate(&self, family: Family) -> Rate {
        match family {
            Family::Cryptographic => self.cryptographic,
            Family::ManagementRead => self.management_read,
            Family::ManagementWrite => self.management_write,
        }
    }
}

type Buckets<C> = RateLimiter<
    String,
    DashMapStateStore<String>,
    C,
    governor::middleware::NoOpMiddleware<<C as Clock>::Instant>,
>;

/// One family's buckets, keyed by principal.
struct FamilyLimiter<C: Clock> {
    rate: Rate,
    quota: Quota,
    /// Replaced whole (under the write lock) only when too many principals are busy at once.
    buckets: RwLock<Buckets<C>>,
    /// When idle principals were last looked for (`try_lock`: one sweeper, nobody waits).
    last_sweep: Mutex<Option<C::Instant>>,
}

/// The limiter of a node, shared by every front end.
pub struct Throttle<C: Clock = DefaultClock> {
    families: [Option<FamilyLimiter<C>>; 3],
    max_principals: usize,
    clock: C,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("max_principals", &self.max_principals).finish_non_exhaustive()
    }
}

/// A refused request: which limit, and when the principal may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub family: Family,
    pub rate: Rate,
    pub retry_after: Duration,
}

impl From<Throttled> for KmsError {
    fn from(t: Throttled) -> Self {
        KmsError::throttling(format!(
            "You have exceeded the rate at which you may call KMS: {} operations are limited to {} \
             requests per second per principal (bursts of {}). Retry after {} ms.",
            t.family.as_str(),
            t.rate.per_second,
            NonZeroU32::new(t.rate.burst).map_or(t.rate.per_second, NonZeroU32::get),
            t.retry_after.as_millis().max(1),
        ))
    }
}

impl Throttle<DefaultClock> {
    pub fn new(limits: RateLimits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttle<C> {
    /// A limiter reading time from `clock` (tests move a fake clock forward).
    pub fn with_clock(limits: RateLimits, clock: C) -> Self {
        let families = Family::ALL.map(|family| {
            let rate = limits.rate(family);
            rate.quota().map(|quota| FamilyLimiter {
                rate,
                quota,
                buckets: RwLock::new(RateLimiter::new(quota, DashMapStateStore::default(), clock.clone())),
                last_sweep: Mutex::new(None),
            })
        });
        Self { families, max_principals: limits.max_principals.max(1), clock }
    }

    /// Takes one request of `operation` from `principal`'s bucket, or says when to retry.
    pub fn check(&self, principal: &str, operation: &str) -> Result<(), Throttled> {
        let family = Family::of(operation);
        let Some(limiter) = &self.families[family.index()] else { return Ok(()) };
        if limiter.read().len() >= self.max_principals {
            self.make_room(limiter);
        }
        limiter.read().check_key(&principal.to_string()).map_err(|not_until| Throttled {
            family,
            rate: limiter.rate,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Forgets idle principals (at most once per [`SWEEP_INTERVAL`]); all of them if the cap is
    /// still reached, so memory stays bounded whatever the principals do.
    fn make_room(&self, limiter: &FamilyLimiter<C>) {
        let Ok(mut last_sweep) = limiter.last_sweep.try_lock() else { return };
        let now = self.clock.now();
        if last_sweep.is_some_and(|last| now.duration_since(last) < SWEEP_INTERVAL.into()) {
            return;
        }
        *last_sweep = Some(now);
        let buckets = limiter.read();
        buckets.retain_recent();
        buckets.shrink_to_fit();
        if buckets.len() < self.max_principals {
            return;
        }
        drop(buckets);
        tracing::warn!(
            max_principals = self.max_principals,
            "more principals than the rate limiter tracks are busy at once; their buckets start afresh"
        );
        let fresh = RateLimiter::new(limiter.quota, DashMapStateStore::default(), self.clock.clone());
        *limiter.buckets.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    /// Principals tracked for `family` (for tests and diagnostics).
    pub fn tracked(&self, family: Family) -> usize {
        self.families[family.index()].as_ref().map_or(0, |l| l.read().len())
    }
}

impl<C: Clock> FamilyLimiter<C> {
    /// The buckets. A panic while they were held cannot leave them inconsistent (their state is
    /// atomic), so a poisoned lock is used as is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Buckets<C>> {
        self.buckets.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kms {
    /// Limits every principal's request rate with `throttle` (see [`Kms::admit`]).
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(std::sync::Arc::new(throttle));
        self
    }

    /// Admits one request of `operation` from the authenticated `caller`, or refuses it with
    /// ThrottlingException: audited and counted like any refusal, before the operation runs.
    pub fn admit(&self, api: Api, operation: &str, caller: &Caller) -> KmsResult<()> {
        let Some(throttle) = &self.throttle else { return Ok(()) };
        throttle.check(&caller.principal, operation).map_err(|throttled| {
            let err = KmsError::from(throttled);
            self.audit_refused(api, operation, caller, err.kind.name());
            if let Some(metrics) = crate::metrics::installed() {
                metrics.record_throttled(api, operation);
            }
            err
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        let rate = Rate { per_second, burst };
        RateLimits { cryptographic: rate, management_read: rate, management_write: rate, max_principals: 4 }
    }

    #[test]
    fn operations_fall_into_aws_families() {
        assert_eq!(Family::of("Encrypt"), Family::Cryptographic);
        assert_eq!(Family::of("GenerateDataKeyPairWithoutPlaintext"), Family::Cryptographic);
        assert_eq!(Family::of("DescribeKey"), Family::ManagementRead);
        assert_eq!(Family::of("ListAliases"), Family::ManagementRead);
        assert_eq!(Family::of("GetPublicKey"), Family::ManagementRead);
        assert_eq!(Family::of("CreateKey"), Family::ManagementWrite);
        assert_eq!(Family::of("NoSuchOperation"), Family::ManagementWrite);
    }

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_bucket_refills() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(limits(10, 3), clock.clone());
        for _ in 0..3 {
            throttle.check("alice", "Encrypt").unwrap();
        }
        let refused = throttle.check("alice", "Encrypt").unwrap_err();
        assert_eq!(refused.family, Family::Cryptographic);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        let err = KmsError::from(refused);
        assert_eq!(err.kind, kms_core::ErrorKind::ThrottlingException);
        assert!(err.message.contains("10 requests per second"), "{}", err.message);
        assert!(err.message.contains("Retry after 100 ms"), "{}", err.message);

        clock.advance(Duration::from_millis(100));
        throttle.check("alice", "Encrypt").unwrap();
        throttle.check("alice", "Encrypt").unwrap_err();
        clock.advance(Duration::from_secs(1));
        for _ in 0..3 {
            throttle.check("alice", "Encrypt").unwrap();
        }
    }

    #[test]
    fn principals_and_families_have_their_own_buckets() {
        let throttle = Throttle::with_clock(limits(1, 1), FakeRelativeClock::default());
        throttle.check("alice", "Encrypt").unwrap();
        throttle.check("alice", "Decrypt").unwrap_err();
        throttle.check("bob", "Encrypt").unwrap();
        throttle.check("alice", "DescribeKey").unwrap();
        throttle.check("alice", "CreateKey").unwrap();
        throttle.check("alice", "ListKeys").unwrap_err();
    }

    #[test]
    fn a_zero_rate_turns_the_family_off() {
        let mut limits = limits(1, 1);
        limits.cryptographic.per_second = 0;
        let throttle = Throttle::with_clock(limits, FakeRelativeClock::default());
        for _ in 0..100 {
            throttle.check("alice", "Encrypt").unwrap();
        }
        assert_eq!(throttle.tracked(Family::Cryptographic), 0);
        throttle.check("alice", "CreateKey").unwrap();
        throttle.check("alice", "CreateKey").unwrap_err();
    }

    #[test]
    fn idle_principals_are_forgotten_and_the_count_stays_bounded() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(limits(10, 1), clock.clone());
        for i in 0..4 {
            throttle.check(&format!("p{i}"), "Encrypt").unwrap();
        }
        assert_eq!(throttle.tracked(Family::Cryptographic), 4);
        // Refilled buckets are idle: the next newcomer sweeps them away.
        clock.advance(Duration::from_secs(2));
        throttle.check("newcomer", "Encrypt").unwrap();
        assert_eq!(throttle.tracked(Family::Cryptographic), 1);

        // Busy principals beyond the cap: memory stays bounded (at most one sweep per second,
        // so the cap may be passed by what arrives within that second).
        for round in 0..5u32 {
            clock.advance(SWEEP_INTERVAL);
            for i in 0..8 {
                let _ = throttle.check(&format!("busy{round}-{i}"), "Encrypt");
            }
            assert!(throttle.tracked(Family::Cryptographic) <= 4 + 8, "round {round}");
        }
        // A principal forgotten while idle is still limited from then on.
        throttle.check("late", "Encrypt").unwrap();
        throttle.check("late", "Encrypt").unwrap_err();
    }

    #[test]
    fn too_many_busy_principals_start_afresh_rather_than_grow_without_bound() {
        let throttle = Throttle::with_clock(limits(1, 1), FakeRelativeClock::default());
        for i in 0..4 {
            throttle.check(&format!("p{i}"), "Encrypt").unwrap();
        }
        // All four are busy (their buckets refill in a second): the sweep frees nothing.
        throttle.check("p4", "Encrypt").unwrap();
        assert_eq!(throttle.tracked(Family::Cryptographic), 1);
    }
}
