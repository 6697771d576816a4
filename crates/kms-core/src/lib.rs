//! The KMS domain: key ids and ARNs, key specs and states, the rules of which operation is
//! allowed when, the error type whose variants are AWS's exception names, and the replicated
//! commands with the deterministic logic that applies them. Pure: no I/O, no async.
#![forbid(unsafe_code)]

pub mod bytes;
pub mod calendar;
pub mod command;
pub mod error;
pub mod grant;
pub mod idempotency;
pub mod ids;
pub mod key;
pub mod managed;
pub mod multi_region;
pub mod policy;
pub mod reseal;
pub mod spec;
pub mod state;
pub mod store;

pub use error::{ErrorKind, KmsError, KmsResult};
