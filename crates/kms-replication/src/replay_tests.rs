//! Crash-style restart: the state machine loses applied state that was never synced, and the
//! node must rebuild it from the durable log before `Region::open` returns.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kms_core::store::{StateMachineApp, StateRead, StateWrite};
use rocksdb::{IteratorMode, WriteBatch};

use crate::db::{self, CF_SM_DATA, CF_SM_META};
use crate::snapshot::KEY_LAST_APPLIED;
use crate::{RaftTuning, Region, RegionConfig};

/// `<key>=<value>` puts the value; the response is empty.
pub(crate) struct PutApp;

impl StateMachineApp for PutApp {
    fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
        if let Some(eq) = command.iter().position(|b| *b == b'=') {
            state.put(&command[..eq], &command[eq + 1..]);
        }
        Vec::new()
    }
}

pub(crate) fn config(dir: &std::path::Path) -> RegionConfig {
    RegionConfig {
        node_id: 1,
        data_dir: dir.to_path_buf(),
        raft_listen: "127.0.0.1:0".parse().unwrap(),
        raft_advertise: String::new(),
        tuning: RaftTuning {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            ..RaftTuning::default()
        },
        ..RegionConfig::default()
    }
}

/// What an unsynced state-machine tail lost in a crash looks like: no data, nothing applied.
pub(crate) async fn wipe_state_machine(dir: &std::path::Path) {
    // With retry: the stopped region's last database handles are released asynchronously.
    let db = db::open_with_retry(&dir.join("raft")).await.unwrap();
    let data_cf = db::cf(&db, CF_SM_DATA).unwrap();
    let meta_cf = db::cf(&db, CF_SM_META).unwrap();
    let mut batch = WriteBatch::default();
    for item in db.iterator_cf(data_cf, IteratorMode::Start) {
        batch.delete_cf(data_cf, item.unwrap().0);
    }
    batch.delete_cf(meta_cf, KEY_LAST_APPLIED);
    db.write(batch).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_replays_committed_log_into_a_state_machine_that_lost_it() {
    let dir = tempfile::tempdir().unwrap();
    let region = Region::open(config(dir.path()), Arc::new(PutApp)).await.unwrap();
    region.initialize(BTreeMap::from([(1, region.raft_addr().to_string())])).await.unwrap();
    for i in 0..30 {
        region.propose(format!("k{i}=v{i}").into_bytes()).await.unwrap();
    }
    region.shutdown().await.unwrap();
    drop(region);

    wipe_state_machine(dir.path()).await;

    let region = Region::open(config(dir.path()), Arc::new(PutApp)).await.unwrap();
    // No election or read barrier: `open` itself must have replayed the committed log.
    let reader = region.reader();
    for i in 0..30 {
        let value = reader.get(format!("k{i}").as_bytes()).unwrap();
        assert_eq!(value, Some(format!("v{i}").into_bytes()), "key k{i}");
    }
    drop(reader);
    region.shutdown().await.unwrap();
}
