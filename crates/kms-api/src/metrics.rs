//! Prometheus metrics of a node: requests by front end, operation and outcome, request latency,
//! the node's Raft gauges and its audit log's counters; plus the tower layer that records the gRPC front end and opens
//! one tracing span per request.
//!
//! Labels are bounded by construction: `operation` is a method of the kms.v1 or kms.admin.v1
//! service (anything else is `unknown`), `outcome` is `ok`, an AWS exception name (the
//! `x-kms-exception` the server itself set) or `grpc_<Code>` for a failure that carries none.
//! Nothing else about a request, and never a key id, alias or byte of data, becomes a label.
//!
//! Recording is off until the server calls [`install`]: without it the front ends skip every
//! metric (the tracing span still opens; it is what OpenTelemetry exports when enabled).

use kms_replication::RegionStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::codegen::http;
use tracing::Instrument as _;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The front end a request came through.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Api {
    Grpc,
    Aws,
    /// The Kubernetes KMS v2 plugin (its unix socket).
    Kubernetes,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Aws => "aws",
            Api::Kubernetes => "kubernetes",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    api: &'static str,
    operation: String,
}

/// Latency buckets in seconds: 250 µs (a local Encrypt) to 10 s (a proposal that times out).
const LATENCY_BUCKETS: [f64; 15] =
    [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of a node, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    /// Requests refused by the per-principal rate limits (throttle.rs), by front end and operation.
    throttled: Family<LatencyLabels, Counter>,
    raft: RaftGauges,
    replication: ReplicationGauges,
    /// Sealed values not under the active root key, as the leader's last re-seal pass left them.
    stale_sealed: Gauge,
    /// The audit log's counters, read at each scrape once [`Metrics::observe_audit`] names it.
    audit: Arc<AuditCollector>,
    /// Method names by gRPC service name (kms.v1 and kms.admin.v1), from the compiled-in
    /// descriptor sets. The only operation names that become labels.
    services: BTreeMap<String, BTreeSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kms_requests",
            "Requests by front end (grpc, aws), operation and outcome (ok, the AWS exception name, or grpc_<Code>)",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "kms_request_duration",
            "Time from a request's arrival to its answer, by front end and operation",
            Unit::Seconds,
            latency.clone(),
        );
        let throttled = Family::<LatencyLabels, Counter>::default();
        registry.register(
            "kms_throttled",
            "Requests refused with ThrottlingException by the per-principal rate limits, by front end and operation",
            throttled.clone(),
        );
        let raft = RaftGauges::register(&mut registry);
        let replication = ReplicationGauges::register(&mut registry);
        let stale_sealed = Gauge::default();
        stale_sealed.set(-1);
        registry.register(
            "kms_root_key_stale_sealed_values",
            "Key material still sealed under a root key other than the active one, as this node's last re-seal pass left it; only the leader runs them, other nodes report -1 (0 on the leader: the previous root keys may be removed)",
            stale_sealed.clone(),
        );
        let audit = Arc::new(AuditCollector::default());
        registry.register_collector(Box::new(audit.clone()));
        let mut services = BTreeMap::new();
        for set in [kms_proto::FILE_DESCRIPTOR_SET, kms_proto::ADMIN_FILE_DESCRIPTOR_SET] {
            // The sets are compiled in by kms-proto's build; a set that failed to decode would
            // only leave its operations labelled `unknown`.
            let Ok(fds) = <prost_types::FileDescriptorSet as prost::Message>::decode(set) else {
                continue;
            };
            for file in fds.file {
                for service in &file.service {
                    let name = format!("{}.{}", file.package(), service.name());
                    let methods = services.entry(name).or_insert_with(BTreeSet::new);
                    methods.extend(service.method.iter().map(|m| m.name().to_string()));
                }
            }
        }
        Self { registry, requests, latency, throttled, raft, replication, stale_sealed, audit, services }
    }

    /// The (service, operation) of a gRPC request path `/<service>/<method>`, if the service is
    /// one of ours. An unknown method of our service is `unknown`.
    fn grpc_operation(&self, path: &str) -> Option<(&str, &str)> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let (service, methods) = self.services.get_key_value(service)?;
        let operation = methods.get(method).map_or("unknown", String::as_str);
        Some((service.as_str(), operation))
    }

    /// `operation` if it is a kms.v1 operation (AWS operation names are its method names).
    fn kms_operation<'a>(&'a self, operation: &str) -> &'a str {
        self.services
            .get("kms.v1.KeyManagementService")
            .and_then(|methods| methods.get(operation))
            .map_or("unknown", String::as_str)
    }

    /// Counts one finished request and its latency. `operation` must already be bounded.
    fn record(&self, api: Api, operation: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                api: api.as_str(),
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { api: api.as_str(), operation: operation.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one request of the AWS JSON endpoint: `operation` as the client named it (an
    /// unknown name is counted as `unknown`), `error` the AWS error code it was answered with.
    pub fn record_aws(&self, operation: &str, error: Option<&'static str>, elapsed: Duration) {
        let operation = self.kms_operation(operation);
        self.record(Api::Aws, operation, error.unwrap_or("ok"), elapsed);
    }

    /// Counts one request refused by the rate limits (an unknown operation name is `unknown`).
    pub fn record_throttled(&self, api: Api, operation: &str) {
        let operation = self.kms_operation(operation).to_string();
        self.throttled.get_or_create(&LatencyLabels { api: api.as_str(), operation }).inc();
    }

    /// Updates the Raft gauges from the node's current status.
    pub fn observe_raft(&self, status: &RegionStatus) {
        self.raft.observe(status);
    }

    /// What this region's outbox owes `destination` (a configured region): entries, and the age
    /// of the oldest in seconds (0 when empty).
    pub fn observe_outbox(&self, destination: &str, entries: u64, lag_seconds: f64) {
        let labels = DestinationLabels { destination: destination.to_string() };
        self.replication
            .outbox_entries
            .get_or_create(&labels)
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.replication.lag_seconds.get_or_create(&labels).set(lag_seconds);
    }

    /// The outcome of one push to `destination`; `at_seconds` is the Unix time of a success.
    pub fn record_push(&self, destination: &str, success_at_seconds: Option<f64>) {
        let labels = DestinationLabels { destination: destination.to_string() };
        match success_at_seconds {
            Some(at) => {
                self.replication.last_push.get_or_create(&labels).set(at);
            }
            None => {
                self.replication.push_failures.get_or_create(&labels).inc();
            }
        }
    }

    /// What this node's last re-seal pass left under other root keys; `None` when this node is
    /// not the leader and so runs none.
    pub fn observe_reseal(&self, remaining: Option<usize>) {
        self.stale_sealed.set(remaining.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)));
    }

    /// Reports the counters of `log` from now on (the node's one audit log; later calls are
    /// ignored).
    pub fn observe_audit(&self, log: kms_audit::AuditLog) {
        let _ = self.audit.log.set(log);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an error here would be a bug in an encoder.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        text
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Replication of multi-Region keys from this region, by destination region (labels bounded by
/// the configured regions). Updated by the leader's replicator; other nodes leave them unset.
#[derive(Debug)]
struct ReplicationGauges {
    outbox_entries: Family<DestinationLabels, Gauge>,
    lag_seconds: Family<DestinationLabels, FloatGauge>,
    last_push: Family<DestinationLabels, FloatGauge>,
    push_failures: Family<DestinationLabels, Counter>,
}

impl ReplicationGauges {
    fn register(registry: &mut Registry) -> Self {
        let gauges = Self {
            outbox_entries: Family::default(),
            lag_seconds: Family::default(),
            last_push: Family::default(),
            push_failures: Family::default(),
        };
        let replication = registry.sub_registry_with_prefix("kms_replication");
        replication.register(
            "outbox_entries",
            "Multi-Region key updates queued for a destination region and not yet acknowledged",
            gauges.outbox_entries.clone(),
        );
        replication.register_with_unit(
            "lag",
            "Age of the oldest update queued for a destination region (0 when none is queued)",
            Unit::Seconds,
            gauges.lag_seconds.clone(),
        );
        replication.register(
            "last_push_timestamp_seconds",
            "Unix time of the last push a destination region acknowledged",
            gauges.last_push.clone(),
        );
        replication.register(
            "push_failures",
            "Pushes to a destination region that failed (unreachable, refused, timed out)",
            gauges.push_failures.clone(),
        );
        gauges
    }
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Turns recording on for this process and returns the metrics (the same ones on every call).
pub fn install() -> &'static Metrics {
    INSTALLED.get_or_init(Metrics::new)
}

/// The process's metrics, if [`install`] was called.
pub fn installed() -> Option<&'static Metrics> {
    INSTALLED.get()
}

/// The Raft gauges of this node, read from [`RegionStatus`].
#[derive(Debug)]
struct RaftGauges {
    term: Gauge,
    is_leader: Gauge,
    has_leader: Gauge,
    leader_changes: Counter,
    last_log_index: Gauge,
    applied_index: Gauge,
    apply_lag: Gauge,
    snapshot_index: Gauge,
    /// The last leader id observed, to count changes.
    last_leader: Mutex<Option<u64>>,
}

impl RaftGauges {
    fn register(registry: &mut Registry) -> Self {
        let gauges = Self {
            term: Gauge::default(),
            is_leader: Gauge::default(),
            has_leader: Gauge::default(),
            leader_changes: Counter::default(),
            last_log_index: Gauge::default(),
            applied_index: Gauge::default(),
            apply_lag: Gauge::default(),
            snapshot_index: Gauge::default(),
            last_leader: Mutex::new(None),
        };
        let raft = registry.sub_registry_with_prefix("kms_raft");
        raft.register("term", "Current Raft term", gauges.term.clone());
        raft.register("is_leader", "1 if this node is the region's leader", gauges.is_leader.clone());
        raft.register("has_leader", "1 if this node knows a leader", gauges.has_leader.clone());
        raft.register(
            "leader_changes",
            "Changes of the leader id this node has observed (sampled; the first leader seen is not a change)",
            gauges.leader_changes.clone(),
        );
        raft.register(
            "last_log_index",
            "Index of the last entry in this node's log",
            gauges.last_log_index.clone(),
        );
        raft.register(
            "applied_index",
            "Index of the last entry applied to the state",
            gauges.applied_index.clone(),
        );
        raft.register(
            "apply_lag",
            "Log entries not yet applied (last log index - applied index)",
            gauges.apply_lag.clone(),
        );
        raft.register(
            "snapshot_index",
            "Last log index covered by this node's current snapshot (0 without one)",
            gauges.snapshot_index.clone(),
        );
        gauges
    }

    fn observe(&self, status: &RegionStatus) {
        let index = |i: Option<u64>| i64::try_from(i.unwrap_or(0)).unwrap_or(i64::MAX);
        self.term.set(index(Some(status.term)));
        self.is_leader.set(i64::from(status.is_leader));
        self.has_leader.set(i64::from(status.leader_id.is_some()));
        self.last_log_index.set(index(status.last_log_index));
        self.applied_index.set(index(status.last_applied_index));
        let lag = status.last_log_index.unwrap_or(0).saturating_sub(status.last_applied_index.unwrap_or(0));
        self.apply_lag.set(index(Some(lag)));
        self.snapshot_index.set(index(status.snapshot_index));
        let mut last = self.last_leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if leader_changed(&mut last, status.leader_id) {
            self.leader_changes.inc();
        }
    }
}

/// Whether `now` is a new leader compared to the last one seen, remembering it. A gap without a
/// leader (an election in progress) is not a change; the same leader after the gap is not
/// either; the first leader ever seen is the starting point, not a change.
fn leader_changed(last: &mut Option<u64>, now: Option<u64>) -> bool {
    let Some(now) = now else { return false };
    let changed = last.is_some_and(|before| before != now);
    *last = Some(now);
    changed
}

/// The audit log's counters, read at each scrape (they live in the log's writer).
#[derive(Debug, Default)]
struct AuditCollector {
    log: OnceLock<kms_audit::AuditLog>,
}

impl Collector for AuditCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(log) = self.log.get() else { return Ok(()) };
        let stats = log.stats();
        let counters = [
            ("kms_audit_records_written", "Audit records written to the audit log and synced", stats.written),
            (
                "kms_audit_records_dropped",
                "Audit records dropped because the audit queue was full (on_full = \"drop\"); alarm on any increase",
                stats.dropped,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let gauges = [
            (
                "kms_audit_queue_depth",
                "Places taken in the audit queue: records waiting for the writer and requests in flight",
                stats.queue_depth,
            ),
            (
                "kms_audit_queue_capacity",
                "Size of the audit queue (audit.queue_capacity)",
                stats.queue_capacity,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

// ---- The gRPC front end: a tower layer over the tonic server --------------------------------

/// Records every request of our gRPC services (kms.v1, kms.admin.v1) in the installed
/// [`Metrics`] and runs it inside a `grpc.request` span named after the operation. Health and
/// reflection pass through untouched.
#[derive(Clone, Debug)]
pub struct GrpcLayer {
    metrics: Option<&'static Metrics>,
    /// Resolves operation names (the installed metrics, or a private registry that only
    /// serves the names when none are installed: spans still need them).
    names: &'static Metrics,
}

impl GrpcLayer {
    /// Records into `metrics` when given; opens spans either way.
    pub fn new(metrics: Option<&'static Metrics>) -> Self {
        static NAMES: OnceLock<Metrics> = OnceLock::new();
        let names = metrics.unwrap_or_else(|| NAMES.get_or_init(Metrics::new));
        Self { metrics, names }
    }
}

impl<S> tower::Layer<S> for GrpcLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService { inner, metrics: self.metrics, names: self.names }
    }
}

/// The service [`GrpcLayer`] wraps around the tonic router.
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Option<&'static Metrics>,
    names: &'static Metrics,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some((service, operation)) = self.names.grpc_operation(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        let span = tracing::info_span!(
            target: kms_replication::trace_context::REQUEST_SPAN_TARGET,
            "grpc.request",
            otel.name = %format_args!("{service}/{operation}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = operation,
            outcome = tracing::field::Empty,
        );
        // A client's trace continues here (W3C traceparent).
        kms_replication::trace_context::adopt_parent_from_headers(&span, request.headers());
        let started = Instant::now();
        let future = span.in_scope(|| self.inner.call(request));
        let metrics = self.metrics;
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                let outcome = match &result {
                    Ok(response) => outcome_of(response.headers()),
                    Err(_) => Cow::Borrowed("error"),
                };
                recorded.record("outcome", &*outcome);
                if let Some(metrics) = metrics {
                    metrics.record(Api::Grpc, operation, &outcome, started.elapsed());
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The outcome of a gRPC response by its headers: a failed unary call is a trailers-only
/// response, so `grpc-status` and `x-kms-exception` are headers; a success has no `grpc-status`
/// header (it comes in the trailers as 0).
fn outcome_of(headers: &http::HeaderMap) -> Cow<'static, str> {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    match code {
        None | Some(0) => Cow::Borrowed("ok"),
        Some(code) => {
            let exception = headers.get(kms_proto::EXCEPTION_METADATA_KEY).and_then(|v| v.to_str().ok());
            match exception {
                // Our own value, but a label must stay bounded whatever arrives here.
                Some(name)
                    if !name.is_empty()
                        && name.len() <= 64
                        && name.bytes().all(|b| b.is_ascii_alphabetic()) =>
                {
                    Cow::Owned(name.to_string())
                }
                _ => Cow::Owned(format!("grpc_{:?}", tonic::Code::from_i32(code))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use kms_replication::NodeState;

    fn status(leader: Option<u64>, last_log: u64, applied: u64) -> RegionStatus {
        RegionStatus {
            node_id: 1,
            state: NodeState::Follower,
            is_leader: leader == Some(1),
            leader_id: leader,
            term: 3,
            last_log_index: Some(last_log),
            last_applied_index: Some(applied),
            snapshot_index: None,
            voters: BTreeSet::new(),
            members: BTreeMap::new(),
        }
    }

    #[test]
    fn leader_changes_count_new_leaders_only() {
        let mut last = None;
        assert!(!leader_changed(&mut last, None), "no leader yet");
        assert!(!leader_changed(&mut last, Some(1)), "the first leader is the starting point");
        assert!(!leader_changed(&mut last, Some(1)));
        assert!(!leader_changed(&mut last, None), "an election is not a change");
        assert!(!leader_changed(&mut last, Some(1)), "the same leader after an election");
        assert!(leader_changed(&mut last, Some(2)));
        assert!(leader_changed(&mut last, Some(3)));
        assert!(!leader_changed(&mut last, Some(3)));
    }

    #[test]
    fn raft_gauges_follow_the_status() {
        let metrics = Metrics::new();
        metrics.observe_raft(&status(Some(2), 10, 7));
        metrics.observe_raft(&status(Some(1), 12, 12));
        let text = metrics.encode();
        for line in [
            "kms_raft_term 3",
            "kms_raft_is_leader 1",
            "kms_raft_has_leader 1",
            "kms_raft_leader_changes_total 1",
            "kms_raft_last_log_index 12",
            "kms_raft_applied_index 12",
            "kms_raft_apply_lag 0",
            "kms_raft_snapshot_index 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        metrics.observe_raft(&status(None, 15, 11));
        let text = metrics.encode();
        assert!(text.lines().any(|l| l == "kms_raft_apply_lag 4"));
        assert!(text.lines().any(|l| l == "kms_raft_is_leader 0"));
    }

    #[test]
    fn operations_are_bounded_to_our_services() {
        let metrics = Metrics::new();
        assert_eq!(
            metrics.grpc_operation("/kms.v1.KeyManagementService/CreateKey"),
            Some(("kms.v1.KeyManagementService", "CreateKey"))
        );
        assert_eq!(
            metrics.grpc_operation("/kms.admin.v1.ClusterAdmin/GetClusterStatus"),
            Some(("kms.admin.v1.ClusterAdmin", "GetClusterStatus"))
        );
        assert_eq!(
            metrics.grpc_operation("/kms.v1.KeyManagementService/alias%2Fsecret-name"),
            Some(("kms.v1.KeyManagementService", "unknown"))
        );
        assert_eq!(metrics.grpc_operation("/grpc.health.v1.Health/Check"), None);
        assert_eq!(metrics.grpc_operation("/nonsense"), None);
        assert_eq!(metrics.kms_operation("Encrypt"), "Encrypt");
        assert_eq!(metrics.kms_operation("arn:aws:kms:dev-1:000000000000:key/1234"), "unknown");
    }

    #[test]
    fn outcomes_come_from_the_status_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(outcome_of(&headers), "ok");
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(outcome_of(&headers), "grpc_NotFound");
        headers
            .insert(kms_proto::EXCEPTION_METADATA_KEY, http::HeaderValue::from_static("NotFoundException"));
        assert_eq!(outcome_of(&headers), "NotFoundException");
        headers.insert(kms_proto::EXCEPTION_METADATA_KEY, http::HeaderValue::from_static("key/1234-5678"));
        assert_eq!(outcome_of(&headers), "grpc_NotFound", "an odd value never becomes a label");
        headers.insert("grpc-status", http::HeaderValue::from_static("0"));
        assert_eq!(outcome_of(&headers), "ok");
    }

    #[tokio::test]
    async fn audit_counters_are_read_at_each_scrape() {
        let dir = tempfile::tempdir().unwrap();
        let config = kms_audit::AuditConfig {
            path: dir.path().join("audit.log"),
            queue_capacity: 4,
            on_full: kms_audit::OnFull::Drop,
        };
        let log = kms_audit::AuditLog::open(&config).unwrap();
        let metrics = Metrics::new();
        assert!(!metrics.encode().contains("kms_audit"), "nothing before a log is named");
        metrics.observe_audit(log.clone());
        log.record(kms_audit::AuditEvent::default());
        log.flush().await.unwrap();
        let text = metrics.encode();
        for line in [
            "# TYPE kms_audit_records_written counter",
            "kms_audit_records_written_total 1",
            "kms_audit_records_dropped_total 0",
            "kms_audit_queue_depth 0",
            "kms_audit_queue_capacity 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn requests_are_counted_with_a_latency_histogram() {
        let metrics = Metrics::new();
        metrics.record(Api::Grpc, "CreateKey", "ok", Duration::from_millis(3));
        metrics.record(Api::Grpc, "CreateKey", "ok", Duration::from_millis(4));
        metrics.record_aws("DescribeKey", Some("NotFoundException"), Duration::from_micros(300));
        metrics.record_aws("NoSuchOperation", Some("UnknownOperationException"), Duration::from_micros(30));
        metrics.record_throttled(Api::Aws, "Encrypt");
        let text = metrics.encode();
        for line in [
            r#"kms_requests_total{api="grpc",operation="CreateKey",outcome="ok"} 2"#,
            r#"kms_requests_total{api="aws",operation="DescribeKey",outcome="NotFoundException"} 1"#,
            r#"kms_requests_total{api="aws",operation="unknown",outcome="UnknownOperationException"} 1"#,
            r#"kms_request_duration_seconds_count{api="grpc",operation="CreateKey"} 2"#,
            r#"kms_request_duration_seconds_bucket{le="0.005",api="grpc",operation="CreateKey"} 2"#,
            r#"kms_request_duration_seconds_bucket{le="0.0025",api="grpc",operation="CreateKey"} 0"#,
            r#"kms_throttled_total{api="aws",operation="Encrypt"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
