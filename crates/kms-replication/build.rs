//! Compiles the Raft transport proto with protox (pure Rust), so no `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let raft_proto = proto_root.join("kms/raft/v1/raft.proto");
    println!("cargo:rerun-if-changed={}", raft_proto.display());

    let fds = protox::compile([&raft_proto], [&proto_root])?;
    // Commands (in log entries, forwarded, or in the earlier build's JSON AppendEntries), their
    // responses and snapshot data may hold sealed key material: these messages' `Debug` (in
    // `codec.rs`) prints lengths only, as `types::Command`'s does.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug([
            "kms.raft.v1.LogEntry",
            "kms.raft.v1.ForwardRequest",
            "kms.raft.v1.Applied",
            "kms.raft.v1.RaftRequest",
            "kms.raft.v1.SnapshotChunk",
        ])
        .compile_fds(fds)?;
    Ok(())
}
