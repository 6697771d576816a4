//! Which failures are retried, and how long to wait: pure functions over a call's outcome, so
//! the rules are tested without a server.

use std::time::Duration;
use tonic::Code;

/// Whether repeating an operation that may already have run is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Running it twice ends in the same state as once (reads, cryptographic operations, setting
    /// a value): retried on every retriable failure, including those with an unknown outcome.
    Idempotent,
    /// Running it twice could do something twice or answer differently (CreateKey without a
    /// token, RotateKeyOnDemand, CreateGrant without a name, ...): retried only when the request
    /// certainly did not run (it never reached a server, or was throttled before it ran).
    Unsafe,
}

/// What a failed attempt means for retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request never reached a server (no connection: refused, unreachable, TLS handshake
    /// failed). Another node may do better; nothing ran.
    NotSent,
    /// Refused before it ran (`ThrottlingException`, or the server's HTTP/2 layer shedding
    /// load). Nothing ran; back off and ask again.
    Throttled,
    /// The node or the region is in trouble and the outcome is unknown: UNAVAILABLE
    /// (`DependencyTimeoutException`, `KeyUnavailableException`, a connection that broke during
    /// the call), `KMSInternalException`, a deadline that passed. A write may have committed.
    Transient,
    /// A definitive answer (validation, access, not found, key state, ...): asking again gives
    /// the same answer.
    Final,
}

/// AWS exception names (the `x-kms-exception` metadata) that are worth another attempt.
const TRANSIENT_EXCEPTIONS: &[&str] =
    &["DependencyTimeoutException", "KeyUnavailableException", "KMSInternalException"];
const THROTTLING_EXCEPTION: &str = "ThrottlingException";

/// Classifies a failed call. `exception` is the AWS exception name the server attached, if any;
/// `never_connected` whether the transport never had a connection for it (tonic's
/// `ConnectError` in the status's sources).
///
/// The exception name decides when present, not the gRPC code: RESOURCE_EXHAUSTED is both
/// `ThrottlingException` (retriable) and `LimitExceededException` (final), and every error of
/// the KMS itself carries a name. Without a name the status came from the transport or the
/// gRPC layer, and only the codes of a broken or overloaded connection are retried.
pub fn classify(code: Code, exception: Option<&str>, never_connected: bool) -> Failure {
    if never_connected {
        return Failure::NotSent;
    }
    match exception {
        Some(THROTTLING_EXCEPTION) => Failure::Throttled,
        Some(name) if TRANSIENT_EXCEPTIONS.contains(&name) => Failure::Transient,
        Some(_) => Failure::Final,
        None => match code {
            Code::ResourceExhausted => Failure::Throttled,
            // A reset stream or closed connection surfaces as UNKNOWN or INTERNAL (h2), a
            // server-side deadline as CANCELLED ("Timeout expired").
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled | Code::DeadlineExceeded => {
                Failure::Transient
            }
            _ => Failure::Final,
        },
    }
}

impl Failure {
    /// Whether an operation of `idempotency` may be sent again after this failure.
    pub fn may_retry(self, idempotency: Idempotency) -> bool {
        match self {
            Failure::NotSent | Failure::Throttled => true,
            Failure::Transient => idempotency == Idempotency::Idempotent,
            Failure::Final => false,
        }
    }

    /// Whether the failure says something about the node that answered (so the next attempt
    /// goes to another node), rather than about the caller's request rate.
    pub fn blames_node(self) -> bool {
        matches!(self, Failure::NotSent | Failure::Transient)
    }
}

/// How many times, and how patiently, a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles with every further retry.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
}

/// The defaults ride out a leader election: while a region has no leader its nodes refuse
/// writes at once, so a round over three nodes takes milliseconds and the waits between rounds
/// (about 0.05, 0.1, 0.2, 0.4, 0.8, 1 s on average) must add up to more than an election
/// (seconds). The call's deadline, not the attempt count, is meant to be the usual limit.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 25,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the wait before retry number `retry` (1 for the first retry):
    /// `min(max_backoff, initial_backoff * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }

    /// "Full jitter": a wait uniform in `[0, ceiling(retry)]`, from the random value `random`.
    /// Spreading retries over the whole interval keeps clients that failed together from
    /// retrying together.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(random % ceiling.saturating_add(1))
    }
}

/// A random value for [`RetryPolicy::backoff`] (the OS generator, through a v4 UUID).
pub fn random_u64() -> u64 {
    // Truncation keeps 64 of the UUID's 122 random bits.
    uuid::Uuid::new_v4().as_u128() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_names_decide_over_codes() {
        let named = |code, name| classify(code, Some(name), false);
        assert_eq!(named(Code::ResourceExhausted, "ThrottlingException"), Failure::Throttled);
        assert_eq!(named(Code::ResourceExhausted, "LimitExceededException"), Failure::Final);
        assert_eq!(named(Code::Unavailable, "DependencyTimeoutException"), Failure::Transient);
        assert_eq!(named(Code::Unavailable, "KeyUnavailableException"), Failure::Transient);
        assert_eq!(named(Code::Internal, "KMSInternalException"), Failure::Transient);
        for name in [
            "ValidationException",
            "AccessDeniedException",
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
            "InvalidCiphertextException",
            "UnrecognizedClientException",
        ] {
            assert_eq!(named(Code::InvalidArgument, name), Failure::Final, "{name}");
        }
    }

    #[test]
    fn unnamed_statuses_are_retried_only_for_broken_or_overloaded_connections() {
        let bare = |code| classify(code, None, false);
        for code in
            [Code::Unavailable, Code::Unknown, Code::Internal, Code::Cancelled, Code::DeadlineExceeded]
        {
            assert_eq!(bare(code), Failure::Transient, "{code:?}");
        }
        assert_eq!(bare(Code::ResourceExhausted), Failure::Throttled);
        for code in
            [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented]
        {
            assert_eq!(bare(code), Failure::Final, "{code:?}");
        }
        assert_eq!(classify(Code::Unavailable, None, true), Failure::NotSent);
    }

    #[test]
    fn unsafe_operations_are_retried_only_when_nothing_ran() {
        use Idempotency::*;
        let table = [
            (Failure::NotSent, true, true),
            (Failure::Throttled, true, true),
            (Failure::Transient, true, false),
            (Failure::Final, false, false),
        ];
        for (failure, idempotent, unsafe_) in table {
            assert_eq!(failure.may_retry(Idempotent), idempotent, "{failure:?}");
            assert_eq!(failure.may_retry(Unsafe), unsafe_, "{failure:?}");
        }
        assert!(Failure::Transient.blames_node() && Failure::NotSent.blames_node());
        assert!(!Failure::Throttled.blames_node() && !Failure::Final.blames_node());
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        let ceilings: Vec<u128> = (1..=6).map(|r| policy.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_millis(1000), "no overflow");
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let policy = RetryPolicy::default();
        let ceiling = policy.ceiling(3);
        assert_eq!(policy.backoff(3, 0), Duration::ZERO);
        let micros = u64::try_from(ceiling.as_micros()).unwrap();
        assert_eq!(policy.backoff(3, micros), ceiling);
        assert_eq!(policy.backoff(3, micros + 1), Duration::ZERO, "wraps, never beyond the ceiling");
        let waits: Vec<Duration> = (0..200).map(|_| policy.backoff(3, random_u64())).collect();
        assert!(waits.iter().all(|w| *w <= ceiling));
        assert!(waits.iter().any(|w| *w < ceiling / 2) && waits.iter().any(|w| *w > ceiling / 2), "spread");
    }
}
