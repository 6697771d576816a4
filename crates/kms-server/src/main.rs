//! kmsd: one node of a KMS region.
//!
//! `kmsd dev` runs a single-node region for development: loopback only, data and a generated
//! root key under one directory. `kmsd run --config kmsd.toml` runs a production node.
#![forbid(unsafe_code)]

mod coalesced;
mod config;
mod join;
mod kubernetes;
mod root_key;
mod server;
mod telemetry;
mod tls;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc instead of the system allocator: every request allocates (decoded messages, the key
/// record, the audit event), and with glibc's malloc a fifth of a loaded node's time went to
/// the allocator (BENCHMARKS.md). Key material is wiped by its owners before it is freed, so
/// the allocator never holds a secret that was not already zeroed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kmsd", version, about = "A node of a self-hosted KMS region")]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "KMSD_LOG_FORMAT", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Mode {
    /// Single-node development region on loopback, with a generated root key. NOT for production.
    Dev {
        /// Where the data and the dev root key live.
        #[arg(long, env = "KMSD_DATA_DIR", default_value = ".kms-dev")]
        data_dir: PathBuf,
        /// Client API address (loopback only).
        #[arg(long, env = "KMSD_LISTEN", default_value = "127.0.0.1:8300")]
        listen: SocketAddr,
        /// Raft address (loopback only); defaults to the client port + 1.
        #[arg(long, env = "KMSD_RAFT_LISTEN")]
        raft_listen: Option<SocketAddr>,
        /// AWS-compatible endpoint (AWS JSON 1.1 + SigV4; loopback only); defaults to the client
        /// port + 2.
        #[arg(long, env = "KMSD_AWS_LISTEN")]
        aws_listen: Option<SocketAddr>,
        /// Prometheus `/metrics` (loopback only); defaults to the client port + 3, skipped with a
        /// warning if that port is taken.
        #[arg(long, env = "KMSD_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// A node configured by a TOML file; flags and environment override the file.
    Run {
        #[arg(long, env = "KMSD_CONFIG")]
        config: PathBuf,
        #[arg(long, env = "KMSD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "KMSD_LISTEN")]
        listen: Option<SocketAddr>,
        #[arg(long, env = "KMSD_RAFT_LISTEN")]
        raft_listen: Option<SocketAddr>,
        /// The address peers use to reach this node's Raft port (overrides `raft_advertise`;
        /// per-pod in Kubernetes, where every pod shares one configuration file).
        #[arg(long, env = "KMSD_RAFT_ADVERTISE")]
        raft_advertise: Option<String>,
        #[arg(long, env = "KMSD_NODE_ID")]
        node_id: Option<u64>,
        /// Prometheus `/metrics` address (overrides `metrics_listen`).
        #[arg(long, env = "KMSD_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let telemetry = telemetry::init(matches!(cli.log_format, LogFormat::Json));
    let result = run(cli.mode).await;
    telemetry.shutdown().await;
    result
}

async fn run(mode: Mode) -> Result<()> {
    match mode {
        Mode::Dev { data_dir, listen, raft_listen, aws_listen, metrics_listen } => {
            let mut config = Config::dev(data_dir, listen)?;
            if let Some(raft_listen) = raft_listen {
                anyhow::ensure!(raft_listen.ip().is_loopback(), "dev mode: --raft-listen must be loopback");
                config.raft_listen = raft_listen;
                config.initial_members = [(1, raft_listen.to_string())].into();
            }
            if let Some(aws_listen) = aws_listen {
                anyhow::ensure!(aws_listen.ip().is_loopback(), "dev mode: --aws-listen must be loopback");
                config.aws_listen = Some(aws_listen);
            }
            match metrics_listen {
                Some(address) => {
                    anyhow::ensure!(
                        address.ip().is_loopback(),
                        "dev mode: --metrics-listen must be loopback"
                    );
                    config.metrics_listen = Some(address);
                }
                // The default port is a convenience: a clash must not stop a dev node.
                None => {
                    if let Some(address) = config.metrics_listen
                        && let Err(err) = std::net::TcpListener::bind(address)
                    {
                        tracing::warn!(%address, error = %err, "metrics port taken; /metrics is off");
                        config.metrics_listen = None;
                    }
                }
            }
            std::fs::create_dir_all(&config.data_dir)?;
            if let Some(aws_listen) = config.aws_listen {
                tracing::warn!(
                    endpoint = %format!("http://{aws_listen}"),
                    region = %config.region,
                    access_key_id = kms_api::aws::DEV_ACCESS_KEY_ID,
                    secret_access_key = kms_api::aws::DEV_SECRET_ACCESS_KEY,
                    "DEVELOPMENT MODE: the AWS endpoint accepts the fixed, public dev credential \
                     (AWS_ACCESS_KEY_ID=kmsdev AWS_SECRET_ACCESS_KEY=kmsdevsecret AWS_DEFAULT_REGION=dev-1)"
                );
            }
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "DEVELOPMENT MODE: single node, generated root key stored next to the data, no \
                 authentication. Never use it for real keys."
            );
            let path = config.data_dir.join("root.key");
            let root_key = root_key::load_or_create(&path)?;
            server::run(config, root_key.into()).await
        }
        Mode::Run { config, data_dir, listen, raft_listen, raft_advertise, node_id, metrics_listen } => {
            let mut config = Config::load(&config)?;
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            config.listen = listen.unwrap_or(config.listen);
            config.raft_listen = raft_listen.unwrap_or(config.raft_listen);
            config.raft_advertise = raft_advertise.or(config.raft_advertise);
            config.node_id = node_id.unwrap_or(config.node_id);
            config.metrics_listen = metrics_listen.or(config.metrics_listen);
            config.validate()?;
            let root_keys = root_key::load_ring(&config)?;
            server::run(config, root_keys).await
        }
    }
}
