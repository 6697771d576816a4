//! Sealed key material as read back from the store: a corrupted or forged value must fail to
//! unseal under a ring of two root keys (either format, either key), never panic or unseal.
#![no_main]

use kms_crypto::{RootKey, RootKeyRing, unseal};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ring() -> &'static RootKeyRing {
    static RING: OnceLock<RootKeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let key = |byte| RootKey::from_bytes(&[byte; 32]).unwrap_or_else(|e| panic!("32 bytes: {e}"));
        RootKeyRing::new(key(3), vec![key(4)]).unwrap_or_else(|e| panic!("two distinct keys: {e}"))
    })
}

fuzz_target!(|sealed: &[u8]| {
    assert!(unseal(ring(), "1234abcd-12ab-34cd-56ef-1234567890ab", 1, sealed).is_err());
});
