//! The operations, one module per family. Each public method of `Kms` is one AWS operation; it
//! takes the caller and the kms.v1 request, and returns the kms.v1 response or an AWS exception.

mod aliases;
mod asymmetric;
mod create_key_token;
mod crypto;
mod custom_key_stores;
mod grants;
mod import;
mod keys;
mod last_usage;
mod multi_region;
mod policies;
mod rotation;
mod tags;

use kms_core::{KmsError, KmsResult};

/// Validates a `Limit` (1..=max) and applies AWS's default.
pub(crate) fn page_limit(limit: Option<i32>, default: usize, max: usize) -> KmsResult<usize> {
    match limit {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(KmsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: \
             Member must have value between 1 and {max}, inclusive"
        ))),
    }
}

/// The response pair of a listing: `(next_marker, truncated)`.
pub(crate) fn page_end(next_marker: Option<String>) -> (String, bool) {
    match next_marker {
        Some(marker) => (marker, true),
        None => (String::new(), false),
    }
}
