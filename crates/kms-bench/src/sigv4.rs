//! AWS Signature Version 4 for the one request shape the AWS JSON driver sends: `POST /` with
//! `Content-Type: application/x-amz-json-1.1` and `X-Amz-Target: TrentService.<Op>`, signing
//! exactly the headers the server requires (content-type, host, x-amz-date, x-amz-target).

use base16ct::lower::encode_string as hex;
use kms_aws_wire::amz_date;
use kms_aws_wire::sigv4::{ALGORITHM, SERVICE, hmac_sha256, signing_key, string_to_sign};
use sha2::{Digest, Sha256};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";

/// An access key and the region it signs for. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Signer {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The `Authorization` header value for a request to `host` (as in the Host header) with
    /// `target` (`TrentService.Encrypt`) and `body`, dated `amz_date` (`yyyyMMddTHHmmssZ`).
    /// The canonical request is the server's own construction (kms-aws-wire) specialised to this
    /// one shape, written out so that no header map is built per request.
    pub fn authorization(&self, host: &str, target: &str, body: &[u8], amz_date: &str) -> String {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let scope = format!("{date}/{}/{SERVICE}/aws4_request", self.region);
        let canonical = format!(
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-amz-date:{amz_date}\n\
             x-amz-target:{target}\n\n{SIGNED_HEADERS}\n{}",
            hex(&Sha256::digest(body))
        );
        let to_sign = string_to_sign(amz_date, &scope, &canonical);
        let key = signing_key(&self.secret_access_key, date, &self.region, SERVICE);
        let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
            self.access_key_id
        )
    }
}

/// Now, as `X-Amz-Date` wants it.
pub fn amz_date_now() -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    amz_date::format(unix)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use kms_aws_wire::sigv4::{SignedRequest, verify};

    /// The vector kms-aws-wire's verifier is tested with (generated with botocore's signer).
    const VECTOR_SIGNATURE: &str = "0090f56c6ee9f09272ba17b83a2a56365163f9810eb539c7ddf52263cb4019b3";

    fn example_signer(region: &str) -> Signer {
        Signer {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            region: region.into(),
        }
    }

    #[test]
    fn reproduces_the_botocore_vector() {
        let auth = example_signer("us-east-1").authorization(
            "127.0.0.1:4599",
            "TrentService.DescribeKey",
            br#"{"KeyId": "alias/example"}"#,
            "20150830T123600Z",
        );
        assert_eq!(
            auth,
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, \
                 SignedHeaders={SIGNED_HEADERS}, Signature={VECTOR_SIGNATURE}"
            )
        );
    }

    #[test]
    fn the_servers_verifier_accepts_what_we_sign_and_nothing_else() {
        let signer = Signer {
            access_key_id: "kmsdev".into(),
            secret_access_key: "kmsdevsecret".into(),
            region: "dev-1".into(),
        };
        let date = amz_date_now();
        let body = br#"{"KeyId":"alias/x","Plaintext":"AAAA"}"#;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8302"));
        headers.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
        headers.insert("x-amz-target", HeaderValue::from_static("TrentService.Encrypt"));
        let auth = signer.authorization("127.0.0.1:8302", "TrentService.Encrypt", body, &date);
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        let mut credentials = kms_aws_wire::Credentials::new();
        credentials.insert("kmsdev", "kmsdevsecret", "dev");
        let now = kms_aws_wire::amz_date::parse(&date).unwrap();
        let request = SignedRequest { method: "POST", path: "/", query: None, headers: &headers, body };
        assert_eq!(verify(&request, &credentials, "dev-1", now).unwrap().principal, "dev");
        let tampered = SignedRequest { body: br#"{"KeyId":"alias/y","Plaintext":"AAAA"}"#, ..request };
        assert!(verify(&tampered, &credentials, "dev-1", now).is_err());
        assert!(verify(&request, &credentials, "us-east-1", now).is_err());
    }

    #[test]
    fn dates_have_the_basic_iso_format() {
        let date = amz_date_now();
        assert_eq!(date.len(), 16, "{date}");
        assert_eq!(&date[8..9], "T");
        assert!(date.ends_with('Z'));
        assert!(kms_aws_wire::amz_date::parse(&date).is_some(), "{date}");
    }
}
