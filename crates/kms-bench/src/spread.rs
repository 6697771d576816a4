//! `kms-bench spread`: what a request costs each node of a 3-node region when clients spread
//! Encrypt over all of them. Followers answer crypto from their own applied state (no Raft round
//! trip), so their CPU time per request should match the leader's; this shows it with the
//! kernel's per-process accounting (user + system time of each kmsd) over the run.

use crate::region::{SpawnedRegion, lazy_client};
use anyhow::{Context, Result};
use kms_proto::v1 as pb;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub async fn spread(kmsd: &Path, clients: usize, duration: Duration, size: usize) -> Result<()> {
    let region = SpawnedRegion::start(kmsd, 3).await?;
    let leader = region.wait_leader(Duration::from_secs(60)).await?;
    region.wait_converged(Duration::from_secs(60)).await?;
    let mut admin = lazy_client(&region.endpoint(leader), Duration::from_secs(10))?;
    let key = admin
        .create_key(pb::CreateKeyRequest::default())
        .await
        .context("CreateKey")?
        .into_inner()
        .key_metadata
        .context("CreateKey answered without metadata")?
        .key_id;
    let ids = region.ids();
    let served: Arc<Vec<AtomicU64>> = Arc::new(ids.iter().map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    // Warm every node (connections, the key's record and material) before the measured run.
    for id in &ids {
        let mut client = lazy_client(&region.endpoint(*id), Duration::from_secs(10))?;
        client.encrypt(request(&key, size)).await.with_context(|| format!("Encrypt on node {id}"))?;
    }
    let cpu_before: Vec<f64> = ids.iter().map(|id| region.cpu_seconds(*id)).collect::<Result<_>>()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients.max(ids.len()) {
        let slot = c % ids.len();
        let mut client = lazy_client(&region.endpoint(ids[slot]), Duration::from_secs(10))?;
        let (served, stop, key) = (served.clone(), stop.clone(), key.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.encrypt(request(&key, size)).await.context("Encrypt")?;
                served[slot].fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("Encrypt {size} B spread over a 3-node region, {clients} clients, {elapsed:.1} s");
    println!("{:>6} {:>9} {:>10} {:>10} {:>14}", "node", "role", "requests", "CPU s", "CPU µs/request");
    for (i, id) in ids.iter().enumerate() {
        let cpu = region.cpu_seconds(*id)? - cpu_before[i];
        let requests = served[i].load(Ordering::Relaxed);
        let role = if *id == leader { "leader" } else { "follower" };
        let per_request = cpu * 1e6 / requests.max(1) as f64;
        println!("{id:>6} {role:>9} {requests:>10} {cpu:>10.2} {per_request:>14.1}");
    }
    Ok(())
}

fn request(key: &str, size: usize) -> pb::EncryptRequest {
    pb::EncryptRequest { key_id: key.to_string(), plaintext: vec![7; size], ..Default::default() }
}
