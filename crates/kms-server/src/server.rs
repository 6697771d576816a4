//! Starting and stopping a node: the region (Raft + RocksDB), the KMS service, the gRPC server
//! with health and reflection, and the maintenance loop. Wiring only.

use crate::coalesced::Coalesced;
use crate::config::Config;
use crate::telemetry;
use crate::tls::TlsMaterial;
use anyhow::{Context, Result};
use kms_api::Kms;
use kms_api::authn::Authenticator;
use kms_api::grpc::GrpcApi;
use kms_api::regions::PeerRegions;
use kms_api::regions::service::ReplicationService;
use kms_core::command::KmsStateMachine;
use kms_core::ids::RegionScope;
use kms_crypto::RootKeyRing;
use kms_proto::v1::key_management_service_server::KeyManagementServiceServer;
use kms_replication::{ClusterAdminService, Region, RegionConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::ServerTlsConfig;

/// Runs a node until SIGINT or SIGTERM, then stops it cleanly.
pub async fn run(config: Config, root_keys: RootKeyRing) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let tls = config.tls.as_ref().map(TlsMaterial::load).transpose()?;
    let authn = Arc::new(config.authenticator()?);
    // Before anything is served: a log that cannot be continued stops the node here.
    let audit = kms_audit::AuditLog::open(&config.audit_config()).context("opening the audit log")?;
    let region = open_region(&config, tls.as_ref()).await?;
    let kms = Kms::new(region.clone(), root_keys, RegionScope::new(&config.region, &config.account))
        .with_audit(audit.clone())
        .with_throttle(kms_api::throttle::Throttle::new(config.rate_limits.limits()))
        .with_services(config.services.iter().cloned())
        .map_err(|err| anyhow::anyhow!("services: {}", err.message))?
        .with_peer_regions(peer_regions(&config, tls.as_ref())?);

    let (stop_tx, stop_rx) = watch::channel(false);
    crate::join::start(&config, &region, tls.as_ref(), stop_rx.clone())?;
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    // Metrics: bound before anything is served, recorded from the first request on.
    let mut telemetry_tasks = Vec::new();
    if let Some(address) = config.metrics_listen {
        let listener = telemetry::bind_metrics(address).await?;
        let metrics = kms_api::metrics::install();
        metrics.observe_audit(audit.clone());
        let serve = telemetry::serve_metrics(metrics, region.clone(), listener, stopped(stop_rx.clone()));
        telemetry_tasks.push(tokio::spawn(serve));
        telemetry_tasks.push(tokio::spawn(telemetry::sample_raft(
            metrics,
            region.clone(),
            stopped(stop_rx.clone()),
        )));
    }
    // The Kubernetes KMS v2 plugin on its unix socket, when configured.
    let kubernetes = crate::kubernetes::start(&kms, config.kubernetes.as_ref(), stop_rx.clone())?;
    let replicator = tokio::spawn(kms_api::regions::replicator::run(kms.clone(), stop_rx.clone()));
    let maintenance = tokio::spawn(
        kms.clone().maintenance_loop(Duration::from_secs(config.maintenance_interval_secs.max(1)), stop_rx),
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the client API address {}", config.listen))?;
    let aws = match config.aws_listen {
        Some(address) => {
            let mut aws_config = config.aws_config();
            aws_config.tls = tls.as_ref().map(TlsMaterial::aws_endpoint).transpose()?;
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("binding the AWS endpoint address {address}"))?;
            Some((listener, aws_config))
        }
        None => None,
    };
    let api = ClientApi {
        kms,
        authn,
        tls: tls.as_ref().map(TlsMaterial::client_api),
        request_timeout: config.request_timeout(),
    };
    let served = serve_until_signalled(api, listener, aws).await;

    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = maintenance.await;
    let _ = replicator.await;
    if let Some(kubernetes) = kubernetes {
        let _ = kubernetes.await;
    }
    for task in telemetry_tasks {
        let _ = task.await;
    }
    // Every request has ended: write the last records and log the chain head (the anchor).
    if tokio::time::timeout(AUDIT_FLUSH_TIMEOUT, audit.flush()).await.is_err() {
        tracing::error!(timeout = ?AUDIT_FLUSH_TIMEOUT, "the audit log did not flush in time; its last records may be lost");
    }
    region.shutdown().await.context("stopping the region")?;
    tracing::info!("stopped");
    served
}

