//! AWS Signature Version 4, server side: the `Authorization: AWS4-HMAC-SHA256 …` header form and
//! the query-string (presigned) form.
//!
//! The canonical request is rebuilt from what arrived (the headers the client lists in
//! SignedHeaders, in its order; the raw path and query; the SHA-256 of the body actually
//! received), signed with the key derived from the secret of the access key, and compared with
//! the client's signature in constant time. Scope: the configured region, service `kms`,
//! terminator `aws4_request`, the date of `X-Amz-Date`. The time may differ from the server's by
//! [`MAX_CLOCK_SKEW_SECS`]. `host`, `x-amz-date` (header form) and `x-amz-target` must be signed:
//! an unsigned target would let a captured request be replayed as another operation.
//!
//! Every failure is an [`AwsError`] with the code AWS uses; the caller runs nothing on one.

use crate::amz_date;
use crate::credentials::Credentials;
use crate::error::AwsError;
use base16ct::lower::encode_string as hex;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SERVICE: &str = "kms";
const TERMINATOR: &str = "aws4_request";
/// How far `X-Amz-Date` may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// The longest `X-Amz-Expires` of a presigned request (AWS: 7 days).
const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
                        Check your AWS Secret Access Key and signing method. Consult the service \
                        documentation for details.";

/// What the verifier needs of a request. `path` and `query` are raw, as they arrived.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub principal: String,
}

/// What the client claims, from the Authorization header or the query string.
#[derive(Debug)]
struct Claim {
    access_key_id: String,
    scope_date: String,
    scope_region: String,
    scope_service: String,
    scope_terminator: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    /// `X-Amz-Expires` of the query form; `None` for the header form.
    expires: Option<i64>,
}

impl Claim {
    fn scope(&self) -> String {
        format!("{}/{}/{}/{}", self.scope_date, self.scope_region, self.scope_service, self.scope_terminator)
    }
}

/// Verifies `request` at time `now` (Unix seconds) against `credentials`, for `region`.
pub fn verify(
    request: &SignedRequest<'_>,
    credentials: &Credentials,
    region: &str,
    now: i64,
) -> Result<Verified, AwsError> {
    let query_params = parse_query(request.query.unwrap_or(""));
    let claim = if let Some(header) = request.headers.get(http::header::AUTHORIZATION) {
        let header = header
            .to_str()
            .map_err(|_| AwsError::incomplete_signature("The Authorization header is not valid text."))?;
        claim_from_header(header, request.headers)?
    } else if query_params.iter().any(|(k, _)| k == "X-Amz-Algorithm" || k == "X-Amz-Signature") {
        claim_from_query(&query_params)?
    } else {
        return Err(AwsError::missing_authentication());
    };

    check_scope(&claim, region)?;
    check_time(&claim, now)?;
    let credential = credentials.get(&claim.access_key_id).ok_or_else(AwsError::unrecognized_client)?;

    let body_hash = hex(&Sha256::digest(request.body));
    if let Some(claimed) = request.headers.get("x-amz-content-sha256")
        && claimed.as_bytes() != body_hash.as_bytes()
    {
        return Err(AwsError::invalid_signature(
            "The x-amz-content-sha256 header does not match the SHA-256 of the request body.",
        ));
    }
    let canonical = canonical_request(
        request.method,
        request.path,
        &query_params,
        claim.expires.is_some(),
        request.headers,
        &claim.signed_headers,
        &body_hash,
    );
    let to_sign = string_to_sign(&claim.amz_date, &claim.scope(), &canonical);
    let key = signing_key(credential.secret(), &claim.scope_date, &claim.scope_region, &claim.scope_service);
    let expected = hmac_sha256(&key, to_sign.as_bytes());
    let provided = unhex(&claim.signature).ok_or_else(|| AwsError::invalid_signature(MISMATCH))?;
    if bool::from(expected.as_slice().ct_eq(provided.as_slice())) {
        Ok(Verified { access_key_id: claim.access_key_id, principal: credential.principal().to_string() })
    } else {
        Err(AwsError::invalid_signature(MISMATCH))
    }
}

