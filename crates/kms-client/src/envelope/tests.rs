//! Tests of the format against a fake KMS: round trips at every size that matters, and every
//! way of damaging a message (each bit flip, each truncation, swapped, duplicated, dropped and
//! foreign chunks, a wrong context, a lying header).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aes_gcm::aead::Aead as _;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use zeroize::Zeroizing;

use super::format::{Header, encode_context, read_header};
use super::keys::MessageKeys;
use super::*;
use crate::cache::{CacheLimits, DataKeyCache};

const ACCOUNT_ARN: &str = "arn:aws:kms:dev-1:000000000000:key/";

#[derive(Debug, thiserror::Error)]
#[error("fake KMS: {0}")]
struct FakeError(&'static str);

/// A stand-in for KMS: data keys are random, and the "CiphertextBlob" is the key ARN and the
/// data key sealed with AES-GCM under a fixed master key, with the ARN and the context as AAD,
/// so a changed blob or context is refused as KMS would.
struct FakeKms {
    master: Aes256Gcm,
    generated: AtomicU64,
    /// Makes GenerateDataKey name this ARN instead of the real one (a lying message author).
    claim_arn: Option<String>,
}

impl FakeKms {
    fn new() -> Self {
        Self { master: Aes256Gcm::new(&[7u8; 32].into()), generated: AtomicU64::new(0), claim_arn: None }
    }

    fn arn(key_id: &str) -> String {
        if key_id.starts_with("arn:") { key_id.to_string() } else { format!("{ACCOUNT_ARN}{key_id}") }
    }

    fn aad(arn: &str, context: &EncryptionContext) -> Vec<u8> {
        let mut aad = arn.as_bytes().to_vec();
        aad.extend(encode_context(context).unwrap());
        aad
    }
}

impl DataKeySource for FakeKms {
    type Error = FakeError;

    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, FakeError> {
        self.generated.fetch_add(1, Ordering::Relaxed);
        let arn = Self::arn(key_id);
        let mut plaintext = Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut plaintext).unwrap();
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).unwrap();
        let aad = Self::aad(&arn, context);
        let sealed = self
            .master
            .encrypt(&nonce.into(), aes_gcm::aead::Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| FakeError("seal"))?;
        let mut blob = vec![u8::try_from(arn.len()).unwrap()];
        blob.extend(arn.as_bytes());
        blob.extend(nonce);
        blob.extend(sealed);
        let key_id = self.claim_arn.clone().unwrap_or(arn);
        Ok(DataKey { plaintext, ciphertext_blob: blob, key_id })
    }

    async fn decrypt(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> Result<DecryptedDataKey, FakeError> {
        let invalid = FakeError("InvalidCiphertextException");
        let (&len, rest) = blob.split_first().ok_or(FakeError("InvalidCiphertextException"))?;
        let (arn, rest) =
            rest.split_at_checked(usize::from(len)).ok_or(FakeError("InvalidCiphertextException"))?;
        let arn = std::str::from_utf8(arn).map_err(|_| FakeError("InvalidCiphertextException"))?;
        let (nonce, sealed) =
            rest.split_first_chunk::<12>().ok_or(FakeError("InvalidCiphertextException"))?;
        if key_id.is_some_and(|k| Self::arn(k) != arn) {
            return Err(FakeError("IncorrectKeyException"));
        }
        let aad = Self::aad(arn, context);
        let plaintext = self
            .master
            .decrypt(&(*nonce).into(), aes_gcm::aead::Payload { msg: sealed, aad: &aad })
            .map_err(|_| invalid)?;
        Ok(DecryptedDataKey { plaintext: Zeroizing::new(plaintext), key_id: arn.to_string() })
    }
}

fn context() -> EncryptionContext {
    [("app", "tests"), ("purpose", "envelope")].into_iter().collect()
}

/// Bytes that differ at every position, so a moved chunk never decrypts to the same text.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64).wrapping_mul(0x9E37_79B9).to_le_bytes()[1] ^ (i / 251) as u8).collect()
}

fn options(chunk_size: u32) -> EncryptOptions {
    EncryptOptions::new("key-a").with_context(context()).with_chunk_size(chunk_size)
}

