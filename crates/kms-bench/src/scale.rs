//! `kms-bench scale`: memory and start-up of one node holding many keys.
//!
//! Starts a one-node region, creates `keys` symmetric keys (in parallel, one Raft commit each),
//! then SIGKILLs the node and starts it again: the figures are the time from that start until an
//! Encrypt under one of the keys succeeds, and the node's resident memory at three points (with
//! every key created, right after the restart, and after encrypting once under each of a
//! sample of keys, which fills the material cache). The data directory's size is reported too.

use crate::region::{Client, SpawnedRegion, lazy_client};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kms_proto::v1 as pb;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NODE: u64 = 1;
/// Keys kept to encrypt under after the restart.
const SAMPLE: usize = 4096;

pub async fn scale(kmsd: &Path, keys: u64, clients: usize) -> Result<()> {
    let mut region = SpawnedRegion::start(kmsd, 1).await?;
    region.wait_leader(Duration::from_secs(60)).await?;
    let endpoint = region.endpoint(NODE);
    let started = Instant::now();
    let sample = create_keys(&endpoint, keys, clients.max(1)).await?;
    let created_in = started.elapsed();
    let rss_loaded = region.resident_bytes(NODE)?;

    region.kill(NODE)?;
    let restarted = Instant::now();
    region.start_node(NODE)?;
    let client = lazy_client(&endpoint, Duration::from_secs(5))?;
    let first = sample.first().context("no key was created")?;
    let serving_in = loop {
        if encrypt(client.clone(), first).await.is_ok() {
            break restarted.elapsed();
        }
        anyhow::ensure!(
            restarted.elapsed() < Duration::from_secs(300),
            "the node did not serve within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rss_started = region.resident_bytes(NODE)?;
    // Resident memory after each doubling of the keys used, to tell per-key cost from a step.
    let mut rss_warming = Vec::new();
    for (i, key) in sample.iter().enumerate() {
        encrypt(client.clone(), key).await.with_context(|| format!("encrypting under {key}"))?;
        if (i + 1).is_power_of_two() && i + 1 >= 64 {
            rss_warming.push((i + 1, region.resident_bytes(NODE)?));
        }
    }
    let rss_warm = region.resident_bytes(NODE)?;
    let disk = region.data_bytes(NODE)?;

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!("one node, {keys} symmetric keys ({clients} clients creating)");
    println!(
        "  created in                        {:>10.1} s ({:.0} keys/s)",
        created_in.as_secs_f64(),
        keys as f64 / created_in.as_secs_f64()
    );
    println!("  resident memory, all keys created {:>10.1} MiB", mib(rss_loaded));
    println!("  first Encrypt after SIGKILL+start {:>10.2} s", serving_in.as_secs_f64());
    println!("  resident memory after the restart {:>10.1} MiB", mib(rss_started));
    for (used, rss) in rss_warming {
        println!("  ... after Encrypt under {used:>5} keys {:>10.1} MiB", mib(rss));
    }
    println!("  ... after Encrypt under {} keys {:>10.1} MiB", sample.len(), mib(rss_warm));
    println!("  data directory                    {:>10.1} MiB", mib(disk));
    Ok(())
}

/// Creates `keys` keys from `clients` tasks; returns up to [`SAMPLE`] of their ids, spread over
/// the whole run.
async fn create_keys(endpoint: &str, keys: u64, clients: usize) -> Result<Vec<String>> {
    let bar = ProgressBar::new(keys);
    bar.set_style(
        ProgressStyle::with_template("creating keys {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let every = (keys / SAMPLE as u64).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (next, bar) = (next.clone(), bar.clone());
        let mut client = lazy_client(endpoint, Duration::from_secs(30))?;
        tasks.spawn(async move {
            let mut sample = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= keys {
                    break;
                }
                let request = pb::CreateKeyRequest {
                    description: Some("kms-bench scale".into()),
                    ..Default::default()
                };
                let created = client.create_key(request).await.context("CreateKey")?.into_inner();
                bar.inc(1);
                if n % every == 0 {
                    sample.extend(created.key_metadata.map(|m| m.key_id));
                }
            }
            anyhow::Ok(sample)
        });
    }
    let mut sample = Vec::new();
    while let Some(done) = tasks.join_next().await {
        sample.extend(done??);
    }
    bar.finish_and_clear();
    sample.truncate(SAMPLE);
    Ok(sample)
}

async fn encrypt(mut client: Client, key: &str) -> Result<(), tonic::Status> {
    let request =
        pb::EncryptRequest { key_id: key.to_string(), plaintext: vec![7; 32], ..Default::default() };
    client.encrypt(request).await.map(drop)
}
