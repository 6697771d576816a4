//! Encryption and decryption of whole messages over `AsyncRead` / `AsyncWrite`, one chunk in
//! memory at a time.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::context::EncryptionContext;
use super::error::EnvelopeError;
use super::format::{
    self, CHUNK_TAG_LEN, DEFAULT_CHUNK_SIZE, HEADER_TAG_LEN, Header, MESSAGE_ID_LEN, check_chunk_size,
};
use super::keys::{Chunks, MessageKeys};
use super::source::{DataKey, DataKeySource, same_key};
use crate::cache::DataKeyCache;

/// What to encrypt under: the KMS key, the encryption context, and how.
#[derive(Debug, Clone)]
pub struct EncryptOptions {
    key_id: String,
    context: EncryptionContext,
    chunk_size: u32,
    plaintext_length: Option<u64>,
    cache: Option<Arc<DataKeyCache>>,
}

impl EncryptOptions {
    /// Encrypt under `key_id` (key id, key ARN, alias name or alias ARN), with an empty
    /// encryption context and [`DEFAULT_CHUNK_SIZE`](super::DEFAULT_CHUNK_SIZE).
    pub fn new(key_id: impl Into<String>) -> Self {
        Self {
            key_id: key_id.into(),
            context: EncryptionContext::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            plaintext_length: None,
            cache: None,
        }
    }

    /// The encryption context: sent to KMS with GenerateDataKey and written into the header.
    #[must_use]
    pub fn with_context(mut self, context: EncryptionContext) -> Self {
        self.context = context;
        self
    }

    /// Plaintext bytes per chunk, 1 to [`MAX_CHUNK_SIZE`](super::MAX_CHUNK_SIZE). A decryptor
    /// needs about this much memory; larger chunks cost fewer tags and calls.
    #[must_use]
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Declares the plaintext's length (an upper bound). Encryption fails if the input is
    /// longer. Required for the data-key cache to be used.
    #[must_use]
    pub fn with_plaintext_length(mut self, length: u64) -> Self {
        self.plaintext_length = Some(length);
        self
    }

    /// Takes data keys from `cache` (and stores fresh ones in it) for messages whose length is
    /// declared; see [`crate::cache`].
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<DataKeyCache>) -> Self {
        self.cache = Some(cache);
        self
    }
}

/// What the caller may require of a message before it is decrypted.
#[derive(Debug, Clone, Default)]
pub struct DecryptOptions {
    key_id: Option<String>,
    context: Option<EncryptionContext>,
}

impl DecryptOptions {
    /// No requirement beyond authenticity: the summary says which key and context were used.
    pub fn new() -> Self {
        Self::default()
    }

    /// Require the data key to be under `key_id` (key id, ARN, alias): passed to KMS Decrypt as
    /// `KeyId`, which refuses any other key (`IncorrectKeyException`).
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Require the message's encryption context to be exactly `context`; checked before KMS
    /// is called.
    #[must_use]
    pub fn with_context(mut self, context: EncryptionContext) -> Self {
        self.context = Some(context);
        self
    }
}

/// What an encryption produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptSummary {
    /// ARN of the KMS key the data key is encrypted under.
    pub key_id: String,
    /// Plaintext bytes read.
    pub plaintext_bytes: u64,
    /// Message bytes written (header and chunks).
    pub message_bytes: u64,
    /// Chunks written, the final one included.
    pub chunks: u64,
    /// Whether the data key came from the cache instead of GenerateDataKey.
    pub cached_data_key: bool,
}

/// What a decryption found. Everything here was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptSummary {
    /// ARN of the KMS key the message was encrypted under (as the header names it; KMS's
    /// answer was checked against it).
    pub key_id: String,
    /// The message's encryption context.
    pub context: EncryptionContext,
    /// Plaintext bytes written.
    pub plaintext_bytes: u64,
    /// The chunk size the message was written with.
    pub chunk_size: u32,
    /// Chunks read, the final one included.
    pub chunks: u64,
}