async fn seal(kms: &FakeKms, chunk_size: u32, data: &[u8]) -> Vec<u8> {
    encrypt(kms, &options(chunk_size), data).await.unwrap()
}

/// Decrypts, returning what was written before the outcome.
async fn open(kms: &FakeKms, message: &[u8]) -> (Vec<u8>, Result<DecryptSummary, EnvelopeError>) {
    let mut out = Vec::new();
    let result = decrypt_stream(kms, &DecryptOptions::new(), message, &mut out).await;
    (out, result)
}

async fn header_len(message: &[u8]) -> usize {
    let mut reader = message;
    let read = read_header(&mut reader).await.unwrap();
    read.authenticated.len() + HEADER_TAG_LEN
}

/// The byte ranges of a message's chunks.
async fn chunk_ranges(message: &[u8], chunk_size: u32) -> Vec<std::ops::Range<usize>> {
    let mut start = header_len(message).await;
    let full = chunk_size as usize + CHUNK_TAG_LEN;
    let mut ranges = Vec::new();
    while start < message.len() {
        let end = (start + full).min(message.len());
        ranges.push(start..end);
        start = end;
    }
    ranges
}

#[tokio::test]
async fn round_trips_at_every_size_that_matters() {
    let kms = FakeKms::new();
    for chunk_size in [1u32, 7, 64, DEFAULT_CHUNK_SIZE] {
        let cs = chunk_size as usize;
        for len in [0, 1, cs - 1, cs, cs + 1, 2 * cs, 3 * cs + 5, 200_003] {
            let data = plaintext(len);
            let message = seal(&kms, chunk_size, &data).await;
            let (out, summary) =
                decrypt(&kms, &DecryptOptions::new().with_context(context()).with_key_id("key-a"), &message)
                    .await
                    .unwrap_or_else(|e| panic!("chunk size {chunk_size}, {len} bytes: {e}"));
            assert_eq!(&out[..], &data[..], "chunk size {chunk_size}, {len} bytes");
            assert_eq!(summary.plaintext_bytes, len as u64);
            assert_eq!(summary.chunks, (len / cs) as u64 + 1, "the final chunk is always shorter");
            assert_eq!(summary.chunk_size, chunk_size);
            assert_eq!(summary.key_id, format!("{ACCOUNT_ARN}key-a"));
            assert_eq!(summary.context, context());
            let expected = header_len(&message).await + len + (len / cs + 1) * CHUNK_TAG_LEN;
            assert_eq!(message.len(), expected);
        }
    }
}

#[tokio::test]
async fn the_summary_of_an_encryption_describes_the_message() {
    let kms = FakeKms::new();
    let data = plaintext(1000);
    let mut message = Vec::new();
    let summary = encrypt_stream(&kms, &options(300), &data[..], &mut message).await.unwrap();
    assert_eq!(summary.key_id, format!("{ACCOUNT_ARN}key-a"));
    assert_eq!(summary.plaintext_bytes, 1000);
    assert_eq!(summary.chunks, 4);
    assert_eq!(summary.message_bytes, message.len() as u64);
    assert!(!summary.cached_data_key);
    assert_eq!(kms.generated.load(Ordering::Relaxed), 1, "one GenerateDataKey per message");
}

