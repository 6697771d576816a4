//! A toy key-value application and helpers to run region nodes in one process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_core::store::{StateMachineApp, StateRead, StateWrite};
use kms_replication::{RaftTuning, Region, RegionConfig, RegionStatus};

/// Commands are text: `put <key> <value>`, or `append <key> <suffix>` (which reads the current
/// value, so it checks that a command sees what the previous one wrote). The response is the
/// previous value, or `-` if there was none.
///
/// A batched put, `mput\n<key> <value>\n<key> <value>...`, writes many pairs in one command (to
/// build a large state quickly); its response is the number of pairs written.
pub struct KvApp;

impl StateMachineApp for KvApp {
    fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
        if let Some(lines) = command.strip_prefix(b"mput\n") {
            let mut count = 0usize;
            for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let Some(space) = line.iter().position(|b| *b == b' ') else {
                    return b"error: malformed mput line".to_vec();
                };
                state.put(&line[..space], &line[space + 1..]);
                count += 1;
            }
            return count.to_string().into_bytes();
        }
        let text = String::from_utf8_lossy(command);
        let mut parts = text.splitn(3, ' ');
        let (op, key, value) = (parts.next(), parts.next(), parts.next());
        let (Some(op), Some(key), Some(value)) = (op, key, value) else {
            return b"error: malformed".to_vec();
        };
        let previous = state.get(key.as_bytes()).unwrap_or(None);
        let new_value = match op {
            "put" => value.as_bytes().to_vec(),
            "append" => [previous.clone().unwrap_or_default(), value.as_bytes().to_vec()].concat(),
            _ => return b"error: unknown op".to_vec(),
        };
        state.put(key.as_bytes(), &new_value);
        previous.unwrap_or_else(|| b"-".to_vec())
    }
}

/// A node of the calling test's region. The tests run in parallel in one process, each on its
/// own thread, named after the test: that name is the region's, so a node never takes Raft
/// messages a node of another test sends to a port that has changed hands.
pub fn config(node_id: u64, dir: &Path) -> RegionConfig {
    RegionConfig {
        region: std::thread::current().name().unwrap_or("test").to_string(),
        node_id,
        data_dir: dir.to_path_buf(),
        raft_listen: "127.0.0.1:0".parse().unwrap(),
        raft_advertise: String::new(),
        tuning: RaftTuning {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            ..RaftTuning::default()
        },
        rpc_timeout_ms: 1000,
        tls: None,
    }
}

pub async fn open(config: RegionConfig) -> Region {
    log_to_test_output();
    Region::open(config, Arc::new(KvApp)).await.unwrap()
}

pub fn members(nodes: &[&Region]) -> BTreeMap<u64, String> {
    nodes.iter().map(|n| (n.node_id(), n.raft_addr().to_string())).collect()
}

pub fn get(region: &Region, key: &str) -> Option<String> {
    region.reader().get(key.as_bytes()).unwrap().map(|v| String::from_utf8(v).unwrap())
}

/// Polls `region.status()` until `pred` holds, panicking after `timeout`.
pub async fn wait_status(
    region: &Region,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&RegionStatus) -> bool,
) -> RegionStatus {
    let start = Instant::now();
    loop {
        let status = region.status();
        if pred(&status) {
            return status;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With RUST_LOG set, the nodes' logs go to the test's captured output (shown when it fails).
fn log_to_test_output() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
