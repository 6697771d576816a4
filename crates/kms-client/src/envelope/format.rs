//! The message header: its fields, limits and byte encoding (docs/envelope-format.md is the
//! specification; the two must change together).
//!
//! ```text
//! magic "KMSE" | version 1 | suite 1 | chunk_size u32 | message_id [32]
//! | u16 len, key_id | u16 len, context | u16 len, encrypted_data_key | header_tag [32]
//! ```
//! All integers are big-endian.

use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::context::EncryptionContext;
use super::error::{EnvelopeError, FormatError};

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"KMSE";
/// The format version this library writes and reads.
pub const VERSION: u8 = 1;
/// Suite 1: HKDF-SHA256 key schedule, AES-256-GCM chunks, HMAC-SHA256 header tag.
pub const SUITE: u8 = 1;
/// Length of the random message id (the HKDF salt).
pub const MESSAGE_ID_LEN: usize = 32;
/// Length of the header tag (a full HMAC-SHA256 output).
pub const HEADER_TAG_LEN: usize = 32;
/// Length of each chunk's AES-GCM tag.
pub const CHUNK_TAG_LEN: usize = 16;

/// Default plaintext bytes per chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest chunk size: a decryptor holds one chunk in memory, so this bounds its memory.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Most chunks in one message (indexes 0 to 2^32 - 1), as in STREAM's 32-bit counter.
pub const MAX_CHUNKS: u64 = 1 << 32;
/// Longest key id (an ARN) in bytes, as AWS KMS's KeyId parameter.
pub const MAX_KEY_ID_LEN: usize = 2048;
/// Longest encoded encryption context (pair count and pairs) in bytes.
pub const MAX_CONTEXT_LEN: usize = u16::MAX as usize;
/// Longest encrypted data key in bytes, as AWS KMS's CiphertextBlob parameter.
pub const MAX_ENCRYPTED_DATA_KEY_LEN: usize = 6144;

/// Offset of the key id length: magic, version, suite, chunk size, message id.
const FIXED_PREFIX_LEN: usize = 4 + 1 + 1 + 4 + MESSAGE_ID_LEN;

/// The header's fields, before the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub chunk_size: u32,
    pub message_id: [u8; MESSAGE_ID_LEN],
    pub key_id: String,
    pub context: EncryptionContext,
    pub encrypted_data_key: Vec<u8>,
}

/// A header as read from a message: its fields, the exact bytes the tag covers, and the tag.
pub(crate) struct ReadHeader {
    pub header: Header,
    pub authenticated: Vec<u8>,
    pub tag: [u8; HEADER_TAG_LEN],
}

/// Checks a chunk size against the format's limits.
pub(crate) fn check_chunk_size(chunk_size: u32) -> Result<(), String> {
    if (1..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        Ok(())
    } else {
        Err(format!("chunk size {chunk_size} is outside 1..={MAX_CHUNK_SIZE} bytes"))
    }
}

impl Header {
    /// The bytes the header tag covers: every header field in order, without the tag.
    ///
    /// Fails (naming the field) if a field is outside the format's limits, so an encryptor
    /// can check a request before it asks KMS for a data key.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        check_chunk_size(self.chunk_size).map_err(EnvelopeError::InvalidRequest)?;
        let context = encode_context(&self.context)?;
        let mut out = Vec::with_capacity(
            FIXED_PREFIX_LEN + 6 + self.key_id.len() + context.len() + self.encrypted_data_key.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE);
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.message_id);
        put_field(&mut out, "key id", self.key_id.as_bytes(), 1, MAX_KEY_ID_LEN)?;
        put_field(&mut out, "encryption context", &context, 2, MAX_CONTEXT_LEN)?;
        put_field(&mut out, "encrypted data key", &self.encrypted_data_key, 1, MAX_ENCRYPTED_DATA_KEY_LEN)?;
        Ok(out)
    }
}