#[tokio::test]
async fn two_encryptions_of_the_same_data_differ() {
    let kms = FakeKms::new();
    let a = seal(&kms, 64, b"same").await;
    let b = seal(&kms, 64, b"same").await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn every_single_bit_flip_is_refused() {
    let kms = FakeKms::new();
    // Three chunks (16 + 16 + 8 bytes): header, non-final and final chunks are all covered.
    let data = plaintext(40);
    let message = seal(&kms, 16, &data).await;
    let header_len = header_len(&message).await;
    let mut refused = 0;
    for byte in 0..message.len() {
        for bit in 0..8 {
            let mut damaged = message.clone();
            damaged[byte] ^= 1 << bit;
            let (out, result) = open(&kms, &damaged).await;
            let Err(e) = result else { panic!("flip of bit {bit} of byte {byte} was accepted") };
            refused += 1;
            // Only whole chunks before the damage are ever released, and only if they are intact.
            assert!(
                data.starts_with(&out) && out.len() % 16 == 0,
                "byte {byte}: released {} bytes",
                out.len()
            );
            if byte >= header_len {
                let damaged_chunk = (byte - header_len) / (16 + CHUNK_TAG_LEN);
                assert_eq!(out.len(), damaged_chunk * 16, "byte {byte}");
                assert!(
                    matches!(e, EnvelopeError::ChunkAuthentication { index } if index == damaged_chunk as u64),
                    "byte {byte}: {e}"
                );
            } else {
                assert!(out.is_empty(), "a damaged header releases nothing");
            }
        }
    }
    assert_eq!(refused, message.len() * 8);
}

#[tokio::test]
async fn truncation_anywhere_is_refused() {
    let kms = FakeKms::new();
    for len in [40, 48] {
        // 48 = 3 full chunks and an empty final chunk, so the final chunk is only a tag.
        let data = plaintext(len);
        let message = seal(&kms, 16, &data).await;
        let ranges = chunk_ranges(&message, 16).await;
        let header_len = ranges[0].start;
        for cut in 0..message.len() {
            let (out, result) = open(&kms, &message[..cut]).await;
            let Err(e) = result else { panic!("{len} bytes cut at {cut} of {} accepted", message.len()) };
            assert!(data.starts_with(&out), "cut at {cut}");
            if cut < header_len {
                assert!(
                    matches!(e, EnvelopeError::Malformed(FormatError::TruncatedHeader { .. })),
                    "{cut}: {e}"
                );
            } else if let Some(k) = ranges.iter().position(|r| r.start == cut) {
                // At a chunk boundary (the first one being right after the header).
                assert!(matches!(e, EnvelopeError::Truncated { chunks } if chunks == k as u64), "{cut}: {e}");
                assert_eq!(out.len(), k * 16);
            } else {
                assert!(matches!(e, EnvelopeError::ChunkAuthentication { .. }), "{cut}: {e}");
            }
        }
    }
}

#[tokio::test]
async fn appended_bytes_are_refused() {
    let kms = FakeKms::new();
    for len in [40, 48] {
        let message = seal(&kms, 16, &plaintext(len)).await;
        for extra in [1usize, 15, 16, 17, 100] {
            let mut longer = message.clone();
            longer.extend(std::iter::repeat_n(0u8, extra));
            assert!(open(&kms, &longer).await.1.is_err(), "{len} bytes plus {extra}");
        }
    }
}

#[tokio::test]
async fn swapped_duplicated_and_dropped_chunks_are_refused() {
    let kms = FakeKms::new();
    let data = plaintext(64);
    let message = seal(&kms, 16, &data).await;
    let r = chunk_ranges(&message, 16).await;
    assert_eq!(r.len(), 5, "four full chunks and an empty final chunk");
    let splice = |parts: &[&std::ops::Range<usize>]| {
        let mut m = message[..r[0].start].to_vec();
        for part in parts {
            m.extend(&message[(*part).clone()]);
        }
        m
    };
    let cases = [
        ("swap 1 and 2", splice(&[&r[0], &r[2], &r[1], &r[3], &r[4]]), 1),
        ("swap 0 and 1", splice(&[&r[1], &r[0], &r[2], &r[3], &r[4]]), 0),
        ("chunk 0 twice", splice(&[&r[0], &r[0], &r[2], &r[3], &r[4]]), 1),
        ("chunk 2 dropped", splice(&[&r[0], &r[1], &r[3], &r[4]]), 2),
        ("final chunk early", splice(&[&r[0], &r[4]]), 1),
    ];
    for (what, damaged, index) in cases {
        let (out, result) = open(&kms, &damaged).await;
        let e = result.expect_err(what);
        assert!(matches!(e, EnvelopeError::ChunkAuthentication { index: i } if i == index), "{what}: {e}");
        assert_eq!(&out[..], &data[..index as usize * 16], "{what}");
    }
}

#[tokio::test]
async fn chunks_of_another_message_are_refused_even_under_the_same_cached_data_key() {
    let kms = FakeKms::new();
    let cache = Arc::new(DataKeyCache::new(4, CacheLimits::new(Duration::from_secs(60))));
    let opts = options(16).with_cache(cache.clone());
    let data = plaintext(40);
    let a = encrypt(&kms, &opts, &data).await.unwrap();
    let b = encrypt(&kms, &opts, &data).await.unwrap();
    assert_eq!(kms.generated.load(Ordering::Relaxed), 1, "b reused a's data key");
    assert_eq!(cache.stats().hits, 1);
    let (ra, rb) = (chunk_ranges(&a, 16).await, chunk_ranges(&b, 16).await);
    for i in 0..ra.len() {
        let mut spliced = a.clone();
        spliced.splice(ra[i].clone(), b[rb[i].clone()].iter().copied());
        let e = open(&kms, &spliced).await.1.expect_err("a foreign chunk");
        assert!(matches!(e, EnvelopeError::ChunkAuthentication { index } if index == i as u64), "{e}");
    }
    // a's header with b's body: b's chunks are bound to b's header.
    let mut mixed = a[..ra[0].start].to_vec();
    mixed.extend(&b[rb[0].start..]);
    let e = open(&kms, &mixed).await.1.expect_err("a's header, b's body");
    assert!(matches!(e, EnvelopeError::ChunkAuthentication { index: 0 }), "{e}");
}

#[tokio::test]
async fn a_different_expected_context_is_refused_before_kms_is_asked() {
    let kms = FakeKms::new();
    let message = seal(&kms, 64, b"secret").await;
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Pairs, &[&str]); 4] = [
        (&[("app", "other"), ("purpose", "envelope")], &["app"]),
        (&[("app", "tests")], &["purpose"]),
        (&[("app", "tests"), ("purpose", "envelope"), ("x", "1")], &["x"]),
        (&[], &["app", "purpose"]),
    ];
    for (expected, differing) in cases {
        let expected: EncryptionContext = expected.iter().copied().collect();
        let e = decrypt(&kms, &DecryptOptions::new().with_context(expected), &message).await.unwrap_err();
        let EnvelopeError::ContextMismatch { keys } = &e else { panic!("{e}") };
        assert_eq!(keys, differing);
        assert!(e.is_integrity_failure());
    }
}

