//! Traces across nodes: a request sent to a follower is forwarded to the leader, and the spans
//! both nodes export over OTLP belong to one trace, the client's own when it sent a
//! `traceparent`. The collector is an OTLP/gRPC trace service inside this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::Cluster;
use kms_proto::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every span exported to it, with the `service.instance.id`-free resource ignored.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans =
            request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    fn spans_of_trace(&self, trace_id: &[u8]) -> Vec<Span> {
        self.0.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_request_is_one_trace_across_the_nodes() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let endpoint = format!("http://{address}");
    let cluster = Cluster::start_with_env(
        3,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "200")],
    )
    .await;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let follower = cluster.live_ids().into_iter().find(|id| *id != leader).unwrap();

    // The client's own trace: W3C traceparent with a trace id we choose.
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let trace_id: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut request = tonic::Request::new(pb::CreateKeyRequest {
        description: Some("traced".into()),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("traceparent", format!("00-{trace_hex}-00f067aa0ba902b7-01").parse().unwrap());
    cluster.node(follower).client().create_key(request).await.unwrap();

    // Both nodes' spans arrive (batched every 200 ms): the follower's request span, a child of the
    // client's span, and the leader's forward span, a child of the follower's.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (request_span, forward_span) = loop {
        let spans = collector.spans_of_trace(&trace_id);
        let request_span = spans.iter().find(|s| s.name.contains("CreateKey")).cloned();
        let forward_span = spans.iter().find(|s| s.name == "raft.forward").cloned();
        if let (Some(request_span), Some(forward_span)) = (request_span, forward_span) {
            break (request_span, forward_span);
        }
        assert!(
            Instant::now() < deadline,
            "spans of the client's trace after 20 s: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(request_span.parent_span_id, vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    let follower_span_ids: Vec<Vec<u8>> =
        collector.spans_of_trace(&trace_id).into_iter().map(|s| s.span_id).collect();
    assert!(
        follower_span_ids.contains(&forward_span.parent_span_id),
        "the leader's forward span must hang under a span of the same trace"
    );
}
