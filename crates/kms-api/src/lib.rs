//! The KMS service layer and its front ends.
//!
//! [`Kms`] has one method per AWS KMS operation, taking the authenticated [`Caller`] and the
//! kms.v1 request. Front ends are thin adapters onto it: [`grpc`] serves the native gRPC API;
//! the AWS JSON endpoint and the Kubernetes KMS plugin come next and reuse the same methods, so
//! the semantics are written once.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authn;
mod authz;
pub mod aws;
mod caller;
mod convert;
mod derived_cache;
mod engine;
pub mod grpc;
mod kms;
/// The Kubernetes KMS v2 plugin service (kmsd serves it on a unix socket).
pub mod kubernetes;
mod maintenance;
pub mod metrics;
mod operations;
mod ops;
pub mod regions;
mod reseal;
mod service_keys;
/// Per-principal request rate limits (ThrottlingException).
pub mod throttle;
mod unsealed;
mod usage;

pub use caller::Caller;
pub use kms::{Clock, Kms, SystemClock};
