//! openraft's storage conformance suite against the RocksDB log store and state machine.

use std::sync::Arc;

use kms_core::store::{StateMachineApp, StateWrite};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt as _;

use crate::db;
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::types::TypeConfig;

/// Records each command under its own bytes; enough for the suite, which checks Raft metadata.
struct EchoApp;

impl StateMachineApp for EchoApp {
    fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
        state.put(command, command);
        command.to_vec()
    }
}

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let read_err = |e: &dyn std::fmt::Display| StorageError::read(TypeConfig::err_from_string(e));
        let dir = tempfile::tempdir().map_err(|e| read_err(&e))?;
        let db = db::open(dir.path()).map_err(|e| read_err(&e))?;
        let log = LogStore::new(db.clone()).map_err(|e| read_err(&e))?;
        let sm = StateMachine::new(db, Arc::new(EchoApp));
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_store_passes_openraft_conformance_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(RocksBuilder).await
}
