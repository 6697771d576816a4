//! One logical call: the plan of regions, then attempts on nodes in [`round_order`], with
//! retries of retriable failures only, until an answer, a final error, the attempt limit or the
//! call's deadline.

use super::error::{Cause, Error, Stop, exception_of};
use super::nodes::round_order;
use super::operations::Operation;
use super::retry::{Failure, Idempotency, classify, random_u64};
use super::routing::{Plan, arn_in_region};
use super::{Client, Inner};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::Status;

/// Counts of a client's calls, attempts and retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls run (a management call on a multi-Region key may add a DescribeKey).
    pub calls: u64,
    pub attempts: u64,
    /// Retries after a request that never reached a server.
    pub retries_not_sent: u64,
    /// Retries after a ThrottlingException.
    pub retries_throttled: u64,
    /// Retries after a failure whose outcome was unknown (idempotent operations only).
    pub retries_unknown_outcome: u64,
    /// Regions skipped because they do not hold the key.
    pub regions_skipped: u64,
}

/// [`Stats`], updated by every call.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    retries_not_sent: AtomicU64,
    retries_throttled: AtomicU64,
    retries_unknown_outcome: AtomicU64,
    regions_skipped: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            calls: read(&self.calls),
            attempts: read(&self.attempts),
            retries_not_sent: read(&self.retries_not_sent),
            retries_throttled: read(&self.retries_throttled),
            retries_unknown_outcome: read(&self.retries_unknown_outcome),
            regions_skipped: read(&self.regions_skipped),
        }
    }

    fn retry(&self, failure: Failure) {
        let counter = match failure {
            Failure::NotSent => &self.retries_not_sent,
            Failure::Throttled => &self.retries_throttled,
            Failure::Transient => &self.retries_unknown_outcome,
            Failure::Final => &self.regions_skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The state of one call across its attempts.
struct Call<'a> {
    inner: &'a Inner,
    operation: &'static str,
    idempotency: Idempotency,
    /// Region indices in the order of the plan.
    regions: Vec<usize>,
    failover: bool,
    deadline: Instant,
    attempts: u32,
    /// Waits so far, for the backoff's growth.
    waits: u32,
    /// The rest of the current round.
    queue: VecDeque<(usize, usize)>,
    /// Failover regions that answered that they do not hold the key.
    excluded: Vec<usize>,
}

/// How one attempt failed.
enum Attempted {
    Status(Status),
    TimedOut(Duration),
}

impl Attempted {
    fn failure(&self) -> Failure {
        match self {
            Attempted::Status(status) => {
                classify(status.code(), exception_of(status), never_connected(status))
            }
            Attempted::TimedOut(_) => Failure::Transient,
        }
    }

    fn into_cause(self) -> Cause {
        match self {
            Attempted::Status(status) => Cause::Status(status),
            Attempted::TimedOut(after) => Cause::TimedOut(after),
        }
    }
}

/// Whether the transport failed before it had a connection for the request (tonic reports this
/// as a `ConnectError` among the status's sources).
fn never_connected(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Then {
    /// Wait, then ask the same node again.
    SameNode,
    /// Go on to the next node of the round.
    OtherNode,
    /// Skip the rest of this region (a failover region without the key).
    SkipRegion,
    Stop(Stop),
}

impl Client {
    /// Runs `request` according to `plan`, retrying and failing over; `idempotency` decides
    /// which failures are retried.
    pub(crate) async fn run_call<O: Operation>(
        &self,
        request: &O,
        plan: &Plan,
        idempotency: Idempotency,
        timeout: Duration,
    ) -> Result<O::Response, Error> {
        let inner = &*self.inner;
        let regions =
            plan.regions.iter().filter_map(|name| inner.regions.iter().position(|r| &r.name == name));
        let mut call = Call {
            inner,
            operation: O::NAME,
            idempotency,
            regions: regions.collect(),
            failover: plan.failover,
            deadline: Instant::now() + timeout,
            attempts: 0,
            waits: 0,
            queue: VecDeque::new(),
            excluded: Vec::new(),
        };
        call.run(request).await
    }
}

impl Call<'_> {
    async fn run<O: Operation>(&mut self, request: &O) -> Result<O::Response, Error> {
        let counters = &self.inner.counters;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        loop {
            let (region, node) = self.next_target().await?;
            self.attempts += 1;
            counters.attempts.fetch_add(1, Ordering::Relaxed);
            let failed = match self.attempt(region, node, request).await {
                Ok(response) => {
                    self.inner.regions[region].succeeded(node);
                    return Ok(response);
                }
                Err(failed) => failed,
            };
            let failure = failed.failure();
            if failure.blames_node() {
                self.inner.regions[region].failed(node, Instant::now(), self.inner.settings.cooldown);
            }
            let exception = match &failed {
                Attempted::Status(status) => exception_of(status),
                Attempted::TimedOut(_) => None,
            };
            let then = self.after(failure, region, exception);
            if !matches!(then, Then::Stop(_)) {
                counters.retry(failure);
            }
            match then {
                Then::Stop(stop) => return Err(self.error(failed.into_cause(), region, node, stop)),
                Then::SameNode => {
                    self.wait().await;
                    self.queue.push_front((region, node));
                }
                Then::OtherNode => {}
                Then::SkipRegion => {
                    self.excluded.push(region);
                    self.queue.retain(|(r, _)| *r != region);
                }
            }
            if Instant::now() >= self.deadline {
                return Err(self.error(failed.into_cause(), region, node, Stop::Deadline));
            }
        }
    }

    fn after(&self, failure: Failure, region: usize, exception: Option<&str>) -> Then {
        let in_failover_region = self.failover && self.regions.first() != Some(&region);
        if failure == Failure::Final {
            return match exception {
                Some("NotFoundException") if in_failover_region => Then::SkipRegion,
                _ => Then::Stop(Stop::Final),
            };
        }
        if !failure.may_retry(self.idempotency) {
            return Then::Stop(Stop::NotIdempotent);
        }
        if self.attempts >= self.inner.settings.retry.max_attempts {
            return Then::Stop(Stop::Attempts);
        }
        if failure.blames_node() { Then::OtherNode } else { Then::SameNode }
    }

    /// The next node to try; a new round (after a backoff) when the current one is exhausted.
    async fn next_target(&mut self) -> Result<(usize, usize), Error> {
        if let Some(target) = self.queue.pop_front() {
            return Ok(target);
        }
        if self.attempts > 0 {
            self.wait().await;
        }
        let regions: Vec<_> = self
            .regions
            .iter()
            .filter(|r| !self.excluded.contains(r))
            .map(|&r| {
                let (preferred, healths) = self.inner.regions[r].view();
                (r, preferred, healths)
            })
            .collect();
        self.queue = round_order(&regions, Instant::now()).into();
        self.queue.pop_front().ok_or_else(|| {
            Error::config(format!(
                "no configured region can serve {} (plan {:?})",
                self.operation, self.regions
            ))
            .for_operation(self.operation)
        })
    }

    /// Sleeps the full-jitter backoff of the next wait, within the call's deadline.
    async fn wait(&mut self) {
        self.waits += 1;
        let backoff = self.inner.settings.retry.backoff(self.waits, random_u64());
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(backoff.min(left)).await;
    }

    /// One attempt on `node` of `region`, bounded by the attempt timeout and the call's deadline.
    async fn attempt<O: Operation>(
        &self,
        region: usize,
        node: usize,
        request: &O,
    ) -> Result<O::Response, Attempted> {
        let target = &self.inner.regions[region];
        let mut request = request.clone();
        for field in request.key_fields() {
            if let Some(arn) = arn_in_region(field, &target.name) {
                *field = arn;
            }
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout = self.inner.settings.attempt_timeout.min(left).max(Duration::from_millis(1));
        let mut request = tonic::Request::new(request);
        request.set_timeout(timeout);
        match tokio::time::timeout(timeout, O::send(target.nodes[node].svc.clone(), request)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Attempted::Status(status)),
            Err(_) => Err(Attempted::TimedOut(timeout)),
        }
    }

    fn error(&self, cause: Cause, region: usize, node: usize, stop: Stop) -> Error {
        let url = self.inner.regions[region].nodes[node].url.clone();
        let endpoint = format!("{url} ({})", self.inner.regions[region].name);
        Error::new(self.operation, cause, self.attempts, Some(endpoint), stop)
    }
}
