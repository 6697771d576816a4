//! The one error type of this crate. Messages never carry key material, plaintext, or which
//! integrity check failed: the caller maps variants to AWS exceptions and may show the message
//! to a client.

/// What went wrong in a cryptographic operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext blob failed to parse or to authenticate (wrong key, wrong context, tampered,
    /// truncated). One message for every cause, so that a caller probing with modified blobs
    /// learns nothing about which check rejected it.
    #[error("ciphertext is invalid or the encryption context does not match")]
    InvalidCiphertext,

    /// The caller passed something this crate cannot work with (a bad length, an oversize
    /// field). The string describes the input, never its secret contents.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A failure that is not the caller's fault: the OS random generator failed, sealed key
    /// material did not authenticate under the root key, a primitive refused its input.
    #[error("internal cryptographic error: {0}")]
    Internal(String),
}