fn parse_credential(value: &str) -> Result<[String; 5], AwsError> {
    let parts: Vec<&str> = value.split('/').collect();
    match parts.as_slice() {
        [ak, date, region, service, terminator] if !ak.is_empty() => {
            Ok([ak, date, region, service, terminator].map(|s| s.to_string()))
        }
        _ => Err(AwsError::incomplete_signature(format!(
            "Credential should have exactly 5 slash-delimited elements: <access key>/<date>/<region>/{SERVICE}/{TERMINATOR}"
        ))),
    }
}

fn claim_from_header(header: &str, headers: &HeaderMap) -> Result<Claim, AwsError> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(AwsError::incomplete_signature(format!(
            "Unsupported Authorization algorithm; only {ALGORITHM} is accepted."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, value) in
        [("Credential", credential), ("SignedHeaders", signed_headers), ("Signature", signature)]
    {
        if value.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    if amz_date.is_none() {
        missing.push("Authorization header requires existence of a 'X-Amz-Date' header.".into());
    }
    if !missing.is_empty() {
        return Err(AwsError::incomplete_signature(missing.join(" ")));
    }
    let [access_key_id, scope_date, scope_region, scope_service, scope_terminator] =
        parse_credential(credential.unwrap_or_default())?;
    let signed_headers = signed_headers.unwrap_or_default().to_string();
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"x-amz-date") {
        return Err(AwsError::invalid_signature(
            "'x-amz-date' must be a SignedHeader in the AWS Authorization.",
        ));
    }
    Ok(Claim {
        access_key_id,
        scope_date,
        scope_region,
        scope_service,
        scope_terminator,
        signed_headers,
        signature: signature.unwrap_or_default().to_string(),
        amz_date: amz_date.unwrap_or_default().to_string(),
        expires: None,
    })
}

fn claim_from_query(params: &[(String, String)]) -> Result<Claim, AwsError> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut missing = Vec::new();
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Expires",
    ] {
        if get(name).is_none_or(str::is_empty) {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        return Err(AwsError::incomplete_signature(format!(
            "A presigned request requires the query parameters {}.",
            missing.join(", ")
        )));
    }
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(AwsError::incomplete_signature(format!(
            "Unsupported X-Amz-Algorithm; only {ALGORITHM} is accepted."
        )));
    }
    let expires = get("X-Amz-Expires")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (1..=MAX_EXPIRES_SECS).contains(v))
        .ok_or_else(|| {
            AwsError::incomplete_signature(format!(
                "X-Amz-Expires must be between 1 and {MAX_EXPIRES_SECS} seconds."
            ))
        })?;
    let [access_key_id, scope_date, scope_region, scope_service, scope_terminator] =
        parse_credential(get("X-Amz-Credential").unwrap_or_default())?;
    Ok(Claim {
        access_key_id,
        scope_date,
        scope_region,
        scope_service,
        scope_terminator,
        signed_headers: get("X-Amz-SignedHeaders").unwrap_or_default().to_string(),
        signature: get("X-Amz-Signature").unwrap_or_default().to_string(),
        amz_date: get("X-Amz-Date").unwrap_or_default().to_string(),
        expires: Some(expires),
    })
}

fn check_scope(claim: &Claim, region: &str) -> Result<(), AwsError> {
    if amz_date::parse(&claim.amz_date).is_none() {
        return Err(AwsError::incomplete_signature(format!(
            "X-Amz-Date '{}' is not in the ISO 8601 basic format yyyyMMdd'T'HHmmss'Z'.",
            claim.amz_date
        )));
    }
    if claim.amz_date.get(..8) != Some(claim.scope_date.as_str()) {
        return Err(AwsError::invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            claim.scope_date,
            claim.amz_date.get(..8).unwrap_or_default()
        )));
    }
    if claim.scope_service != SERVICE {
        return Err(AwsError::invalid_signature(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if claim.scope_region != region {
        return Err(AwsError::invalid_signature(format!(
            "Credential should be scoped to a valid region, not '{}'. This endpoint serves region '{region}'.",
            claim.scope_region
        )));
    }
    if claim.scope_terminator != TERMINATOR {
        return Err(AwsError::invalid_signature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            claim.scope_terminator
        )));
    }
    let names: Vec<&str> = claim.signed_headers.split(';').collect();
    for required in ["host", "x-amz-target"] {
        if !names.contains(&required) {
            return Err(AwsError::invalid_signature(format!("'{required}' must be a SignedHeader.")));
        }
    }
    Ok(())
}

