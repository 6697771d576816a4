//! kms-bench: a bounded load generator for kmsd over gRPC, on loopback only.
//!
//! - `create-key` / `encrypt`: N concurrent clients (one HTTP/2 connection each) until a request
//!   count or a duration is reached, whichever comes first; prints throughput and latency
//!   percentiles. Against `--endpoint` (a running node) or a region the tool starts itself
//!   (`--spawn 1` or `--spawn 3`, `kmsd run` processes from the target directory).
//! - `failover`: starts a 3-node region, writes continuously through the followers, SIGKILLs the
//!   leader and reports the time from the kill to the first successful write that started after
//!   it; restarts the killed node and repeats `--runs` times.
//!
//! Every loop is bounded in count and time; every process it starts is killed when it ends.
#![forbid(unsafe_code)]

mod lag;
mod region;
mod stats;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use region::{Client, SpawnedRegion, lazy_client};
use stats::{Row, Samples};
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

#[derive(Subcommand)]
enum Command {
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
    let kmsd = match &cli.kmsd {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("kmsd"),
    };
    match cli.command {
        Command::Failover { runs, writers, give_up } => failover(&kmsd, runs, writers.max(1), give_up).await,
        Command::ReplicationLag { rates, duration } => lag::replication_lag(&kmsd, &rates, duration).await,
        Command::CreateKey { load } => {
            let (endpoint, region) = target(&cli.endpoint, cli.spawn, &kmsd).await?;
            let row = create_keys(&endpoint, load).await?;
            print_table(&describe(&cli.endpoint, cli.spawn), &[row]);
            drop(region);
            Ok(())
        }
        Command::Encrypt { load, size } => {
            anyhow::ensure!((1..=4096).contains(&size), "--size must be 1..=4096 bytes");
            let (endpoint, region) = target(&cli.endpoint, cli.spawn, &kmsd).await?;
            let row = encrypt(&endpoint, load, size).await?;
            print_table(&describe(&cli.endpoint, cli.spawn), &[row]);
            drop(region);
            Ok(())
        }
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

/// Runs `clients` workers calling `call` until `load.count` calls were made or `load.duration`
/// passed. Returns the merged samples and the wall time.
async fn run_load<F, Fut>(endpoint: &str, load: Load, call: F) -> Result<(Samples, Duration)>
where
    F: Fn(Client) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut workers = Vec::new();
    for _ in 0..load.clients.max(1) {
        let client = KeyManagementServiceClient::new(
            tonic::transport::Endpoint::from_shared(endpoint.to_string())?
                .timeout(Duration::from_secs(15))
                .connect()
                .await
                .with_context(|| format!("connecting to {endpoint}"))?,
        );
        let issued = issued.clone();
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < load.count {
                let t = Instant::now();
                let result = call(client.clone()).await;
                samples.record(t.elapsed(), result.as_ref().err());
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for worker in workers {
        all.merge(worker.await?);
    }
    Ok((all, started.elapsed()))
}

async fn create_keys(endpoint: &str, load: Load) -> Result<Row> {
    let (samples, wall) = run_load(endpoint, load, |mut client: Client| async move {
        let request = pb::CreateKeyRequest { description: Some("kms-bench".into()), ..Default::default() };
        client.create_key(request).await.map(drop)
    })
    .await?;
    Ok(samples.row("CreateKey", load.clients, wall))
}

async fn encrypt(endpoint: &str, load: Load, size: usize) -> Result<Row> {
    let mut client = lazy_client(endpoint, Duration::from_secs(15))?;
    let request =
        pb::CreateKeyRequest { description: Some("kms-bench encrypt".into()), ..Default::default() };
    let key_id = client
        .create_key(request)
        .await
        .context("creating the key to encrypt under")?
        .into_inner()
        .key_metadata
        .context("CreateKey answered without metadata")?
        .key_id;
    let plaintext: Arc<Vec<u8>> = Arc::new((0..size).map(|i| (i % 251) as u8).collect());
    let (samples, wall) = run_load(endpoint, load, move |mut client: Client| {
        let request = pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: plaintext.to_vec(),
            ..Default::default()
        };
        async move { client.encrypt(request).await.map(drop) }
    })
    .await?;
    Ok(samples.row(&format!("Encrypt {size} B"), load.clients, wall))
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

fn print_table(context: &str, rows: &[Row]) {
    println!("{context}");
    println!(
        "{:<16} {:>7} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "operation", "clients", "ok", "errors", "seconds", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in rows {
        println!(
            "{:<16} {:>7} {:>8} {:>7} {:>8.2} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            r.operation,
            r.clients,
            r.ok,
            r.errors,
            r.seconds,
            r.throughput,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    for r in rows {
        for (name, n) in &r.error_kinds {
            println!("  {}: {n} x {name}", r.operation);
        }
    }
}
