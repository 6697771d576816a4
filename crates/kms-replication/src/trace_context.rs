//! W3C trace context across calls between nodes and from clients, so a request forwarded from a
//! follower to the leader shows up as one trace: the caller injects the current span's context
//! into the request metadata (`traceparent`), the receiver opens its span as a child of it.
//!
//! Propagation goes through OpenTelemetry's global propagator; kmsd installs the W3C one at
//! start. Without it (or without an exporter), injecting and extracting do nothing.

use opentelemetry::propagation::{Extractor, Injector};

use tonic::codegen::http::HeaderMap;
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of the one span each request opens (`grpc.request`, `raft.forward`,
/// `raft.read_index`). They are for traces: kmsd keeps them out of its log unless `RUST_LOG`
/// names this target, since the log layer formats a span's fields when it opens, whether or
/// not anything is logged inside it (3 % of a node's CPU under Encrypt load).
pub const REQUEST_SPAN_TARGET: &str = "kms::request";

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

/// Adds the current span's context to an outgoing request.
pub fn inject(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// Makes `span` a child of the context an incoming gRPC request carries, if it carries one.
pub fn adopt_parent(span: &tracing::Span, metadata: &MetadataMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MetadataExtractor(metadata))
    });
    set_parent(span, parent);
}

/// [`adopt_parent`] for a request seen as plain HTTP (a tower layer in front of tonic).
pub fn adopt_parent_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    set_parent(span, parent);
}

fn set_parent(span: &tracing::Span, parent: opentelemetry::Context) {
    use opentelemetry::trace::TraceContextExt;
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled (no subscriber layer records it): nothing to link.
        let _ = span.set_parent(parent);
    }
}
