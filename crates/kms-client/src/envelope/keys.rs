//! The per-message key schedule and the two authenticators: the header tag and the chunk AEAD.
//!
//! ```text
//! PRK           = HKDF-Extract(salt = message_id, IKM = data key)
//! content key   = HKDF-Expand(PRK, "kms-envelope v1 chunk key AES-256-GCM", 32)
//! header key    = HKDF-Expand(PRK, "kms-envelope v1 header key HMAC-SHA256", 32)
//! header tag    = HMAC-SHA256(header key, header bytes before the tag)
//! header digest = SHA-256(header bytes including the tag)
//! nonce(i)      = 0x00000000 || u64be(i)
//! AAD(i)        = header digest || 0x00 (more chunks follow) or 0x01 (final chunk)
//! ```
//!
//! The content key is fresh for every message (its random message id is the HKDF salt), so a
//! data key may be cached and reused across messages without ever reusing a (key, nonce) pair,
//! and a chunk moved between two messages fails to authenticate. The header tag is a full
//! HMAC-SHA256 output and so also commits to the data key: no second data key opens the same
//! message (AES-GCM alone does not give that).

use aes_gcm::aead::AeadInOut as _;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use super::error::EnvelopeError;
use super::format::{CHUNK_TAG_LEN, HEADER_TAG_LEN, MAX_CHUNKS, MESSAGE_ID_LEN};

/// Length of a data key: AES_256.
pub const DATA_KEY_LEN: usize = 32;
/// HKDF info of the chunk content key.
pub const CONTENT_KEY_LABEL: &[u8] = b"kms-envelope v1 chunk key AES-256-GCM";
/// HKDF info of the header key.
pub const HEADER_KEY_LABEL: &[u8] = b"kms-envelope v1 header key HMAC-SHA256";

/// The AAD byte of a chunk that is followed by more chunks.
const NOT_FINAL: u8 = 0x00;
/// The AAD byte of the last chunk of a message.
const FINAL: u8 = 0x01;

/// The keys of one message, derived from its data key and message id.
pub(crate) struct MessageKeys {
    // Boxed: the expanded AES key schedule stays in one heap place, which aes-gcm's `zeroize`
    // feature wipes on drop, instead of being copied around the stack.
    content: Box<Aes256Gcm>,
    header: Zeroizing<[u8; 32]>,
}

impl MessageKeys {
    /// Derives the message's keys from the data key that KMS `operation` returned, refusing
    /// one that is not [`DATA_KEY_LEN`] bytes.
    pub fn derive(
        data_key: &[u8],
        message_id: &[u8; MESSAGE_ID_LEN],
        operation: &'static str,
    ) -> Result<Self, EnvelopeError> {
        if data_key.len() != DATA_KEY_LEN {
            return Err(EnvelopeError::KmsResponse {
                operation,
                problem: format!("a data key of {} bytes, not {DATA_KEY_LEN}", data_key.len()),
            });
        }
        let (mut prk, hkdf) = Hkdf::<Sha256>::extract(Some(message_id), data_key);
        prk.as_mut_slice().zeroize();
        let mut content = Zeroizing::new([0u8; 32]);
        let mut header = Zeroizing::new([0u8; 32]);
        // HKDF-Expand fails only for outputs longer than 255 hash lengths; 32 bytes never do.
        let expanded = hkdf
            .expand(CONTENT_KEY_LABEL, content.as_mut_slice())
            .and_then(|()| hkdf.expand(HEADER_KEY_LABEL, header.as_mut_slice()));
        if expanded.is_err() {
            return Err(EnvelopeError::InvalidRequest("HKDF refused a 32-byte output".into()));
        }
        let content = Aes256Gcm::new_from_slice(content.as_slice())
            .map_err(|_| EnvelopeError::InvalidRequest("AES-256-GCM refused a 32-byte key".into()))?;
        Ok(Self { content: Box::new(content), header })
    }

    /// The header tag over the header bytes before the tag.
    pub fn header_tag(&self, header: &[u8]) -> [u8; HEADER_TAG_LEN] {
        self.header_mac(header).finalize().into_bytes().into()
    }

    /// Checks a header tag in constant time.
    pub fn verify_header_tag(&self, header: &[u8], tag: &[u8; HEADER_TAG_LEN]) -> Result<(), EnvelopeError> {
        self.header_mac(header).verify_slice(tag).map_err(|_| EnvelopeError::HeaderAuthentication)
    }

    fn header_mac(&self, header: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256>>::new_from_slice(self.header.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(header);
        mac
    }

    /// Turns the keys into the chunk sealer/opener bound to this header.
    pub fn into_chunks(self, header_with_tag: &[u8]) -> Chunks {
        let digest: [u8; 32] = Sha256::digest(header_with_tag).into();
        Chunks { cipher: self.content, digest, next: 0, finished: false }
    }
}

/// Seals or opens the chunks of one message in order.
pub(crate) struct Chunks {
    cipher: Box<Aes256Gcm>,
    digest: [u8; 32],
    next: u64,
    finished: bool,
}

impl Chunks {
    /// The number of chunks sealed or opened so far (the index of the next one).
    pub fn count(&self) -> u64 {
        self.next
    }