/// Encrypts everything `reader` yields into one message written to `writer`, then flushes it.
///
/// One GenerateDataKey call (none on a cache hit), then one chunk in memory at a time. On error
/// the writer holds an incomplete message that will not decrypt; discard it.
pub async fn encrypt_stream<S, R, W>(
    source: &S,
    options: &EncryptOptions,
    mut reader: R,
    mut writer: W,
) -> Result<EncryptSummary, EnvelopeError>
where
    S: DataKeySource,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Check the request against the format's limits before spending a KMS call on it.
    let mut header = Header {
        chunk_size: options.chunk_size,
        message_id: random_message_id()?,
        key_id: options.key_id.clone(),
        context: options.context.clone(),
        // A one-byte stand-in until KMS has answered: the check is of the other fields.
        encrypted_data_key: vec![0],
    };
    header.encode()?;

    let (data_key, cached_data_key) = data_key_for(source, options).await?;
    header.key_id = data_key.key_id.clone();
    header.encrypted_data_key = data_key.ciphertext_blob.clone();
    let mut header_bytes = header.encode().map_err(|e| match e {
        EnvelopeError::InvalidRequest(problem) => {
            EnvelopeError::KmsResponse { operation: "GenerateDataKey", problem }
        }
        other => other,
    })?;
    let keys = MessageKeys::derive(&data_key.plaintext, &header.message_id, "GenerateDataKey")?;
    drop(data_key);
    let tag = keys.header_tag(&header_bytes);
    header_bytes.extend_from_slice(&tag);
    let mut chunks = keys.into_chunks(&header_bytes);
    writer.write_all(&header_bytes).await.map_err(EnvelopeError::io("writing the message header"))?;

    let plaintext_bytes = seal_chunks(&mut chunks, options, &mut reader, &mut writer).await?;
    writer.flush().await.map_err(EnvelopeError::io("flushing the message"))?;
    let message_bytes = header_bytes.len() as u64 + plaintext_bytes + chunks.count() * CHUNK_TAG_LEN as u64;
    Ok(EncryptSummary {
        key_id: header.key_id,
        plaintext_bytes,
        message_bytes,
        chunks: chunks.count(),
        cached_data_key,
    })
}

/// A data key for this message: from the cache when one is configured and the length is
/// declared, else from GenerateDataKey (and then cached). Also says whether it was cached.
async fn data_key_for<S: DataKeySource>(
    source: &S,
    options: &EncryptOptions,
) -> Result<(DataKey, bool), EnvelopeError> {
    let cache = options.cache.as_deref().zip(options.plaintext_length);
    if let Some((cache, length)) = cache
        && let Some(key) = cache.get(&options.key_id, &options.context, length)
    {
        return Ok((key, true));
    }
    let key = source
        .generate_data_key(&options.key_id, &options.context)
        .await
        .map_err(EnvelopeError::kms("GenerateDataKey"))?;
    if let Some((cache, length)) = cache {
        cache.put(&options.key_id, &options.context, &key, length);
    }
    Ok((key, false))
}

/// Reads, seals and writes chunks until the input ends; returns the plaintext length.
async fn seal_chunks<R, W>(
    chunks: &mut Chunks,
    options: &EncryptOptions,
    reader: &mut R,
    writer: &mut W,
) -> Result<u64, EnvelopeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let chunk_size = options.chunk_size as usize;
    // Plaintext, then (in place) ciphertext and tag: wiped when dropped.
    let mut buf = Zeroizing::new(vec![0u8; chunk_size + CHUNK_TAG_LEN]);
    let mut total: u64 = 0;
    loop {
        let n = format::read_full(reader, &mut buf[..chunk_size], "reading the plaintext").await?;
        total += n as u64;
        if let Some(declared) = options.plaintext_length
            && total > declared
        {
            return Err(EnvelopeError::LengthExceeded { declared });
        }
        // A full chunk is never the last one: the final chunk is always shorter than the chunk
        // size (possibly empty), so the decryptor knows it from its length.
        let last = n < chunk_size;
        let tag = chunks.seal(&mut buf[..n], last, options.chunk_size)?;
        buf[n..n + CHUNK_TAG_LEN].copy_from_slice(&tag);
        writer
            .write_all(&buf[..n + CHUNK_TAG_LEN])
            .await
            .map_err(EnvelopeError::io("writing the message"))?;
        if last {
            return Ok(total);
        }
    }
}

