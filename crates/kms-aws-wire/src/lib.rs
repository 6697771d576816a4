//! The AWS JSON 1.1 wire protocol of kms, with no I/O: what the AWS-compatible endpoint
//! (`kms_api::aws`) needs to read a request and write an answer, kept apart from the service so
//! that it can be tested and fuzzed on its own.
//!
//! - [`names`]: AWS member and enum names <-> kms.v1 names
//! - [`codec`]: JSON <-> kms.v1 messages
//! - [`sigv4`], [`amz_date`], [`credentials`]: authentication
//! - [`error`]: AWS error bodies and statuses
#![forbid(unsafe_code)]

pub mod amz_date;
pub mod codec;
pub mod credentials;
pub mod error;
pub mod names;
pub mod sigv4;

pub use codec::Codec;
pub use credentials::{Credentials, DEV_ACCESS_KEY_ID, DEV_PRINCIPAL, DEV_SECRET_ACCESS_KEY};
pub use error::AwsError;