#[tokio::test]
async fn a_context_changed_in_the_header_is_refused_by_kms() {
    let kms = FakeKms::new();
    let message = seal(&kms, 64, b"secret").await;
    // "tests" -> "testz": the header still parses, but the blob's context no longer matches.
    let at = message.windows(5).position(|w| w == b"tests").unwrap();
    let mut damaged = message.clone();
    damaged[at + 4] = b'z';
    let e = open(&kms, &damaged).await.1.unwrap_err();
    assert!(matches!(e, EnvelopeError::Kms { operation: "Decrypt", .. }), "{e}");
}

#[tokio::test]
async fn a_header_naming_another_key_than_its_data_key_is_refused() {
    let liar = FakeKms { claim_arn: Some(format!("{ACCOUNT_ARN}key-b")), ..FakeKms::new() };
    let message = encrypt(&liar, &options(64), b"forged origin").await.unwrap();
    let e = decrypt(&liar, &DecryptOptions::new(), &message).await.unwrap_err();
    let EnvelopeError::KeyMismatch { header, kms } = &e else { panic!("{e}") };
    assert_eq!(header, &format!("{ACCOUNT_ARN}key-b"));
    assert_eq!(kms, &format!("{ACCOUNT_ARN}key-a"));
}

#[tokio::test]
async fn an_expected_key_id_is_passed_to_kms() {
    let kms = FakeKms::new();
    let message = seal(&kms, 64, b"secret").await;
    let e = decrypt(&kms, &DecryptOptions::new().with_key_id("key-b"), &message).await.unwrap_err();
    assert!(e.to_string().contains("IncorrectKeyException"), "{e}");
    assert!(e.kms_status().is_none(), "the fake's error is not a tonic status");
}

