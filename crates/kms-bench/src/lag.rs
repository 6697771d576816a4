//! `kms-bench replication-lag`: how long a change of a multi-Region key takes to show up in
//! another region, at steady rates of change.
//!
//! Two one-node regions (A primary, B replica) on loopback, each knowing the other. For each
//! rate, enough keys are replicated to B that no key exceeds AWS's 25 on-demand rotations; then
//! rotations are issued in A on a fixed schedule, and an observer polls B (every 10 ms, only the
//! keys with rotations not seen yet) for each key's rotation count. A sample is the time from
//! A's answer to the rotation until B's first answer that shows it, so it includes up to one
//! poll period of the observer on top of the replicator's own lag.

use crate::region::{Client, SpawnedRegion, lazy_client};
use crate::stats::percentile;
use anyhow::{Context, Result};
use kms_proto::v1 as pb;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRIMARY: &str = "bench-a";
const REPLICA: &str = "bench-b";
const POLL: Duration = Duration::from_millis(10);
/// Stay below AWS's 25 on-demand rotations per key.
const ROTATIONS_PER_KEY: u64 = 24;

pub async fn replication_lag(kmsd: &Path, rates: &[u32], duration: Duration) -> Result<()> {
    let mut a = SpawnedRegion::prepare(kmsd, 1, PRIMARY)?;
    let mut b = SpawnedRegion::prepare(kmsd, 1, REPLICA)?;
    a.launch(&regions_table(REPLICA, &b.client_addresses()))?;
    b.launch(&regions_table(PRIMARY, &a.client_addresses()))?;
    let primary =
        lazy_client(&a.endpoint(a.wait_leader(Duration::from_secs(60)).await?), Duration::from_secs(10))?;
    let replica =
        lazy_client(&b.endpoint(b.wait_leader(Duration::from_secs(60)).await?), Duration::from_secs(10))?;
    println!("multi-Region key rotations in {PRIMARY}, seen in {REPLICA} (one node each, loopback)");
    println!(
        "{:>7} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "rate/s", "rotations", "keys", "p50 ms", "p90 ms", "p99 ms", "max ms", "missed"
    );
    for &rate in rates {
        run_rate(primary.clone(), replica.clone(), rate.max(1), duration).await?;
    }
    Ok(())
}

fn regions_table(name: &str, endpoints: &[String]) -> String {
    let quoted: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
    format!("[regions.{name}]\nendpoints = [{}]\n", quoted.join(", "))
}

/// Acknowledged rotations by (key index, rotation number), and when B first showed them.
#[derive(Default)]
struct Timeline {
    acked: BTreeMap<(usize, usize), Instant>,
    seen: BTreeMap<(usize, usize), Instant>,
}

async fn run_rate(mut primary: Client, replica: Client, rate: u32, duration: Duration) -> Result<()> {
    let total = (u64::from(rate) * duration.as_millis() as u64 / 1000).max(1);
    let key_count = total.div_ceil(ROTATIONS_PER_KEY) as usize;
    let keys = replicated_keys(&mut primary, &replica, key_count).await?;
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let observer = tokio::spawn(observe(replica.clone(), keys.clone(), timeline.clone(), done.clone()));

    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    for i in 0..total as usize {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let (key, number) = (i % key_count, i / key_count + 1);
        let request = pb::RotateKeyOnDemandRequest { key_id: keys[key].clone() };
        primary.rotate_key_on_demand(request).await.context("rotating in the primary region")?;
        lock(&timeline).acked.insert((key, number), Instant::now());
    }
    // Let the last ones arrive (or count them missed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let all_seen = || {
        let timeline = lock(&timeline);
        timeline.seen.len() >= timeline.acked.len()
    };
    while Instant::now() < deadline && !all_seen() {
        tokio::time::sleep(POLL).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = observer.await;

    let timeline = lock(&timeline);
    let mut lags: Vec<Duration> = timeline
        .acked
        .iter()
        .filter_map(|(id, acked)| timeline.seen.get(id).map(|seen| seen.saturating_duration_since(*acked)))
        .collect();
    lags.sort();
    let ms = |q: f64| percentile(&lags, q).as_secs_f64() * 1e3;
    println!(
        "{:>7} {:>9} {:>6} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>7}",
        rate,
        total,
        key_count,
        ms(0.50),
        ms(0.90),
        ms(0.99),
        lags.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        timeline.acked.len() - lags.len()
    );
    Ok(())
}

fn lock(timeline: &Mutex<Timeline>) -> std::sync::MutexGuard<'_, Timeline> {
    timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `count` new multi-Region keys in the primary's region, each replicated and visible in B.
async fn replicated_keys(primary: &mut Client, replica: &Client, count: usize) -> Result<Vec<String>> {
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let create = pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() };
        let metadata = primary.create_key(create).await?.into_inner().key_metadata.context("no metadata")?;
        let replicate = pb::ReplicateKeyRequest {
            key_id: metadata.key_id.clone(),
            replica_region: REPLICA.into(),
            ..Default::default()
        };
        primary.replicate_key(replicate).await.context("ReplicateKey")?;
        keys.push(metadata.key_id);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for key_id in &keys {
        loop {
            let request = pb::DescribeKeyRequest { key_id: key_id.clone(), ..Default::default() };
            if replica.clone().describe_key(request).await.is_ok() {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "replica of {key_id} did not appear in {REPLICA}");
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(keys)
}

/// Polls B for the rotation count of every key with rotations not yet seen there.
async fn observe(
    replica: Client,
    keys: Vec<String>,
    timeline: Arc<Mutex<Timeline>>,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut shown = vec![0usize; keys.len()];
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let owed: Vec<(usize, usize)> = {
            let timeline = lock(&timeline);
            let mut highest = vec![0usize; keys.len()];
            for (key, number) in timeline.acked.keys() {
                highest[*key] = highest[*key].max(*number);
            }
            highest.into_iter().enumerate().filter(|(key, n)| *n > shown[*key]).collect()
        };
        for (key, _) in owed {
            let request = pb::ListKeyRotationsRequest {
                key_id: keys[key].clone(),
                limit: Some(1000),
                ..Default::default()
            };
            let Ok(answer) = replica.clone().list_key_rotations(request).await else { continue };
            let count = answer.into_inner().rotations.len();
            let now = Instant::now();
            let mut timeline = lock(&timeline);
            for number in shown[key] + 1..=count {
                timeline.seen.entry((key, number)).or_insert(now);
            }
            shown[key] = shown[key].max(count);
        }
        tokio::time::sleep(POLL).await;
    }
}
