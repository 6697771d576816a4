//! Node-to-node transport: a tonic service (`kms.raft.v1.RaftService`) and its client.
//!
//! Wire format: AppendEntries and (pre-)votes are typed protobuf (`crate::codec`). The snapshot
//! header and TransferLeader, both rare, still carry openraft's serde_json inside `bytes`
//! envelopes, as did every message of earlier builds; the server keeps answering those earlier
//! envelopes for rolling upgrades (see `raft.proto`).

pub(crate) mod addressing;
pub(crate) mod client;
pub(crate) mod peers;
pub(crate) mod server;

#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used, missing_docs)]
pub(crate) mod pb {
    tonic::include_proto!("kms.raft.v1");
}

/// Serializes an openraft message for a serde_json envelope.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("encode raft message: {e}"))
}

/// Deserializes an openraft message from a serde_json envelope. Peer input: errors are
/// reported, never trusted or echoed.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("decode raft message: {e}"))
}

/// Snapshot data is streamed in chunks of this size.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Largest snapshot a node accepts from a peer.
pub(crate) const MAX_SNAPSHOT_BYTES: usize = 1 << 31;
