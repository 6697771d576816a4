//! The ciphertext blob returned by Encrypt and GenerateDataKey and accepted by Decrypt.
//!
//! Layout (integers big-endian):
//!
//! ```text
//! offset  size  field
//! 0       1     format version, 0x01
//! 1       1     key id length L, 1..=255
//! 2       L     key id, UTF-8: a key UUID, or "mrk-" + 32 hex digits for a multi-region key
//! 2+L     4     key material version (u32)
//! 6+L     12    random nonce
//! 18+L    n     AES-256-GCM ciphertext (n = plaintext length)
//! 18+L+n  16    GCM tag
//! ```
//!
//! The header (bytes `0..6+L`) followed by the canonical encoding of the encryption context is
//! the GCM associated data, so changing the key id, the version, the format byte or the context
//! makes decryption fail, not decrypt under a different interpretation. The nonce is bound by
//! GCM itself. The blob carries the key id so that Decrypt needs none, and the material version
//! so that old blobs still decrypt after rotation.
//!
//! Nonces are 96 random bits per blob. With random nonces the chance of a repeat among `q`
//! blobs under one key is about `q^2 / 2^97`; NIST SP 800-38D caps random-nonce use at 2^32
//! messages per key, which keeps it below 2^-33. The key here is one *material version*, and
//! rotation starts a new version, so the cap applies between rotations: 2^32 Encrypt /
//! GenerateDataKey calls on one version (about 50 days at a sustained 1,000 calls per second).
//! A KMS key's traffic is normally far below that, and rotation resets the count.

use std::collections::BTreeMap;

use crate::{
    CryptoError, SecretBytes,
    aead::{AesGcmKey, NONCE_LEN, TAG_LEN, aead_open, aead_seal},
    random::random_array,
};

/// The AWS encryption context: string pairs bound to a ciphertext. A `BTreeMap` so iteration is
/// sorted by key bytes, which the canonical encoding relies on.
pub type EncryptionContext = BTreeMap<String, String>;

/// The only blob format this code writes and reads.
pub const BLOB_FORMAT_V1: u8 = 0x01;

/// Prefix of multi-region key ids.
const MRK_PREFIX: &str = "mrk-";

/// What Decrypt learns from a blob before it has any key: which key and which material version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobHeader {
    /// The key id (UUID or `mrk-…`), never an ARN or alias.
    pub key_id: String,
    /// The key material version that encrypted the blob.
    pub material_version: u32,
}

impl BlobHeader {
    /// The header bytes as written into the blob; also the first part of the AAD.
    fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        if !is_valid_key_id(&self.key_id) {
            return Err(CryptoError::InvalidInput(
                "key id must be a lowercase UUID or \"mrk-\" followed by 32 lowercase hex digits".into(),
            ));
        }
        let id = self.key_id.as_bytes();
        // Cannot fail: a valid key id is at most 36 bytes.
        let id_len = u8::try_from(id.len())
            .map_err(|_| CryptoError::InvalidInput("key id longer than 255 bytes".into()))?;
        let mut out = Vec::with_capacity(6 + id.len());
        out.push(BLOB_FORMAT_V1);
        out.push(id_len);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.material_version.to_be_bytes());
        Ok(out)
    }
}

/// A blob split into its parts, borrowing from the input.
struct ParsedBlob<'a> {
    header: BlobHeader,
    header_bytes: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext_and_tag: &'a [u8],
}

/// Reads the key id and material version from a blob without decrypting it. Rejects (as
/// [`CryptoError::InvalidCiphertext`]) anything that is not a well-formed v1 blob, including one
/// too short to hold a nonce and a tag. Not authenticated: only [`decrypt_blob`] proves the
/// header genuine.
pub fn parse_header(blob: &[u8]) -> Result<BlobHeader, CryptoError> {
    parse(blob).map(|p| p.header)
}

fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>, CryptoError> {
    let mut r = Reader(blob);
    if r.take(1)? != [BLOB_FORMAT_V1] {
        return Err(CryptoError::InvalidCiphertext);
    }
    let id_len = usize::from(r.take(1)?[0]);
    let id = std::str::from_utf8(r.take(id_len)?).map_err(|_| CryptoError::InvalidCiphertext)?;
    if !is_valid_key_id(id) {
        // Also rejects length 0.
        return Err(CryptoError::InvalidCiphertext);
    }
    let material_version = u32::from_be_bytes(r.array()?);
    let header_len = blob.len() - r.0.len();
    let nonce = r.array()?;
    if r.0.len() < TAG_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    Ok(ParsedBlob {
        header: BlobHeader { key_id: id.to_owned(), material_version },
        header_bytes: &blob[..header_len],
        nonce,
        ciphertext_and_tag: r.0,
    })
}