#[test]
fn multi_region_replica_arns_match_their_primary() {
    use super::source::same_key;
    let mrk = |region: &str| format!("arn:aws:kms:{region}:111122223333:key/mrk-1234abcd");
    assert!(same_key(&mrk("eu-west-1"), &mrk("eu-west-1")));
    assert!(same_key(&mrk("eu-west-1"), &mrk("us-east-1")));
    assert!(!same_key(&mrk("eu-west-1"), "arn:aws:kms:us-east-1:444455556666:key/mrk-1234abcd"));
    assert!(!same_key(&mrk("eu-west-1"), "arn:aws:kms:eu-west-1:111122223333:key/mrk-99"));
    let single = |region: &str| format!("arn:aws:kms:{region}:111122223333:key/1234abcd");
    assert!(!same_key(&single("eu-west-1"), &single("us-east-1")), "only multi-Region keys");
    assert!(!same_key("alias/x", "alias/y"));
}

#[tokio::test]
async fn a_stream_longer_than_declared_is_refused() {
    let kms = FakeKms::new();
    let opts = options(16).with_plaintext_length(20);
    let mut out = Vec::new();
    let e = encrypt_stream(&kms, &opts, &plaintext(21)[..], &mut out).await.unwrap_err();
    assert!(matches!(e, EnvelopeError::LengthExceeded { declared: 20 }), "{e}");
    let mut out = Vec::new();
    encrypt_stream(&kms, &opts, &plaintext(20)[..], &mut out).await.unwrap();
}

#[tokio::test]
async fn requests_outside_the_limits_fail_before_kms_is_called() {
    let kms = FakeKms::new();
    for chunk_size in [0, MAX_CHUNK_SIZE + 1] {
        let e = encrypt(&kms, &options(chunk_size), b"x").await.unwrap_err();
        assert!(matches!(e, EnvelopeError::InvalidRequest(_)), "{e}");
        assert!(validate_chunk_size(chunk_size).is_err());
    }
    let huge: EncryptionContext = [("k", "v".repeat(70_000))].into_iter().collect();
    let e = encrypt(&kms, &options(64).with_context(huge), b"x").await.unwrap_err();
    assert!(e.to_string().contains("encryption context"), "{e}");
    let e = encrypt(&kms, &EncryptOptions::new(""), b"x").await.unwrap_err();
    assert!(e.to_string().contains("key id"), "{e}");
    let e = encrypt(&kms, &EncryptOptions::new("k".repeat(MAX_KEY_ID_LEN + 1)), b"x").await.unwrap_err();
    assert!(matches!(e, EnvelopeError::InvalidRequest(_)), "{e}");
    assert_eq!(kms.generated.load(Ordering::Relaxed), 0);
    encrypt(&kms, &options(MAX_CHUNK_SIZE), b"x").await.unwrap();
}

