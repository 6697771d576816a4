//! Region tests over real RocksDB and real loopback TCP, all in one process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod common;
mod large_snapshot;
mod restart;
mod snapshot;