fn check_time(claim: &Claim, now: i64) -> Result<(), AwsError> {
    // Checked in check_scope; parsed again rather than carried.
    let signed_at = amz_date::parse(&claim.amz_date).unwrap_or(i64::MIN);
    let valid_until = match claim.expires {
        Some(expires) => signed_at.saturating_add(expires),
        None => signed_at.saturating_add(MAX_CLOCK_SKEW_SECS),
    };
    if now > valid_until {
        return Err(AwsError::invalid_signature(match claim.expires {
            Some(_) => format!(
                "Signature expired: {} is now earlier than {} ({} - X-Amz-Expires).",
                amz_date::format(valid_until),
                amz_date::format(now),
                amz_date::format(now)
            ),
            None => format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                claim.amz_date,
                amz_date::format(now - MAX_CLOCK_SKEW_SECS),
                amz_date::format(now)
            ),
        }));
    }
    if signed_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(AwsError::invalid_signature(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            claim.amz_date,
            amz_date::format(now + MAX_CLOCK_SKEW_SECS),
            amz_date::format(now)
        )));
    }
    Ok(())
}

/// Query parameters, percent-decoded, in their order.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-_.~` (and `/` where `keep_slash`) as `%XX`.
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical request. `path` is the raw path as received; as for every AWS service but S3,
/// it is URI-encoded once more.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    presigned: bool,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let uri = if path.is_empty() { "/".to_string() } else { uri_encode(path, true) };
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    let canonical_query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    format!("{method}\n{uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}")
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())))
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // Invariant: HMAC accepts keys of every length, so `new_from_slice` cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A signature: 64 hex digits (either case), or nothing.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut signature = [0u8; 32];
    let decoded = base16ct::mixed::decode(text, &mut signature).ok()?;
    (decoded.len() == 32).then_some(signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    const AK: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";
    const BODY: &[u8] = br#"{"KeyId": "alias/example"}"#;
    const SIGNED: &str = "content-type;host;x-amz-date;x-amz-target";
    /// protocols.md §2.4: generated with botocore's signer, checked independently.
    const VECTOR_CANONICAL: &str = "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:4599\n\
        x-amz-date:20150830T123600Z\nx-amz-target:TrentService.DescribeKey\n\n\
        content-type;host;x-amz-date;x-amz-target\n\
        3d22130d6a9deb9722cdc47cbf3f86786ad286a52fa60113a1680e8af524db9e";
    const VECTOR_STRING_TO_SIGN: &str = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/kms/aws4_request\n\
        68ba01abf0c09e1bcda95579cc3229e480d436b4e46fa76d6c99452669bb798e";
    const VECTOR_SIGNATURE: &str = "0090f56c6ee9f09272ba17b83a2a56365163f9810eb539c7ddf52263cb4019b3";

    fn now() -> i64 {
        amz_date::parse(DATE).unwrap()
    }

    fn credentials() -> Credentials {
        let mut c = Credentials::new();
        c.insert(AK, SECRET, "alice");
        c
    }

    fn base_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        h.insert("host", HeaderValue::from_static("127.0.0.1:4599"));
        h.insert("x-amz-date", HeaderValue::from_static(DATE));
        h.insert("x-amz-target", HeaderValue::from_static("TrentService.DescribeKey"));
        h
    }

    fn authorization(ak: &str, scope: &str, signed: &str, signature: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={signature}"
        ))
        .unwrap()
    }

    fn vector_headers() -> HeaderMap {
        let mut h = base_headers();
        h.insert(
            "authorization",
            authorization(AK, "20150830/us-east-1/kms/aws4_request", SIGNED, VECTOR_SIGNATURE),
        );
        h
    }

    fn check(headers: &HeaderMap, body: &[u8], creds: &Credentials, at: i64) -> Result<Verified, AwsError> {
        let request = SignedRequest { method: "POST", path: "/", query: None, headers, body };
        verify(&request, creds, "us-east-1", at)
    }

    /// Signs `headers` + `body` as a client would, with our own functions (used for the cases the
    /// published vector does not cover).
    fn sign(headers: &mut HeaderMap, body: &[u8], secret: &str, date: &str, region: &str) {
        let canonical =
            canonical_request("POST", "/", &[], false, headers, SIGNED, &hex(&Sha256::digest(body)));
        let scope = format!("{}/{region}/kms/aws4_request", &date[..8]);
        let to_sign = string_to_sign(date, &scope, &canonical);
        let signature =
            hex(&hmac_sha256(&signing_key(secret, &date[..8], region, "kms"), to_sign.as_bytes()));
        headers.insert("authorization", authorization(AK, &scope, SIGNED, &signature));
    }

    #[test]
    fn the_published_vector_reproduces_exactly() {
        let canonical =
            canonical_request("POST", "/", &[], false, &base_headers(), SIGNED, &hex(&Sha256::digest(BODY)));
        assert_eq!(canonical, VECTOR_CANONICAL);
        let to_sign = string_to_sign(DATE, "20150830/us-east-1/kms/aws4_request", &canonical);
        assert_eq!(to_sign, VECTOR_STRING_TO_SIGN);
        let key = signing_key(SECRET, "20150830", "us-east-1", "kms");
        assert_eq!(hex(&hmac_sha256(&key, to_sign.as_bytes())), VECTOR_SIGNATURE);
        let verified = check(&vector_headers(), BODY, &credentials(), now()).unwrap();
        assert_eq!(verified, Verified { access_key_id: AK.into(), principal: "alice".into() });
        // Within the skew either way.
        assert!(check(&vector_headers(), BODY, &credentials(), now() + 300).is_ok());
        assert!(check(&vector_headers(), BODY, &credentials(), now() - 300).is_ok());
        // Header values are trimmed and inner spaces collapsed; a correct x-amz-content-sha256 passes.
        let mut h = vector_headers();
        h.insert("x-amz-content-sha256", HeaderValue::from_str(&hex(&Sha256::digest(BODY))).unwrap());
        assert!(check(&h, BODY, &credentials(), now()).is_ok());
    }

    #[test]
    fn a_signature_is_exactly_64_hex_digits() {
        let decoded = |text: &str| unhex(text).map(|signature| hex(&signature));
        assert_eq!(decoded(VECTOR_SIGNATURE).as_deref(), Some(VECTOR_SIGNATURE));
        assert_eq!(decoded(&VECTOR_SIGNATURE.to_uppercase()).as_deref(), Some(VECTOR_SIGNATURE));
        let too_long = format!("{VECTOR_SIGNATURE}00");
        let not_hex = VECTOR_SIGNATURE.replace('0', "g");
        for bad in [&VECTOR_SIGNATURE[..62], &VECTOR_SIGNATURE[..63], &too_long, &not_hex, "", "+0"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }

    fn code(result: Result<Verified, AwsError>) -> &'static str {
        result.expect_err("must be refused").code
    }

    #[test]
    fn every_forgery_is_refused_with_its_code() {
        let creds = credentials();
        // Wrong secret.
        let mut wrong = Credentials::new();
        wrong.insert(AK, "not-the-secret", "alice");
        assert_eq!(code(check(&vector_headers(), BODY, &wrong, now())), "InvalidSignatureException");
        // Tampered body, truncated body, one more space.
        assert_eq!(
            code(check(&vector_headers(), br#"{"KeyId": "alias/other"}"#, &creds, now())),
            "InvalidSignatureException"
        );
        assert_eq!(code(check(&vector_headers(), &BODY[..10], &creds, now())), "InvalidSignatureException");
        assert_eq!(
            code(check(&vector_headers(), br#"{"KeyId":  "alias/example"}"#, &creds, now())),
            "InvalidSignatureException"
        );
        // Tampered signed header (the operation).
        let mut h = vector_headers();
        h.insert("x-amz-target", HeaderValue::from_static("TrentService.ScheduleKeyDeletion"));
        assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException");
        // Flipped signature digit; malformed signature.
        let mut flipped = VECTOR_SIGNATURE.to_string();
        flipped.replace_range(0..1, "1");
        let mut h = base_headers();
        h.insert("authorization", authorization(AK, "20150830/us-east-1/kms/aws4_request", SIGNED, &flipped));
        assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException");
        h.insert("authorization", authorization(AK, "20150830/us-east-1/kms/aws4_request", SIGNED, "zz"));
        assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException");
        // Expired and not yet current.
        let err = check(&vector_headers(), BODY, &creds, now() + MAX_CLOCK_SKEW_SECS + 1).unwrap_err();
        assert_eq!(err.code, "InvalidSignatureException");
        assert!(
            err.message.starts_with("Signature expired: 20150830T123600Z is now earlier than"),
            "{}",
            err.message
        );
        assert_eq!(
            code(check(&vector_headers(), BODY, &creds, now() - MAX_CLOCK_SKEW_SECS - 1)),
            "InvalidSignatureException"
        );
        // Unknown access key.
        let mut h = base_headers();
        h.insert(
            "authorization",
            authorization("AKIDUNKNOWN", "20150830/us-east-1/kms/aws4_request", SIGNED, VECTOR_SIGNATURE),
        );
        assert_eq!(code(check(&h, BODY, &creds, now())), "UnrecognizedClientException");
        // No authentication at all.
        assert_eq!(code(check(&base_headers(), BODY, &creds, now())), "MissingAuthenticationTokenException");
        // Incomplete header: no Signature; no X-Amz-Date; other algorithm; bad credential.
        let mut h = base_headers();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential={AK}/20150830/us-east-1/kms/aws4_request, SignedHeaders={SIGNED}"
            ))
            .unwrap(),
        );
        assert_eq!(code(check(&h, BODY, &creds, now())), "IncompleteSignatureException");
        let mut h = vector_headers();
        h.remove("x-amz-date");
        assert_eq!(code(check(&h, BODY, &creds, now())), "IncompleteSignatureException");
        let mut h = base_headers();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(code(check(&h, BODY, &creds, now())), "IncompleteSignatureException");
        h.insert("authorization", authorization(AK, "20150830/us-east-1/kms", SIGNED, VECTOR_SIGNATURE));
        assert_eq!(code(check(&h, BODY, &creds, now())), "IncompleteSignatureException");
        // Wrong scope: region, service, terminator, date.
        for scope in [
            "20150830/eu-west-1/kms/aws4_request",
            "20150830/us-east-1/s3/aws4_request",
            "20150830/us-east-1/kms/aws5_request",
            "20150831/us-east-1/kms/aws4_request",
        ] {
            let mut h = base_headers();
            h.insert("authorization", authorization(AK, scope, SIGNED, VECTOR_SIGNATURE));
            assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException", "{scope}");
        }
        // host / x-amz-target not signed.
        let mut h = base_headers();
        h.insert(
            "authorization",
            authorization(
                AK,
                "20150830/us-east-1/kms/aws4_request",
                "content-type;host;x-amz-date",
                VECTOR_SIGNATURE,
            ),
        );
        assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException");
        // x-amz-content-sha256 that lies about the body, or UNSIGNED-PAYLOAD.
        for claimed in
            ["UNSIGNED-PAYLOAD", "3d22130d6a9deb9722cdc47cbf3f86786ad286a52fa60113a1680e8af524db9f"]
        {
            let mut h = vector_headers();
            h.insert(HeaderName::from_static("x-amz-content-sha256"), HeaderValue::from_static(claimed));
            assert_eq!(code(check(&h, BODY, &creds, now())), "InvalidSignatureException", "{claimed}");
        }
    }

    #[test]
    fn a_client_style_signature_with_other_headers_verifies() {
        // The Rust SDK's header set, signed at another time and region.
        let date = "20261128T123656Z";
        let mut h = base_headers();
        h.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
        h.insert("host", HeaderValue::from_static("localhost:8302"));
        h.insert("x-amz-target", HeaderValue::from_static("TrentService.Encrypt"));
        sign(&mut h, b"{}", SECRET, date, "dev-1");
        let request = SignedRequest { method: "POST", path: "/", query: None, headers: &h, body: b"{}" };
        let at = amz_date::parse(date).unwrap();
        assert!(verify(&request, &credentials(), "dev-1", at).is_ok());
        assert_eq!(
            verify(&request, &credentials(), "us-east-1", at).unwrap_err().code,
            "InvalidSignatureException"
        );
    }

    #[test]
    fn the_query_string_form_verifies_and_expires() {
        let h = {
            let mut h = HeaderMap::new();
            h.insert("host", HeaderValue::from_static("127.0.0.1:4599"));
            h.insert("x-amz-target", HeaderValue::from_static("TrentService.ListKeys"));
            h
        };
        let body = b"{}";
        let credential = format!("{AK}/20150830/us-east-1/kms/aws4_request");
        let params = |signature: Option<&str>| {
            let mut q = vec![
                ("X-Amz-Algorithm".to_string(), ALGORITHM.to_string()),
                ("X-Amz-Credential".to_string(), credential.clone()),
                ("X-Amz-Date".to_string(), DATE.to_string()),
                ("X-Amz-Expires".to_string(), "60".to_string()),
                ("X-Amz-SignedHeaders".to_string(), "host;x-amz-target".to_string()),
            ];
            if let Some(s) = signature {
                q.push(("X-Amz-Signature".to_string(), s.to_string()));
            }
            q
        };
        let canonical = canonical_request(
            "POST",
            "/",
            &params(None),
            true,
            &h,
            "host;x-amz-target",
            &hex(&Sha256::digest(body)),
        );
        assert!(
            canonical.contains("X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fkms%2Faws4_request")
        );
        let to_sign = string_to_sign(DATE, "20150830/us-east-1/kms/aws4_request", &canonical);
        let signature =
            hex(&hmac_sha256(&signing_key(SECRET, "20150830", "us-east-1", "kms"), to_sign.as_bytes()));
        let query: String = params(Some(&signature))
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        let request = SignedRequest { method: "POST", path: "/", query: Some(&query), headers: &h, body };
        assert_eq!(verify(&request, &credentials(), "us-east-1", now() + 59).unwrap().principal, "alice");
        assert_eq!(
            verify(&request, &credentials(), "us-east-1", now() + 61).unwrap_err().code,
            "InvalidSignatureException"
        );
        let tampered = SignedRequest { body: b"{\"Limit\": 1}", ..request };
        assert_eq!(
            verify(&tampered, &credentials(), "us-east-1", now()).unwrap_err().code,
            "InvalidSignatureException"
        );
        let no_signature = query.split("&X-Amz-Signature").next().unwrap().to_string();
        let incomplete =
            SignedRequest { method: "POST", path: "/", query: Some(&no_signature), headers: &h, body };
        assert_eq!(
            verify(&incomplete, &credentials(), "us-east-1", now()).unwrap_err().code,
            "IncompleteSignatureException"
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(uri_encode("a b/c~d", true), "a%20b/c~d");
        assert_eq!(uri_encode("a/b=", false), "a%2Fb%3D");
        assert_eq!(percent_decode("a%2Fb%zz%2"), "a/b%zz%2");
        assert_eq!(
            parse_query("b=2&a=1&&c"),
            vec![("b".into(), "2".into()), ("a".into(), "1".into()), ("c".into(), "".into())]
        );
    }
}