    /// Encrypts the next chunk in place and returns its tag.
    pub fn seal(
        &mut self,
        chunk: &mut [u8],
        last: bool,
        chunk_size: u32,
    ) -> Result<[u8; CHUNK_TAG_LEN], EnvelopeError> {
        let (nonce, aad) =
            self.advance(last).ok_or(EnvelopeError::TooManyChunks { max: MAX_CHUNKS, chunk_size })?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce.into(), &aad, chunk.into())
            // Only for a chunk beyond GCM's 64 GiB limit, far above MAX_CHUNK_SIZE.
            .map_err(|_| EnvelopeError::InvalidRequest("AES-GCM refused a chunk".into()))?;
        Ok(tag.into())
    }

    /// Decrypts the next chunk in place if its tag verifies; `chunk` is ciphertext followed by
    /// the tag, and on success its first `len - 16` bytes are the plaintext.
    pub fn open(&mut self, chunk: &mut [u8], last: bool) -> Result<usize, EnvelopeError> {
        let index = self.next;
        let failed = EnvelopeError::ChunkAuthentication { index };
        let Some(split) = chunk.len().checked_sub(CHUNK_TAG_LEN) else { return Err(failed) };
        let (ciphertext, tag) = chunk.split_at_mut(split);
        let tag: [u8; CHUNK_TAG_LEN] =
            (&*tag).try_into().map_err(|_| EnvelopeError::ChunkAuthentication { index })?;
        let Some((nonce, aad)) = self.advance(last) else { return Err(failed) };
        self.cipher
            .decrypt_inout_detached(&nonce.into(), &aad, ciphertext.into(), &tag.into())
            .map_err(|_| failed)?;
        Ok(split)
    }

    /// The nonce and AAD of the next chunk, and moves past it. `None` after the final chunk,
    /// and where the format's chunk limit leaves no index for this chunk (a non-final chunk
    /// must leave one for the final chunk after it).
    fn advance(&mut self, last: bool) -> Option<([u8; 12], [u8; 33])> {
        let limit = if last { MAX_CHUNKS } else { MAX_CHUNKS - 1 };
        if self.finished || self.next >= limit {
            return None;
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.next.to_be_bytes());
        let mut aad = [0u8; 33];
        aad[..32].copy_from_slice(&self.digest);
        aad[32] = if last { FINAL } else { NOT_FINAL };
        self.next += 1;
        self.finished = last;
        Some((nonce, aad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_at(next: u64) -> Chunks {
        let keys = MessageKeys::derive(&[1; DATA_KEY_LEN], &[2; MESSAGE_ID_LEN], "test").unwrap();
        let mut chunks = keys.into_chunks(b"header");
        chunks.next = next;
        chunks
    }

    #[test]
    fn the_last_chunk_index_is_kept_for_the_final_chunk() {
        let mut chunks = chunks_at(MAX_CHUNKS - 2);
        chunks.seal(&mut [0; 4], false, 4).unwrap();
        let e = chunks.seal(&mut [0; 4], false, 4).unwrap_err();
        assert!(matches!(e, EnvelopeError::TooManyChunks { max: MAX_CHUNKS, chunk_size: 4 }), "{e}");
        let mut chunks = chunks_at(MAX_CHUNKS - 1);
        chunks.seal(&mut [0; 2], true, 4).unwrap();
        assert_eq!(chunks.count(), MAX_CHUNKS);
    }

    #[test]
    fn nothing_is_sealed_or_opened_after_the_final_chunk() {
        let mut chunks = chunks_at(0);
        chunks.seal(&mut [], true, 4).unwrap();
        assert!(chunks.seal(&mut [], true, 4).is_err());
        let mut opener = chunks_at(0);
        let mut sealer = chunks_at(0);
        let mut chunk = [0u8; CHUNK_TAG_LEN];
        let tag = sealer.seal(&mut [], true, 4).unwrap();
        chunk.copy_from_slice(&tag);
        assert_eq!(opener.open(&mut chunk.clone(), true).unwrap(), 0);
        assert!(matches!(
            opener.open(&mut chunk, true),
            Err(EnvelopeError::ChunkAuthentication { index: 1 })
        ));
    }

    #[test]
    fn a_wrong_data_key_fails_the_header_tag() {
        let a = MessageKeys::derive(&[1; DATA_KEY_LEN], &[2; MESSAGE_ID_LEN], "test").unwrap();
        let b = MessageKeys::derive(&[3; DATA_KEY_LEN], &[2; MESSAGE_ID_LEN], "test").unwrap();
        let c = MessageKeys::derive(&[1; DATA_KEY_LEN], &[4; MESSAGE_ID_LEN], "test").unwrap();
        let tag = a.header_tag(b"header");
        a.verify_header_tag(b"header", &tag).unwrap();
        assert!(b.verify_header_tag(b"header", &tag).is_err(), "another data key");
        assert!(c.verify_header_tag(b"header", &tag).is_err(), "another message id");
        assert!(a.verify_header_tag(b"headeR", &tag).is_err());
        assert!(MessageKeys::derive(&[1; 16], &[2; MESSAGE_ID_LEN], "test").is_err(), "AES-128 data key");
    }
}
