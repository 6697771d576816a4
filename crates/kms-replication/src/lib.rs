//! Replication of one KMS region: a Raft group (openraft) over RocksDB with a tonic transport.
//!
//! The public API ([`Region`], [`RegionConfig`], [`RegionStatus`], [`ReplicationError`]) uses
//! plain Rust types only; every openraft type stays inside this crate so an openraft upgrade
//! touches nothing else. The application logic comes in through
//! [`kms_core::store::StateMachineApp`]; this crate never interprets command bytes and never logs
//! them (only lengths and log indices).
//!
//! Layout: `types` (openraft type config), `db` (RocksDB and its column families),
//! `log_store`, `state_machine`, `snapshot`, `reader`, `network/{peers,client,server}`,
//! `trace_context` (W3C trace context across forwarded calls), `region` (lifecycle, status, membership), `leader` (propose / read barrier from any node),
//! `admin` (membership and leadership changes from any node, handed to the leader; the status of
//! every member) and `admin_service` (the client-facing `kms.admin.v1.ClusterAdmin` gRPC service
//! that kmsd serves on its client port).

#![forbid(unsafe_code)]

mod admin;
mod admin_service;
mod codec;
mod config;
mod db;
mod error;
mod leader;
mod log_store;
mod network;
mod reader;
mod region;
mod snapshot;
mod state_machine;
pub mod trace_context;
mod types;

pub use admin::{ClusterChange, ClusterStatus, MemberStatus, MembershipView, NodeReport};
pub use admin_service::ClusterAdminService;
pub use config::{PeerCheck, RaftTuning, RegionConfig, TransportTls};
pub use error::ReplicationError;
pub use network::addressing::check_region_name;
pub use reader::RegionReader;
pub use region::{NodeState, Region, RegionStatus};

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod upgrade_tests;
