//! The client side of kms.
//!
//! - [`client`]: a typed async client over the gRPC API with deadlines, retries of retriable
//!   errors only, failover across a region's nodes and, for multi-Region keys, across regions.
//! - [`envelope`]: envelope encryption of streams of any size (one data key, AES-256-GCM in
//!   fixed-size authenticated chunks); the format is specified in `docs/envelope-format.md`.
#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod envelope;