/// Lazily connected channels to the other regions' client endpoints, spread over each region's
/// endpoints; over mutual TLS with this node's certificate when the node runs on TLS.
fn peer_regions(config: &Config, tls: Option<&TlsMaterial>) -> Result<PeerRegions> {
    let client_tls = tls.map(TlsMaterial::node_client);
    let mut regions = std::collections::BTreeMap::new();
    for (name, other) in &config.regions {
        let endpoints = other
            .all_endpoints()
            .iter()
            .map(|endpoint| crate::join::client_endpoint(endpoint, client_tls.as_ref()))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("[regions.{name}]"))?;
        regions.insert(name.clone(), tonic::transport::Channel::balance_list(endpoints.into_iter()));
    }
    Ok(PeerRegions::new(regions))
}

async fn open_region(config: &Config, tls: Option<&TlsMaterial>) -> Result<Region> {
    let region_config = RegionConfig {
        region: config.region.clone(),
        node_id: config.node_id,
        data_dir: config.data_dir.join("raft"),
        raft_listen: config.raft_listen,
        raft_advertise: config.raft_advertise(),
        tuning: config.raft.clone(),
        tls: tls.map(|tls| tls.transport(&config.region)),
        ..RegionConfig::default()
    };
    let region = Region::open(region_config, Arc::new(KmsStateMachine::new(&config.region)))
        .await
        .context("opening the region (Raft log and state in RocksDB)")?;
    if config.is_bootstrap_node() {
        region
            .initialize(config.initial_members.clone())
            .await
            .context("initializing the region's Raft group")?;
    }
    Ok(region)
}

/// How long the audit log's last records may take to reach the disk at shutdown.
const AUDIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests get to finish after SIGTERM before connections are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until SIGINT/SIGTERM, then lets in-flight requests finish for [`SHUTDOWN_GRACE`].
/// The bound matters: an idle client that never answers HTTP/2 GOAWAY would otherwise keep a
/// graceful shutdown waiting forever.
async fn serve_until_signalled(
    api: ClientApi,
    listener: TcpListener,
    aws: Option<(TcpListener, kms_api::aws::AwsConfig)>,
) -> Result<()> {
    let (signalled_tx, mut signalled_rx) = watch::channel(false);
    // The AWS endpoint stops on the signal, or when the gRPC server ends for any other reason
    // (the sender is dropped with it).
    let aws = aws.map(|(aws_listener, aws_config)| {
        let mut stop = signalled_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|signalled| *signalled).await;
        };
        tokio::spawn(kms_api::aws::serve(api.kms.clone(), aws_config, aws_listener, stopped, SHUTDOWN_GRACE))
    });
    let shutdown = async move {
        shutdown_signal().await;
        let _ = signalled_tx.send(true);
    };
    let serve = serve_grpc(api, listener, shutdown);
    let grace_expired = async move {
        let _ = signalled_rx.wait_for(|signalled| *signalled).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = serve => served,
        () = grace_expired => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them");
            Ok(())
        }
    };
    if let Some(aws) = aws {
        match aws.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "the AWS endpoint failed"),
            Err(err) => tracing::error!(error = %err, "the AWS endpoint task failed"),
        }
    }
    served
}

/// What the client port serves: the KMS, who may call it, and its TLS settings.
pub struct ClientApi {
    pub kms: Kms,
    pub authn: Arc<Authenticator>,
    pub tls: Option<ServerTlsConfig>,
    /// The server-side deadline of every request (a client's shorter `grpc-timeout` wins).
    pub request_timeout: Duration,
}

/// Serves the client API on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    api: ClientApi,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<KeyManagementServiceServer<GrpcApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kms_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(kms_proto::ADMIN_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the gRPC reflection service")?;
    // Cluster administration (kms.admin.v1), next to kms.v1 on the client port, for the region's
    // nodes and configured admins only. Health and reflection answer anyone: they say nothing
    // about keys, and probes must work without credentials.
    let ClientApi { kms, authn, tls, request_timeout } = api;
    let admin = InterceptedService::new(
        ClusterAdminService::new(kms.region().clone()).into_server(),
        kms_api::grpc::admin_guard(authn.clone()),
    );
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        tls = tls.is_some(),
        crypto = kms_crypto::BACKEND,
        "kmsd is serving the KMS gRPC API"
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("the client API's TLS settings")?;
    }
    builder
        .timeout(request_timeout)
        // Per-operation metrics (when installed) and one tracing span per request.
        .layer(kms_api::metrics::GrpcLayer::new(kms_api::metrics::installed()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ReplicationService::new(kms.clone(), authn.clone()).into_service())
        .add_service(GrpcApi::new(kms, authn).into_service())
        .add_service(admin)
        .serve_with_incoming_shutdown(tokio_stream_from(listener), shutdown)
        .await
        .context("serving the gRPC API")
}

fn tokio_stream_from(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<Coalesced<tokio::net::TcpStream>>> {
    use tokio_stream::StreamExt as _;
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(Coalesced::new))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM; stop kmsd with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
