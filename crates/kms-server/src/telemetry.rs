//! Logs, traces and metrics of kmsd.
//!
//! - Logs: `tracing` to stderr, text or JSON, filtered by `RUST_LOG`. The span each request
//!   opens is left out of the log unless `RUST_LOG` names its target, `kms::request`: opened
//!   for the log layer, it was 3 % of a node's CPU under Encrypt load.
//! - Traces: only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span (one `grpc.request` span
//!   per gRPC request, named `<service>/<operation>`) is exported over OTLP/gRPC by a batch
//!   processor; [`Telemetry::shutdown`] flushes it on exit. Unset, nothing of OpenTelemetry is
//!   built or run. The standard `OTEL_*` variables (service name, headers, timeout) apply.
//! - Metrics: with `metrics_listen` set, `GET /metrics` on that address answers the
//!   Prometheus/OpenMetrics text of [`kms_api::metrics`]; the Raft gauges are sampled from
//!   [`Region::status`] every [`RAFT_SAMPLE_INTERVAL`] and at each scrape.
//!
//! Neither spans nor metrics carry request data: the operation name and the outcome only.

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kms_api::metrics::Metrics;
use kms_replication::Region;
use kms_replication::trace_context::REQUEST_SPAN_TARGET;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How often the Raft gauges are sampled between scrapes (leader changes are counted from these
/// samples, so two changes within one interval count as one).
pub const RAFT_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// The variable that turns OTLP trace export on.
const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// What must be shut down on exit.
pub struct Telemetry {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Installs the global tracing subscriber: logs to stderr, plus OTLP trace export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Must run inside the Tokio runtime (the exporter's
/// tonic channel lives on it).
pub fn init(json_logs: bool) -> Telemetry {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = if json_logs { fmt.json().boxed() } else { fmt.boxed() };
    let endpoint = std::env::var(OTLP_ENDPOINT_VAR).ok().filter(|v| !v.trim().is_empty());
    let (otel, tracer_provider, otel_error) = match endpoint.as_deref().map(tracer_provider) {
        None => (None, None, None),
        Some(Ok(provider)) => {
            use opentelemetry::trace::TracerProvider as _;
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("kmsd"));
            // W3C trace context in and out (client requests, calls between nodes), so a
            // forwarded request is one trace across the nodes it touched.
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            (Some(layer), Some(provider), None)
        }
        Some(Err(err)) => (None, None, Some(err)),
    };
    let logging = tracing_subscriber::registry().with(fmt.with_filter(log_filter()));
    // Without an exporter no layer wants the request spans, so they are never opened. (An absent
    // `Option` layer would still claim every span, and the registry would track each one.)
    match otel {
        Some(otel) => logging.with(otel.with_filter(configured_filter())).init(),
        None => logging.init(),
    }
    if let Some(endpoint) = endpoint {
        match otel_error {
            None => tracing::info!(%endpoint, "exporting traces over OTLP/gRPC"),
            Some(err) => tracing::error!(%endpoint, error = %format!("{err:#}"), "traces are NOT exported"),
        }
    }
    Telemetry { tracer_provider }
}

/// What `RUST_LOG` asks for, else `info,openraft=warn`: what traces export.
fn configured_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"))
}

/// What the log shows: the configured filter, without the requests' own spans unless `RUST_LOG`
/// names their target (see [`REQUEST_SPAN_TARGET`]).
fn log_filter() -> EnvFilter {
    let filter = configured_filter();
    let named = std::env::var(EnvFilter::DEFAULT_ENV).is_ok_and(|v| v.contains(REQUEST_SPAN_TARGET));
    match format!("{REQUEST_SPAN_TARGET}=warn").parse() {
        Ok(directive) if !named => filter.add_directive(directive),
        _ => filter,
    }
}

fn tracer_provider(endpoint: &str) -> Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    // The builder reads OTEL_EXPORTER_OTLP_ENDPOINT (and _TRACES_ENDPOINT, _TIMEOUT, _HEADERS).
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .with_context(|| format!("building the OTLP/gRPC span exporter for {endpoint}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("kmsd");
    }
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

impl Telemetry {
    /// Flushes and stops the trace exporter, if one runs. Call once, at exit.
    pub async fn shutdown(self) {
        let Some(provider) = self.tracer_provider else { return };
        // shutdown() blocks until the batch processor has exported; its export runs on this
        // runtime's tonic channel, so block a pool thread, not a runtime worker.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("kmsd: flushing traces at exit failed: {err}"),
            Err(err) => eprintln!("kmsd: flushing traces at exit failed: {err}"),
        }
    }
}

/// Samples the Raft gauges every [`RAFT_SAMPLE_INTERVAL`] until `stop` completes.
pub async fn sample_raft(metrics: &'static Metrics, region: Region, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(RAFT_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => metrics.observe_raft(&region.status()),
            () = &mut stop => return,
        }
    }
}

/// Binds the metrics address.
pub async fn bind_metrics(address: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("binding the metrics address {address}"))
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. Scrapes are small and quick:
/// open connections are not waited for.
pub async fn serve_metrics(
    metrics: &'static Metrics,
    region: Region,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "kmsd is serving Prometheus metrics at /metrics");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a metrics connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let region = region.clone();
                let service = service_fn(move |request| {
                    let region = region.clone();
                    async move { Ok::<_, Infallible>(answer(metrics, &region, &request)) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "metrics connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => return,
        }
    }
}

fn answer<B>(metrics: &Metrics, region: &Region, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "metrics are at /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    metrics.observe_raft(&region.status());
    let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(kms_api::metrics::CONTENT_TYPE),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