/// Encrypts `plaintext` under the AES-256 `key` (the material of `header`'s key and version)
/// into a v1 blob, with a fresh random nonce, binding the header and `context`.
pub fn encrypt_blob(
    key: &AesGcmKey,
    header: &BlobHeader,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let header_bytes = header.encode()?;
    let aad = associated_data(&header_bytes, context)?;
    let nonce = random_array::<NONCE_LEN>()?;
    let sealed = aead_seal(key.aes256()?, &nonce, &aad, plaintext)?;
    let mut blob = Vec::with_capacity(header_bytes.len() + NONCE_LEN + sealed.len());
    blob.extend_from_slice(&header_bytes);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Decrypts a v1 blob with the AES-256 `key` that the caller looked up from
/// [`parse_header`]'s key id and version. Every failure, whether parsing, wrong key, wrong
/// context or tampering, is [`CryptoError::InvalidCiphertext`].
pub fn decrypt_blob(
    key: &AesGcmKey,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<SecretBytes, CryptoError> {
    let key = key.aes256()?;
    let parsed = parse(blob)?;
    let aad = associated_data(parsed.header_bytes, context).map_err(|_| CryptoError::InvalidCiphertext)?;
    aead_open(key, &parsed.nonce, &aad, parsed.ciphertext_and_tag)
}

/// Header bytes followed by the canonical context. The header is self-delimiting (its key id is
/// length-prefixed, the rest fixed-size), so the concatenation is unambiguous.
fn associated_data(header_bytes: &[u8], context: &EncryptionContext) -> Result<Vec<u8>, CryptoError> {
    let mut aad = header_bytes.to_vec();
    encode_context(context, &mut aad)?;
    Ok(aad)
}

/// Canonical encryption context encoding: `u32 count`, then for each pair in key-byte order
/// `u32 len(key) | key | u32 len(value) | value`. Length prefixes make it injective: no two
/// different contexts encode to the same bytes (`{"a":"bc"}` vs `{"ab":"c"}`, say). Ordering by
/// `String`'s `Ord` is ordering by UTF-8 bytes.
pub fn encode_context(context: &EncryptionContext, out: &mut Vec<u8>) -> Result<(), CryptoError> {
    put_len(out, context.len())?;
    for (k, v) in context {
        put_len(out, k.len())?;
        out.extend_from_slice(k.as_bytes());
        put_len(out, v.len())?;
        out.extend_from_slice(v.as_bytes());
    }
    Ok(())
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), CryptoError> {
    let len =
        u32::try_from(len).map_err(|_| CryptoError::InvalidInput("encryption context too large".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A key id this crate writes into blobs: a lowercase hyphenated UUID (36 bytes) or `mrk-`
/// followed by 32 lowercase hex digits. Strict on purpose: ids are read back from untrusted
/// blobs and used for lookups, so only one spelling of each id is accepted.
fn is_valid_key_id(id: &str) -> bool {
    match id.strip_prefix(MRK_PREFIX) {
        Some(hex) => hex.len() == 32 && hex.bytes().all(is_lower_hex),
        None => is_uuid(id),
    }
}

fn is_uuid(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => is_lower_hex(c),
        })
}

fn is_lower_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}

/// A cursor over the blob whose reads fail with `InvalidCiphertext` when bytes run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::InvalidCiphertext);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CryptoError> {
        self.take(N)?.try_into().map_err(|_| CryptoError::InvalidCiphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
    const MRK: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
    fn key() -> AesGcmKey {
        AesGcmKey::new(&[0x42; 32]).unwrap()
    }

    fn header(id: &str, version: u32) -> BlobHeader {
        BlobHeader { key_id: id.into(), material_version: version }
    }

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn invalid<T: std::fmt::Debug>(r: Result<T, CryptoError>) -> bool {
        matches!(r, Err(CryptoError::InvalidCiphertext))
    }

    #[test]
    fn only_an_aes_256_key_makes_or_opens_a_blob() {
        let aes128 = AesGcmKey::new(&[0x42; 16]).unwrap();
        let blob = encrypt_blob(&key(), &header(UUID, 1), &ctx(&[]), b"x").unwrap();
        assert!(matches!(
            encrypt_blob(&aes128, &header(UUID, 1), &ctx(&[]), b"x"),
            Err(CryptoError::Internal(_))
        ));
        assert!(matches!(decrypt_blob(&aes128, &blob, &ctx(&[])), Err(CryptoError::Internal(_))));
    }

    #[test]
    fn layout_is_as_documented() {
        let blob = encrypt_blob(&key(), &header(UUID, 0x01020304), &ctx(&[]), b"abc").unwrap();
        assert_eq!(blob[0], 0x01);
        assert_eq!(blob[1], 36);
        assert_eq!(&blob[2..38], UUID.as_bytes());
        assert_eq!(&blob[38..42], &[1, 2, 3, 4]);
        assert_eq!(blob.len(), 42 + NONCE_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn roundtrips_with_empty_and_multi_pair_contexts() {
        let contexts = [
            ctx(&[]),
            ctx(&[("purpose", "test")]),
            ctx(&[("b", "2"), ("a", "1"), ("", ""), ("ünïcode", "välue"), ("k", "")]),
        ];
        for (id, version) in [(UUID, 1), (MRK, u32::MAX)] {
            for c in &contexts {
                for pt in [&b""[..], b"x", &[0xA5; 4096]] {
                    let h = header(id, version);
                    let blob = encrypt_blob(&key(), &h, c, pt).unwrap();
                    assert_eq!(parse_header(&blob).unwrap(), h);
                    assert_eq!(decrypt_blob(&key(), &blob, c).unwrap().expose(), pt);
                }
            }
        }
    }

    #[test]
    fn fresh_nonce_per_call() {
        let h = header(UUID, 1);
        let a = encrypt_blob(&key(), &h, &ctx(&[]), b"same").unwrap();
        let b = encrypt_blob(&key(), &h, &ctx(&[]), b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_different_context_fails() {
        let c = ctx(&[("a", "bc"), ("tenant", "1")]);
        let blob = encrypt_blob(&key(), &header(UUID, 1), &c, b"secret").unwrap();
        for other in [
            ctx(&[]),
            ctx(&[("a", "bc")]),
            ctx(&[("a", "bc"), ("tenant", "2")]),
            ctx(&[("a", "bc"), ("tenant", "1"), ("extra", "")]),
            ctx(&[("ab", "c"), ("tenant", "1")]),
            ctx(&[("A", "bc"), ("tenant", "1")]),
        ] {
            assert!(invalid(decrypt_blob(&key(), &blob, &other)), "{other:?}");
        }
        assert!(invalid(decrypt_blob(&AesGcmKey::new(&[0x43; 32]).unwrap(), &blob, &c)));
    }

    #[test]
    fn context_encoding_is_canonical_and_injective() {
        let mut a = Vec::new();
        encode_context(&ctx(&[("b", "2"), ("a", "1")]), &mut a).unwrap();
        assert_eq!(
            a,
            [
                &[0, 0, 0, 2][..],
                &[0, 0, 0, 1],
                b"a",
                &[0, 0, 0, 1],
                b"1",
                &[0, 0, 0, 1],
                b"b",
                &[0, 0, 0, 1],
                b"2",
            ]
            .concat()
        );
        let (mut x, mut y) = (Vec::new(), Vec::new());
        encode_context(&ctx(&[("a", "bc")]), &mut x).unwrap();
        encode_context(&ctx(&[("ab", "c")]), &mut y).unwrap();
        assert_ne!(x, y);
    }

    /// Every bit of every byte matters: flip each of several bit patterns at each position.
    #[test]
    fn every_flipped_byte_fails() {
        let c = ctx(&[("k", "v"), ("k2", "v2")]);
        for id in [UUID, MRK] {
            let blob = encrypt_blob(&key(), &header(id, 7), &c, b"sixteen byte msg + a bit").unwrap();
            for pos in 0..blob.len() {
                for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF] {
                    let mut bad = blob.clone();
                    bad[pos] ^= mask;
                    assert!(invalid(decrypt_blob(&key(), &bad, &c)), "pos {pos} mask {mask:#x}");
                }
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_fails() {
        let c = ctx(&[("k", "v")]);
        let blob = encrypt_blob(&key(), &header(UUID, 3), &c, b"payload").unwrap();
        for len in 0..blob.len() {
            assert!(invalid(decrypt_blob(&key(), &blob[..len], &c)), "len {len}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(invalid(decrypt_blob(&key(), &longer, &c)));
    }

    #[test]
    fn parse_header_rejects_malformed_headers() {
        let good = encrypt_blob(&key(), &header(UUID, 9), &ctx(&[]), b"").unwrap();
        assert_eq!(parse_header(&good).unwrap(), header(UUID, 9));

        for version in [0x00u8, 0x02, 0xFF] {
            let mut b = good.clone();
            b[0] = version;
            assert!(invalid(parse_header(&b)), "format {version}");
        }
        // Zero-length key id.
        let mut b = good.clone();
        b[1] = 0;
        assert!(invalid(parse_header(&b)));
        // Key id length longer than the blob.
        let mut b = good[..40].to_vec();
        b[1] = 255;
        assert!(invalid(parse_header(&b)));
        // Non-UTF-8 key id.
        let mut b = good.clone();
        b[2] = 0xFF;
        assert!(invalid(parse_header(&b)));
        // Valid UTF-8 but not a key id (uppercase, alias-like).
        let mut b = good.clone();
        b[2] = b'A';
        assert!(invalid(parse_header(&b)));
        // Too short to hold nonce and tag.
        assert!(invalid(parse_header(&good[..good.len() - 1])));
        assert!(invalid(parse_header(&[])));
    }

    #[test]
    fn encrypt_rejects_bad_key_ids() {
        for id in ["", "alias/foo", "1234ABCD-12AB-34CD-56EF-1234567890AB", "mrk-123", &"a".repeat(300)] {
            assert!(
                matches!(
                    encrypt_blob(&key(), &header(id, 1), &ctx(&[]), b"x"),
                    Err(CryptoError::InvalidInput(_))
                ),
                "{id}"
            );
        }
    }

    #[test]
    fn error_message_is_uniform() {
        assert_eq!(
            CryptoError::InvalidCiphertext.to_string(),
            "ciphertext is invalid or the encryption context does not match"
        );
    }
}
