//! Decrypt's input: any bytes a client sends as a CiphertextBlob. Parsing must never panic, and
//! without the key nothing may decrypt (a forged blob would need a GCM tag under a key the fuzzer
//! does not have).
#![no_main]

use std::sync::LazyLock;

use kms_crypto::{AesGcmKey, EncryptionContext, decrypt_blob, parse_header};
use libfuzzer_sys::fuzz_target;

#[allow(clippy::unwrap_used)] // a 32-byte key is always accepted
static KEY: LazyLock<AesGcmKey> = LazyLock::new(|| AesGcmKey::new(&[7; 32]).unwrap());

fuzz_target!(|blob: &[u8]| {
    let header = parse_header(blob);
    let decrypted = decrypt_blob(&KEY, blob, &EncryptionContext::new());
    assert!(decrypted.is_err(), "a blob nobody encrypted decrypted");
    if let Ok(header) = header {
        assert!(header.key_id.len() <= 255);
    }
});
