//! Snapshot catch-up at KMS scale: a state of 100,000 entries of key-record size (~700 bytes),
//! built with batched puts on a one-node region whose log is purged after every snapshot, so a
//! learner added afterwards can only catch up by installing a snapshot. Measures the snapshot
//! size, the time to build it, the time to transfer and install it, the time a restart of the
//! learner takes to load it, and the peak memory of the process.
//!
//! `KMS_SNAPSHOT_KEYS` overrides the number of entries (default 100,000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kms_core::store::StateRead;
use kms_replication::{RaftTuning, Region, RegionConfig};

use crate::common::{config, open, wait_status};

const DEFAULT_KEYS: usize = 100_000;
/// Puts per proposed command.
const BATCH: usize = 1000;
/// Length of each value: the size of a JSON `KeyRecord` with one sealed material version.
const VALUE_LEN: usize = 700;

fn large(node_id: u64, dir: &std::path::Path, snapshot_every: u64) -> RegionConfig {
    let base = config(node_id, dir);
    RegionConfig {
        tuning: RaftTuning {
            snapshot_logs_since_last: snapshot_every,
            // Purge everything a snapshot covers: a new node can only catch up by snapshot.
            logs_kept_after_snapshot: 0,
            // The learner's catch-up is awaited below with its own (measured) deadline.
            request_timeout_ms: 120_000,
            ..base.tuning.clone()
        },
        ..base
    }
}

fn key(i: usize) -> String {
    format!("k/{:08x}-1111-4222-8333-{:012x}", i, i.wrapping_mul(2_654_435_761) & 0xffff_ffff_ffff)
}

/// A deterministic value of `VALUE_LEN` base64-alphabet characters that does not compress (like
/// the sealed material in a real key record).
fn value(i: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = format!("{{\"key_id\":\"{}\",\"material\":\"", &key(i)[2..]).into_bytes();
    while out.len() < VALUE_LEN - 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(ALPHABET[(x & 63) as usize]);
    }
    out.extend_from_slice(b"\"}");
    out
}

/// Peak resident set size of this process, in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { dir_size(&entry.path()) } else { meta.len() };
    }
    total
}

