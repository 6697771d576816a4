//! What can go wrong while encrypting or decrypting a message.
//!
//! No variant carries key material or plaintext; a message's key id and encryption context are
//! not secret (KMS logs both) and may appear.

use std::error::Error as StdError;

/// An error of [`encrypt_stream`](super::encrypt_stream) / [`decrypt_stream`](super::decrypt_stream)
/// and their byte-slice forms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The caller's request cannot be encrypted: a chunk size, key id or encryption context
    /// outside the format's limits. Nothing was sent to KMS.
    #[error("invalid envelope request: {0}")]
    InvalidRequest(String),

    /// A KMS call failed. `source` is the data-key source's own error (for the generated tonic
    /// client, a `tonic::Status`; see [`EnvelopeError::kms_status`]).
    #[error("KMS {operation} failed: {source}")]
    Kms {
        /// `GenerateDataKey` or `Decrypt`.
        operation: &'static str,
        source: Box<dyn StdError + Send + Sync + 'static>,
    },

    /// KMS answered, but with something the format cannot use (a data key that is not 32
    /// bytes, a key id the header cannot hold).
    #[error("KMS {operation} returned {problem}")]
    KmsResponse { operation: &'static str, problem: String },

    /// Reading the input or writing the output failed.
    #[error("{doing}: {source}")]
    Io { doing: &'static str, source: std::io::Error },

    /// The input is not a well-formed message (before any authentication could happen).
    #[error("not a valid envelope message: {0}")]
    Malformed(#[from] FormatError),

    /// The header's tag does not verify under the data key KMS returned: a header field was
    /// altered, or the header was put together from parts of different messages.
    #[error(
        "the message header does not authenticate: it was altered, or its encrypted data key belongs to another message"
    )]
    HeaderAuthentication,

    /// A chunk's AES-GCM tag does not verify. Plaintext of the chunks before it has been
    /// written; none of this chunk's.
    #[error(
        "chunk {index} of the message does not authenticate: the message was altered, cut inside a chunk, \
         reordered, or spliced with chunks of another message"
    )]
    ChunkAuthentication { index: u64 },

    /// The input ended after `chunks` complete chunks without the final chunk: the message was
    /// cut at a chunk boundary (or right after its header).
    #[error(
        "the message ends after {chunks} chunk(s) without its final chunk: it was truncated, and the plaintext written so far is incomplete"
    )]
    Truncated { chunks: u64 },

    /// The header names one key, but KMS decrypted the data key with another: the message's
    /// author claimed a key it did not use.
    #[error("the message header names key {header}, but KMS decrypted its data key with key {kms}")]
    KeyMismatch { header: String, kms: String },

    /// The caller expected an encryption context and the message carries a different one.
    #[error("the message's encryption context differs from the expected one in key(s): {}", keys.join(", "))]
    ContextMismatch { keys: Vec<String> },

    /// The plaintext stream was longer than the length the caller declared (which the data-key
    /// cache relies on).
    #[error("the plaintext is longer than the {declared} bytes declared for it")]
    LengthExceeded { declared: u64 },

    /// The plaintext needs more chunks than the format allows at this chunk size.
    #[error(
        "the plaintext needs more than {max} chunks of {chunk_size} bytes, the format's limit; use a larger chunk size"
    )]
    TooManyChunks { max: u64, chunk_size: u32 },

    /// The operating system's random number generator failed (message id).
    #[error("drawing a random message id failed: {0}")]
    Random(String),
}

impl EnvelopeError {
    /// The `tonic::Status` of a failed KMS call, when the data-key source reported one.
    pub fn kms_status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Kms { source, .. } => source.downcast_ref::<tonic::Status>(),
            _ => None,
        }
    }

    /// Whether the input was refused as damaged or forged (as opposed to a failure to reach KMS
    /// or to read or write). KMS refusing the encrypted data key is reported as [`Self::Kms`].
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::HeaderAuthentication
                | Self::ChunkAuthentication { .. }
                | Self::Truncated { .. }
                | Self::KeyMismatch { .. }
                | Self::ContextMismatch { .. }
        )
    }

    pub(crate) fn io(doing: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { doing, source }
    }

    pub(crate) fn kms<E: StdError + Send + Sync + 'static>(
        operation: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| Self::Kms { operation, source: Box::new(source) }
    }
}

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The first four bytes are not the format's magic.
    #[error("it does not start with the envelope magic bytes")]
    BadMagic,
    /// A format version this library does not know.
    #[error("format version {0} is not supported (this library reads version 1)")]
    UnsupportedVersion(u8),
    /// An algorithm suite this library does not know.
    #[error("algorithm suite {0} is not supported (this library reads suite 1)")]
    UnsupportedSuite(u8),
    /// The input ended inside the header.
    #[error("the input ends inside the header, while reading {field}")]
    TruncatedHeader { field: &'static str },
    /// A header field is outside its limits or not in canonical form.
    #[error("header field {field}: {problem}")]
    BadField { field: &'static str, problem: String },
}
