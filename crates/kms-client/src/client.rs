//! The typed gRPC client (see the crate documentation).
