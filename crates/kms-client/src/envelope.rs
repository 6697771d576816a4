//! Envelope encryption of streams of any size.
//!
//! Each message gets a data key from KMS (GenerateDataKey, AES_256), or from an optional
//! [cache](crate::cache); the data is encrypted with AES-256-GCM in fixed-size chunks under a
//! key derived from that data key, and the message starts with a header that holds everything
//! needed to decrypt it again with one KMS Decrypt call: the encrypted data key, the KMS key's
//! ARN and the encryption context. `docs/envelope-format.md` specifies the bytes.
//!
//! ```no_run
//! # async fn example(channel: tonic::transport::Channel) -> Result<(), Box<dyn std::error::Error>> {
//! use kms_client::envelope::{self, DecryptOptions, EncryptOptions, EncryptionContext};
//! use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
//!
//! let kms = KeyManagementServiceClient::new(channel);
//! let context: EncryptionContext = [("app", "billing")].into_iter().collect();
//!
//! // A file of any size, one chunk in memory at a time.
//! let options = EncryptOptions::new("alias/billing").with_context(context.clone());
//! let input = tokio::fs::File::open("report.pdf").await?;
//! let output = tokio::fs::File::create("report.pdf.kmse").await?;
//! envelope::encrypt_stream(&kms, &options, input, output).await?;
//!
//! // Or in memory; decryption checks the context it expects.
//! let message = envelope::encrypt(&kms, &options, b"a small secret").await?;
//! let expect = DecryptOptions::new().with_context(context);
//! let (plaintext, summary) = envelope::decrypt(&kms, &expect, &message).await?;
//! assert_eq!(&plaintext[..], b"a small secret");
//! println!("encrypted under {}", summary.key_id);
//! # Ok(()) }
//! ```
//!
//! # What is protected
//!
//! - Confidentiality and integrity of the data, and integrity of the header (key id, context,
//!   chunk size, encrypted data key) — against anyone without decrypt access to the KMS key.
//! - Truncation (at any byte, at a chunk boundary, right after the header), reordering,
//!   duplication and removal of chunks, and chunks spliced in from another message (even one
//!   encrypted with the same cached data key): all refused.
//! - A message decrypts to one plaintext only: the header tag commits to the data key.
//! - A header that names a KMS key other than the one that really holds its data key is
//!   refused ([`EnvelopeError::KeyMismatch`]).
//!
//! Decryption is streaming: plaintext of a chunk is released once that chunk authenticates,
//! before the rest of the message has been seen. A caller that must not act on a partial
//! plaintext writes it somewhere provisional and commits only when `decrypt_stream` returns
//! `Ok` (kmsctl writes a temporary file and renames it).
//!
//! Not protected: the message's length (to within a chunk's tag), the key id and the
//! encryption context, which are readable by anyone holding the message. Put no secrets in a
//! context.
//!
//! # Key material
//!
//! Plaintext data keys live only in `Zeroizing` buffers ([`DataKey`], [`DecryptedDataKey`]),
//! the derived keys in zeroize-on-drop types; none implements `Display`, their `Debug` prints
//! `<redacted>`, and no error message contains key material or plaintext. Copies made below
//! this crate (tonic's and prost's receive buffers) are outside its reach.

mod context;
mod error;
mod format;
mod keys;
mod source;
mod stream;
#[cfg(test)]
mod tests;

pub use context::EncryptionContext;
pub use error::{EnvelopeError, FormatError};
pub use format::{
    CHUNK_TAG_LEN, DEFAULT_CHUNK_SIZE, HEADER_TAG_LEN, MAGIC, MAX_CHUNK_SIZE, MAX_CHUNKS, MAX_CONTEXT_LEN,
    MAX_ENCRYPTED_DATA_KEY_LEN, MAX_KEY_ID_LEN, MESSAGE_ID_LEN, SUITE, VERSION,
};
pub use keys::{CONTENT_KEY_LABEL, DATA_KEY_LEN, HEADER_KEY_LABEL};
pub use source::{DataKey, DataKeySource, DecryptedDataKey};
pub use stream::{
    DecryptOptions, DecryptSummary, EncryptOptions, EncryptSummary, decrypt, decrypt_stream, encrypt,
    encrypt_stream, validate_chunk_size,
};
