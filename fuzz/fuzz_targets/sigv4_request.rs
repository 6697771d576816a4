//! SigV4 verification of a request whose Authorization, X-Amz-Date and query string are fuzzer
//! input (NUL-separated): parsing the claim must never panic, and nothing forged may verify.
#![no_main]

use http::{HeaderMap, HeaderValue};
use kms_aws_wire::Credentials;
use kms_aws_wire::sigv4::{SignedRequest, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let (authorization, date, query, body) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next(), parts.next());
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("kms.dev-1.example"));
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert("authorization", value);
    }
    if let Ok(value) = HeaderValue::from_bytes(date) {
        headers.insert("x-amz-date", value);
    }
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let mut credentials = Credentials::new();
    credentials.insert("AKIDFUZZ", "fuzz-secret", "fuzzer");
    let request =
        SignedRequest { method: "POST", path: "/", query, headers: &headers, body: body.unwrap_or_default() };
    assert!(verify(&request, &credentials, "dev-1", 1_700_000_000).is_err(), "a forged request verified");
});