#[tokio::test]
async fn the_cache_serves_messages_of_declared_length_only() {
    let kms = FakeKms::new();
    let cache =
        Arc::new(DataKeyCache::new(4, CacheLimits::new(Duration::from_secs(60)).with_max_messages(2)));
    let opts = options(64).with_cache(cache.clone());
    let mut sink = Vec::new();
    // Unknown length: the cache is not used.
    encrypt_stream(&kms, &opts, &b"abc"[..], &mut sink).await.unwrap();
    assert_eq!(cache.stats().misses, 0);
    assert!(cache.is_empty());
    // Declared length: a miss, then a hit, then the entry is spent (2 messages).
    let summaries = [
        encrypt_stream(&kms, &opts.clone().with_plaintext_length(3), &b"abc"[..], &mut sink).await.unwrap(),
        encrypt_stream(&kms, &opts.clone().with_plaintext_length(3), &b"abc"[..], &mut sink).await.unwrap(),
        encrypt_stream(&kms, &opts.clone().with_plaintext_length(3), &b"abc"[..], &mut sink).await.unwrap(),
    ];
    assert_eq!(summaries.map(|s| s.cached_data_key), [false, true, false]);
    assert_eq!(kms.generated.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn headers_are_parsed_exactly_as_written_and_only_in_canonical_form() {
    let header = Header {
        chunk_size: 4096,
        message_id: [9; 32],
        key_id: format!("{ACCOUNT_ARN}key-a"),
        context: context(),
        encrypted_data_key: vec![1, 2, 3],
    };
    let mut bytes = header.encode().unwrap();
    bytes.extend([0u8; HEADER_TAG_LEN]);
    let read = read_header(&mut &bytes[..]).await.unwrap();
    assert_eq!(read.header, header);
    assert_eq!(read.authenticated, bytes[..bytes.len() - HEADER_TAG_LEN]);

    // The context's encoding: two pairs, sorted; swapping them is refused.
    let canonical = encode_context(&context()).unwrap();
    assert_eq!(canonical, b"\x00\x02\x00\x03app\x00\x05tests\x00\x07purpose\x00\x08envelope");
    let swapped = b"\x00\x02\x00\x07purpose\x00\x08envelope\x00\x03app\x00\x05tests";
    assert!(super::format::decode_context(swapped).is_err());
    let duplicate = b"\x00\x02\x00\x01a\x00\x01b\x00\x01a\x00\x01c";
    assert!(super::format::decode_context(duplicate).is_err());
    assert!(super::format::decode_context(b"\x00\x00\x00").is_err(), "a byte after the pairs");
    assert!(super::format::decode_context(b"\x00\x01\x00\x02\xff\xfe\x00\x00").is_err(), "not UTF-8");
}

#[tokio::test]
async fn malformed_headers_are_named() {
    let kms = FakeKms::new();
    let message = seal(&kms, 64, b"x").await;
    let check = async |bytes: &[u8], expected: FormatError| {
        let e = open(&kms, bytes).await.1.unwrap_err();
        assert!(matches!(&e, EnvelopeError::Malformed(f) if *f == expected), "{e}");
    };
    check(b"", FormatError::TruncatedHeader { field: "magic" }).await;
    check(b"PK\x03\x04 a zip file, say", FormatError::BadMagic).await;
    let mut v2 = message.clone();
    v2[4] = 2;
    check(&v2, FormatError::UnsupportedVersion(2)).await;
    let mut suite = message.clone();
    suite[5] = 9;
    check(&suite, FormatError::UnsupportedSuite(9)).await;
    // A chunk size above the limit is refused before anything is allocated for it.
    let mut huge = message.clone();
    huge[6..10].copy_from_slice(&(MAX_CHUNK_SIZE + 1).to_be_bytes());
    let e = open(&kms, &huge).await.1.unwrap_err();
    assert!(matches!(e, EnvelopeError::Malformed(FormatError::BadField { field: "chunk size", .. })), "{e}");
    assert!(e.is_integrity_failure());
}

/// A KMS that hands out AES-128-sized data keys, which the format does not take.
struct ShortKeys;

impl DataKeySource for ShortKeys {
    type Error = FakeError;
    async fn generate_data_key(&self, key_id: &str, _: &EncryptionContext) -> Result<DataKey, FakeError> {
        Ok(DataKey {
            plaintext: Zeroizing::new(vec![1; 16]),
            ciphertext_blob: vec![2; 8],
            key_id: key_id.into(),
        })
    }
    async fn decrypt(
        &self,
        _: &[u8],
        _: &EncryptionContext,
        _: Option<&str>,
    ) -> Result<DecryptedDataKey, FakeError> {
        Ok(DecryptedDataKey { plaintext: Zeroizing::new(vec![1; 16]), key_id: "k".into() })
    }
}

#[tokio::test]
async fn a_data_key_that_is_not_32_bytes_is_refused() {
    let e = encrypt(&ShortKeys, &EncryptOptions::new("k"), b"x").await.unwrap_err();
    assert!(matches!(e, EnvelopeError::KmsResponse { operation: "GenerateDataKey", .. }), "{e}");
    let message = seal(&FakeKms::new(), 64, b"x").await;
    let e = decrypt(&ShortKeys, &DecryptOptions::new(), &message).await.unwrap_err();
    assert!(matches!(e, EnvelopeError::KmsResponse { operation: "Decrypt", .. }), "{e}");
    assert!(e.to_string().contains("16 bytes"), "{e}");
}

/// A source that always answers with one fixed data key, for the known-answer message.
struct FixedKey;

const EXAMPLE_ARN: &str = "arn:aws:kms:dev-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";

impl DataKeySource for FixedKey {
    type Error = FakeError;
    async fn generate_data_key(&self, _: &str, _: &EncryptionContext) -> Result<DataKey, FakeError> {
        Err(FakeError("not used"))
    }
    async fn decrypt(
        &self,
        blob: &[u8],
        _: &EncryptionContext,
        _: Option<&str>,
    ) -> Result<DecryptedDataKey, FakeError> {
        assert_eq!(blob, [0xEE; 8]);
        Ok(DecryptedDataKey { plaintext: Zeroizing::new(vec![0x42; 32]), key_id: EXAMPLE_ARN.into() })
    }
}

/// The worked example of docs/envelope-format.md, built step by step from the fixed inputs the
/// document lists (data key 0x42 * 32, message id 0x11 * 32, chunk size 16, an 8-byte stand-in
/// for the encrypted data key), and decrypted by the library.
#[tokio::test]
async fn the_documented_example_decrypts_and_is_byte_exact() {
    let header = Header {
        chunk_size: 16,
        message_id: [0x11; 32],
        key_id: EXAMPLE_ARN.into(),
        context: [("app", "demo")].into_iter().collect(),
        encrypted_data_key: vec![0xEE; 8],
    };
    let plaintext = b"hello, envelope!!";
    let mut message = header.encode().unwrap();
    let keys = MessageKeys::derive(&[0x42; 32], &header.message_id, "test").unwrap();
    let tag = keys.header_tag(&message);
    message.extend(tag);
    let header_digest = sha2::Sha256::digest(&message);
    let mut chunks = keys.into_chunks(&message);
    for (part, last) in [(&plaintext[..16], false), (&plaintext[16..], true)] {
        let mut buf = part.to_vec();
        let tag = chunks.seal(&mut buf, last, 16).unwrap();
        message.extend(buf);
        message.extend(tag);
    }
    let (out, summary) = decrypt(&FixedKey, &DecryptOptions::new(), &message).await.unwrap();
    assert_eq!(&out[..], plaintext);
    assert_eq!(summary.chunks, 2);

    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let header_len = message.len() - 2 * CHUNK_TAG_LEN - plaintext.len();
    assert_eq!(header_len, 172);
    assert_eq!(hex(&tag), EXAMPLE_HEADER_TAG);
    assert_eq!(hex(&header_digest), EXAMPLE_HEADER_DIGEST);
    assert_eq!(hex(&message), EXAMPLE_MESSAGE.concat());
}

use sha2::Digest as _;

// Cross-checked against an independent implementation of docs/envelope-format.md (Python's
// `cryptography`: HKDF, HMAC, AES-GCM), which produced the same bytes.
const EXAMPLE_HEADER_TAG: &str = "b4a758e361d8dcb14cc0f6afd762b6444a79e0aed8f5b18966be6fc3e2037f45";
const EXAMPLE_HEADER_DIGEST: &str = "48c544afe4e6f787c90cd8ab0fcca21116d37f2080e407aa2130e53db3b93cb4";
const EXAMPLE_MESSAGE: [&str; 12] = [
    "4b4d5345",                                                         // magic
    "01",                                                               // version
    "01",                                                               // suite
    "00000010",                                                         // chunk size 16
    "1111111111111111111111111111111111111111111111111111111111111111", // message id
    "0047",                                                             // key id length 71, then the key id
    "61726e3a6177733a6b6d733a6465762d313a3030303030303030303030303a6b65792f31323334616263642d313261622d333463642d353665662d313233343536373839306162",
    "000d00010003617070000464656d6f", // context: 13 bytes, 1 pair, "app" = "demo"
    "0008eeeeeeeeeeeeeeee",           // encrypted data key
    "b4a758e361d8dcb14cc0f6afd762b6444a79e0aed8f5b18966be6fc3e2037f45", // header tag
    "939f0bda5c5712b03b95986305b98e931491f30c66e3f4c74c6fbab19c6574ee", // chunk 0: 16 + tag
    "e86aabd1ef289700e077d9c95bf8ace076", // chunk 1 (final): 1 + tag
];
