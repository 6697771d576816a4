//! Decrypt's input: any bytes a client sends as a CiphertextBlob. Parsing must never panic, and
//! without the key nothing may decrypt (a forged blob would need a GCM tag under a key the fuzzer
//! does not have).
#![no_main]

use kms_crypto::{EncryptionContext, decrypt_blob, parse_header};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];

fuzz_target!(|blob: &[u8]| {
    let header = parse_header(blob);
    let decrypted = decrypt_blob(&KEY, blob, &EncryptionContext::new());
    assert!(decrypted.is_err(), "a blob nobody encrypted decrypted");
    if let Ok(header) = header {
        assert!(header.key_id.len() <= 255);
    }
});