/// Decrypts the message `reader` yields, writing each chunk's plaintext to `writer` once that
/// chunk has authenticated, then flushes it.
///
/// Memory is bounded by the message's chunk size (at most 16 MiB) plus its header. Plaintext
/// written before an error belongs to chunks that authenticated, but the message as a whole did
/// not (it may have been truncated or altered further on): only `Ok` means the output is
/// complete and authentic.
pub async fn decrypt_stream<S, R, W>(
    source: &S,
    options: &DecryptOptions,
    mut reader: R,
    mut writer: W,
) -> Result<DecryptSummary, EnvelopeError>
where
    S: DataKeySource,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let read = format::read_header(&mut reader).await?;
    let header = read.header;
    if let Some(expected) = &options.context
        && *expected != header.context
    {
        return Err(EnvelopeError::ContextMismatch { keys: expected.differing_keys(&header.context) });
    }
    let data_key = source
        .decrypt(&header.encrypted_data_key, &header.context, options.key_id.as_deref())
        .await
        .map_err(EnvelopeError::kms("Decrypt"))?;
    let keys = MessageKeys::derive(&data_key.plaintext, &header.message_id, "Decrypt")?;
    keys.verify_header_tag(&read.authenticated, &read.tag)?;
    // Only now is the header authentic, so only now does its key id mean anything.
    if !same_key(&header.key_id, &data_key.key_id) {
        return Err(EnvelopeError::KeyMismatch { header: header.key_id, kms: data_key.key_id.clone() });
    }
    drop(data_key);
    let mut header_bytes = read.authenticated;
    header_bytes.extend_from_slice(&read.tag);
    let mut chunks = keys.into_chunks(&header_bytes);

    let plaintext_bytes = open_chunks(&mut chunks, header.chunk_size, &mut reader, &mut writer).await?;
    writer.flush().await.map_err(EnvelopeError::io("flushing the plaintext"))?;
    Ok(DecryptSummary {
        key_id: header.key_id,
        context: header.context,
        plaintext_bytes,
        chunk_size: header.chunk_size,
        chunks: chunks.count(),
    })
}

/// Reads, opens and writes chunks until the final one; returns the plaintext length.
async fn open_chunks<R, W>(
    chunks: &mut Chunks,
    chunk_size: u32,
    reader: &mut R,
    writer: &mut W,
) -> Result<u64, EnvelopeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let full = chunk_size as usize + CHUNK_TAG_LEN;
    // Ciphertext, then (in place) plaintext: wiped when dropped.
    let mut buf = Zeroizing::new(vec![0u8; full]);
    let mut total: u64 = 0;
    loop {
        let n = format::read_full(reader, &mut buf[..], "reading the message").await?;
        if n < CHUNK_TAG_LEN {
            // Not even a tag: the input ended where a chunk (at least the final one) was due.
            // A stub of 1 to 15 bytes is a chunk cut short; either way the message is cut.
            return Err(if n == 0 {
                EnvelopeError::Truncated { chunks: chunks.count() }
            } else {
                EnvelopeError::ChunkAuthentication { index: chunks.count() }
            });
        }
        // Only the final chunk is shorter than a full one; a chunk cut short is therefore
        // opened as final, and fails, since it was sealed as not final.
        let last = n < full;
        let len = chunks.open(&mut buf[..n], last)?;
        writer.write_all(&buf[..len]).await.map_err(EnvelopeError::io("writing the plaintext"))?;
        total += len as u64;
        if last {
            return Ok(total);
        }
    }
}

fn random_message_id() -> Result<[u8; MESSAGE_ID_LEN], EnvelopeError> {
    let mut id = [0u8; MESSAGE_ID_LEN];
    getrandom::fill(&mut id).map_err(|e| EnvelopeError::Random(e.to_string()))?;
    Ok(id)
}

/// Encrypts a byte slice into one message.
pub async fn encrypt<S: DataKeySource>(
    source: &S,
    options: &EncryptOptions,
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let options = options.clone().with_plaintext_length(plaintext.len() as u64);
    let mut message = Vec::with_capacity(message_len_hint(plaintext.len(), options.chunk_size));
    encrypt_stream(source, &options, plaintext, &mut message).await?;
    Ok(message)
}

/// Decrypts one message held in memory. The plaintext is returned in a buffer that is wiped
/// when dropped, with the summary of what was authenticated.
pub async fn decrypt<S: DataKeySource>(
    source: &S,
    options: &DecryptOptions,
    message: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, DecryptSummary), EnvelopeError> {
    // The plaintext is shorter than the message, so this never reallocates (which would leave
    // an unwiped copy behind).
    let mut plaintext = Zeroizing::new(Vec::with_capacity(message.len()));
    let summary = decrypt_stream(source, options, message, &mut *plaintext).await?;
    Ok((plaintext, summary))
}

/// About the size of a message for `plaintext_len` bytes: the chunks' tags and a typical header.
fn message_len_hint(plaintext_len: usize, chunk_size: u32) -> usize {
    let chunks = plaintext_len / (chunk_size.max(1) as usize) + 1;
    plaintext_len + chunks * CHUNK_TAG_LEN + 512 + HEADER_TAG_LEN
}

/// Checks a chunk size against the format's limits (1 to 16 MiB), as encryption will; lets a
/// caller refuse a bad setting before it opens any file or connection.
pub fn validate_chunk_size(chunk_size: u32) -> Result<(), EnvelopeError> {
    check_chunk_size(chunk_size).map_err(EnvelopeError::InvalidRequest)
}
