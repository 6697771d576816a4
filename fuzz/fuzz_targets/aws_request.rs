//! The AWS JSON endpoint's request bodies: the first byte picks one of the 54 operations, the
//! rest is the body. Decoding must never panic, and whatever decodes must encode back.
#![no_main]

use kms_aws_wire::Codec;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn codec() -> &'static (Codec, Vec<String>) {
    static CODEC: OnceLock<(Codec, Vec<String>)> = OnceLock::new();
    CODEC.get_or_init(|| {
        let codec = Codec::new().unwrap_or_else(|e| panic!("the kms.v1 descriptors load: {e}"));
        let requests: Vec<String> = codec
            .pool()
            .get_service_by_name("kms.v1.KeyManagementService")
            .map(|service| service.methods().map(|m| m.input().full_name().to_owned()).collect())
            .unwrap_or_default();
        assert!(!requests.is_empty(), "the KMS service has operations");
        (codec, requests)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (codec, requests) = codec();
    let request = &requests[usize::from(selector) % requests.len()];
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    if let Ok(message) = codec.json_to_dynamic(request, &json) {
        // Cannot fail for a message the codec itself built.
        codec.encode(request, &message).unwrap_or_else(|e| panic!("re-encoding {request}: {e:?}"));
    }
});