/// Records when node `region` first applied each index at least, and when each new snapshot
/// index appeared, so a snapshot's build time is (snapshot seen) - (its last index applied).
fn watch(region: Region, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(u64, Duration)>> {
    tokio::spawn(async move {
        let mut applied_at: BTreeMap<u64, Instant> = BTreeMap::new();
        let mut builds = Vec::new();
        let mut last_snapshot = None;
        while !stop.load(Ordering::Relaxed) {
            let s = region.status();
            let now = Instant::now();
            if let Some(a) = s.last_applied_index {
                applied_at.entry(a).or_insert(now);
            }
            if s.snapshot_index != last_snapshot {
                if let Some(index) = s.snapshot_index {
                    let applied = applied_at.range(index..).next().map(|(_, t)| *t).unwrap_or(now);
                    builds.push((index, now - applied.min(now)));
                }
                last_snapshot = s.snapshot_index;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        builds
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_catches_up_by_snapshot_of_100k_key_records() {
    let keys: usize =
        std::env::var("KMS_SNAPSHOT_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_KEYS);
    let commands = keys.div_ceil(BATCH) as u64;
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let test_start = Instant::now();

    // One snapshot once all batches are applied (the policy counts every entry: the initial
    // membership and the leader's blank entry too); a few fillers below push it past the last.
    let node1 = open(large(1, dir1.path(), commands + 2)).await;
    node1.initialize(BTreeMap::from([(1, node1.raft_addr().to_string())])).await.unwrap();
    wait_status(&node1, "leader", Duration::from_secs(10), |s| s.is_leader).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(node1.clone(), stop.clone());

    // Build the state: `commands` batched puts.
    let load_start = Instant::now();
    let mut command_bytes = 0usize;
    for batch in 0..commands as usize {
        let mut command = b"mput\n".to_vec();
        for i in batch * BATCH..((batch + 1) * BATCH).min(keys) {
            command.extend_from_slice(key(i).as_bytes());
            command.push(b' ');
            command.extend_from_slice(&value(i));
            command.push(b'\n');
        }
        command_bytes += command.len();
        let written = node1.propose(command).await.unwrap();
        let expected = ((batch + 1) * BATCH).min(keys) - batch * BATCH;
        assert_eq!(written, expected.to_string().into_bytes(), "batch {batch}");
    }
    let load_time = load_start.elapsed();
    let last_load_index = node1.status().last_applied_index.unwrap();

    // Small commands until a snapshot covers every batch (the policy counts all entries).
    let mut fillers = 0;
    let snapshot_wait = Instant::now();
    while node1.status().snapshot_index.is_none_or(|i| i < last_load_index) {
        assert!(snapshot_wait.elapsed() < Duration::from_secs(120), "no snapshot: {:?}", node1.status());
        if node1.status().last_applied_index.unwrap() < last_load_index + commands {
            node1.propose(format!("put filler {fillers}").into_bytes()).await.unwrap();
            fillers += 1;
            // Slowly: the snapshot is built in the background meanwhile.
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let s1 = node1.status();
    stop.store(true, Ordering::Relaxed);
    let builds = watcher.await.unwrap();
    let rss_after_build = peak_rss_mib();

    // A fresh node joins as a learner: the log it would need is purged.
    let node2 = open(large(2, dir2.path(), commands)).await;
    let target = node1.status().last_applied_index.unwrap();
    let catch_up_start = Instant::now();
    node1.add_learner(2, node2.raft_addr().to_string()).await.unwrap();
    let s2 = wait_status(&node2, "node 2 caught up", Duration::from_secs(180), |s| {
        s.last_applied_index.is_some_and(|a| a >= target)
    })
    .await;
    let catch_up = catch_up_start.elapsed();
    let rss_after_install = peak_rss_mib();
    assert!(
        s2.snapshot_index.is_some_and(|i| i >= last_load_index),
        "node 2 did not catch up by snapshot: {s2:?}"
    );

    // Every entry is on node 2, byte for byte; the snapshot size follows from its format
    // (magic, then u32 length + bytes for every key and value, including the reserved key).
    let check_start = Instant::now();
    let all = node2.reader().scan(b"", b"\xff", usize::MAX).unwrap();
    let snapshot_bytes: usize = 8 + all.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>();
    let stored: BTreeMap<&[u8], &[u8]> = all.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    for i in 0..keys {
        let got = stored.get(key(i).as_bytes()).unwrap_or_else(|| panic!("entry {i} missing on node 2"));
        assert_eq!(*got, value(i).as_slice(), "entry {i} differs on node 2");
    }
    assert_eq!(stored.get(&b"filler"[..]).map(|v| v.to_vec()), Some(format!("{}", fillers - 1).into_bytes()));
    let check_time = check_start.elapsed();
    drop(stored);
    let data_entries = all.len();
    drop(all);

    // The installed snapshot survives a restart of node 2 and is loaded from RocksDB again.
    node2.shutdown().await.unwrap();
    drop(node2);
    let reopen_start = Instant::now();
    let node2 = open(large(2, dir2.path(), commands)).await;
    let reopen = reopen_start.elapsed();
    assert!(node2.status().snapshot_index.is_some_and(|i| i >= last_load_index));
    assert_eq!(node2.reader().get(key(keys - 1).as_bytes()).unwrap(), Some(value(keys - 1)));
    let disk1 = dir_size(dir1.path());
    let disk2 = dir_size(dir2.path());

    println!(
        "large snapshot: {keys} entries of {VALUE_LEN} B in {commands} batched commands \
         ({:.1} MiB of commands) loaded in {load_time:?} ({:.0} entries/s); {fillers} filler puts; \
         snapshot builds on node 1 (index, time from applying its last entry to its appearance): \
         {builds:?}; node 1 snapshot index {:?}, last applied {:?}; \
         snapshot size {snapshot_bytes} B ({:.1} MiB, {data_entries} entries incl. reserved); \
         learner catch-up (add_learner -> applied, i.e. read from RocksDB + send in 1 MiB chunks + \
         receive + decode + install) {catch_up:?}; node 2 snapshot index {:?}; verifying all entries on node 2 \
         {check_time:?}; node 2 reopen (snapshot loaded from RocksDB) {reopen:?}; RocksDB on disk: \
         node 1 {:.1} MiB, node 2 {:.1} MiB; peak RSS of the test process {rss_after_build} MiB after \
         the build, {rss_after_install} MiB after the install; test took {:?}",
        command_bytes as f64 / 1048576.0,
        keys as f64 / load_time.as_secs_f64(),
        s1.snapshot_index,
        s1.last_applied_index,
        snapshot_bytes as f64 / 1048576.0,
        s2.snapshot_index,
        disk1 as f64 / 1048576.0,
        disk2 as f64 / 1048576.0,
        test_start.elapsed()
    );
    node2.shutdown().await.unwrap();
    node1.shutdown().await.unwrap();
}
