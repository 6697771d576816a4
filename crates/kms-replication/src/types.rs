//! The openraft type configuration of a region. Everything openraft-typed stays in this crate.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One opaque state-machine command, as proposed by the application.
///
/// The bytes may contain sealed key material: `Debug` and `Display` (which openraft uses when it
/// logs entries) print only the length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Command(pub Vec<u8>);

/// The application's response to one applied command (opaque, same logging rule as [`Command`]).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Response(pub Vec<u8>);

macro_rules! opaque_bytes_impls {
    ($ty:ident, $label:literal) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "(len={})"), self.0.len())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        // Base64 rather than serde's default array of numbers: log entries are stored and sent as
        // JSON, where a byte array would cost ~4 bytes per byte.
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map($ty)
                    .map_err(|_| serde::de::Error::custom(concat!("invalid base64 in ", $label)))
            }
        }
    };
}

opaque_bytes_impls!(Command, "Command");
opaque_bytes_impls!(Response, "Response");

/// What Raft knows about a member: where its Raft RPC server listens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RaftNode {
    pub addr: String,
}

impl fmt::Display for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

openraft::declare_raft_types!(
    /// The region's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = RaftNode,
);

pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// Snapshot data is held in memory as one byte string (see `snapshot.rs` for the format).
pub type SnapshotData = Vec<u8>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// The Raft handle of a region node.
pub(crate) type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