/// Appends `u16 length || bytes`, refusing lengths outside `min..=max`.
fn put_field(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
    min: usize,
    max: usize,
) -> Result<(), EnvelopeError> {
    let len =
        u16::try_from(bytes.len()).ok().filter(|_| (min..=max).contains(&bytes.len())).ok_or_else(|| {
            EnvelopeError::InvalidRequest(format!(
                "the {field} is {} bytes; the format allows {min} to {max}",
                bytes.len()
            ))
        })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// `u16 pair count`, then per pair in key order `u16 len, key, u16 len, value`.
pub(crate) fn encode_context(context: &EncryptionContext) -> Result<Vec<u8>, EnvelopeError> {
    let too_large = || {
        EnvelopeError::InvalidRequest(format!(
            "the encryption context encodes to more than {MAX_CONTEXT_LEN} bytes"
        ))
    };
    let count = u16::try_from(context.len()).map_err(|_| too_large())?;
    let mut out = count.to_be_bytes().to_vec();
    for (key, value) in context.iter() {
        for s in [key, value] {
            let len = u16::try_from(s.len()).map_err(|_| too_large())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    if out.len() > MAX_CONTEXT_LEN {
        return Err(too_large());
    }
    Ok(out)
}

/// Parses the context encoding, refusing anything but the canonical form (keys strictly
/// ascending, so no duplicates; valid UTF-8; no bytes left over).
pub(crate) fn decode_context(bytes: &[u8]) -> Result<EncryptionContext, FormatError> {
    let bad = |problem: &str| FormatError::BadField { field: "encryption context", problem: problem.into() };
    let mut cursor = bytes;
    let count = take_u16(&mut cursor).ok_or_else(|| bad("shorter than its pair count"))?;
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(usize::from(count).min(cursor.len() / 4));
    for _ in 0..count {
        let key = take_string(&mut cursor).ok_or_else(|| bad("a key is cut short or not UTF-8"))?;
        let value = take_string(&mut cursor).ok_or_else(|| bad("a value is cut short or not UTF-8"))?;
        if pairs.last().is_some_and(|(previous, _)| previous.as_bytes() >= key.as_bytes()) {
            return Err(bad("keys are not in strictly ascending byte order"));
        }
        pairs.push((key, value));
    }
    if !cursor.is_empty() {
        return Err(bad("bytes follow the last pair"));
    }
    Ok(pairs.into_iter().collect())
}

fn take_u16(cursor: &mut &[u8]) -> Option<u16> {
    let (head, rest) = cursor.split_first_chunk::<2>()?;
    *cursor = rest;
    Some(u16::from_be_bytes(*head))
}

fn take_string(cursor: &mut &[u8]) -> Option<String> {
    let len = usize::from(take_u16(cursor)?);
    let (head, rest) = cursor.split_at_checked(len)?;
    *cursor = rest;
    String::from_utf8(head.to_vec()).ok()
}

/// Reads and parses a header from the start of a message, checking every length before
/// allocating for it (a header is at most about 74 KiB).
pub(crate) async fn read_header<R: AsyncRead + Unpin>(reader: &mut R) -> Result<ReadHeader, EnvelopeError> {
    // Magic first, on its own: a file that is not a message at all is reported as such, even
    // when it is shorter than a header.
    let mut authenticated = vec![0u8; 4];
    read_exact(reader, &mut authenticated, "magic").await?;
    if authenticated[..] != MAGIC {
        return Err(FormatError::BadMagic.into());
    }
    let mut version_suite = [0u8; 2];
    read_exact(reader, &mut version_suite, "version").await?;
    check_version_suite(version_suite)?;
    authenticated.extend_from_slice(&version_suite);
    let mut chunk_size = [0u8; 4];
    read_exact(reader, &mut chunk_size, "chunk size").await?;
    authenticated.extend_from_slice(&chunk_size);
    let chunk_size = u32::from_be_bytes(chunk_size);
    check_chunk_size(chunk_size).map_err(|problem| FormatError::BadField { field: "chunk size", problem })?;
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    read_exact(reader, &mut message_id, "message id").await?;
    authenticated.extend_from_slice(&message_id);

    let key_id = read_field(reader, &mut authenticated, "key id", 1, MAX_KEY_ID_LEN).await?;
    let key_id = String::from_utf8(key_id)
        .map_err(|_| FormatError::BadField { field: "key id", problem: "not UTF-8".into() })?;
    let context = read_field(reader, &mut authenticated, "encryption context", 2, MAX_CONTEXT_LEN).await?;
    let context = decode_context(&context)?;
    let encrypted_data_key =
        read_field(reader, &mut authenticated, "encrypted data key", 1, MAX_ENCRYPTED_DATA_KEY_LEN).await?;
    let mut tag = [0u8; HEADER_TAG_LEN];
    read_exact(reader, &mut tag, "header tag").await?;
    let header = Header { chunk_size, message_id, key_id, context, encrypted_data_key };
    Ok(ReadHeader { header, authenticated, tag })
}

fn check_version_suite([version, suite]: [u8; 2]) -> Result<(), FormatError> {
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    if suite != SUITE {
        return Err(FormatError::UnsupportedSuite(suite));
    }
    Ok(())
}

/// Reads `u16 length || bytes` (appending both to `authenticated`) and returns the bytes.
async fn read_field<R: AsyncRead + Unpin>(
    reader: &mut R,
    authenticated: &mut Vec<u8>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, EnvelopeError> {
    let mut len = [0u8; 2];
    read_exact(reader, &mut len, field).await?;
    authenticated.extend_from_slice(&len);
    let len = usize::from(u16::from_be_bytes(len));
    if !(min..=max).contains(&len) {
        let problem = format!("length {len} is outside {min}..={max}");
        return Err(FormatError::BadField { field, problem }.into());
    }
    let mut bytes = vec![0u8; len];
    read_exact(reader, &mut bytes, field).await?;
    authenticated.extend_from_slice(&bytes);
    Ok(bytes)
}

async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    field: &'static str,
) -> Result<(), EnvelopeError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FormatError::TruncatedHeader { field }.into())
        }
        Err(e) => Err(EnvelopeError::io("reading the message header")(e)),
    }
}

/// Fills `buf` from `reader` until it is full or the input ends; returns the bytes read.
pub(crate) async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    doing: &'static str,
) -> Result<usize, EnvelopeError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(EnvelopeError::io(doing)(e)),
        }
    }
    Ok(filled)
}
