//! Drivers for kmsd: the gRPC API, the AWS JSON 1.1 endpoint (SigV4-signed), and the baseline
//! server (which speaks the same gRPC Encrypt).

use crate::grpcc;
use crate::httpc;
use crate::load::{BoxFuture, CallError, Conn, Driver, KeyKind, Op, Output, Workload};
use crate::sigv4::{self, Signer};
use crate::stats::status_name;
use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use kms_proto::v1 as pb;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

/// The AWS key usage and key spec of each kind.
fn key_spec(kind: KeyKind) -> (pb::KeyUsage, pb::KeySpec) {
    match kind {
        KeyKind::Symmetric => (pb::KeyUsage::EncryptDecrypt, pb::KeySpec::SymmetricDefault),
        KeyKind::Ed25519 => (pb::KeyUsage::SignVerify, pb::KeySpec::EccNistEdwards25519),
        KeyKind::P256 => (pb::KeyUsage::SignVerify, pb::KeySpec::EccNistP256),
        KeyKind::Rsa2048 => (pb::KeyUsage::SignVerify, pb::KeySpec::Rsa2048),
        KeyKind::Hmac256 => (pb::KeyUsage::GenerateVerifyMac, pb::KeySpec::Hmac256),
    }
}

/// The signing algorithm used with each kind (PSS for RSA, as OpenBao's default).
fn signing_algorithm(kind: KeyKind) -> pb::SigningAlgorithmSpec {
    match kind {
        KeyKind::Ed25519 => pb::SigningAlgorithmSpec::Ed25519Sha512,
        KeyKind::Rsa2048 => pb::SigningAlgorithmSpec::RsassaPssSha256,
        _ => pb::SigningAlgorithmSpec::EcdsaSha256,
    }
}

/// kmsd's gRPC API; one HTTP/2 connection per client.
pub struct Grpc {
    pub endpoint: String,
}

impl Driver for Grpc {
    fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
        Box::pin(async move { Ok(Conn::Grpc(grpcc::connect(&self.endpoint).await?)) })
    }

    fn call<'a>(&'a self, conn: &'a mut Conn, op: &'a Op) -> BoxFuture<'a, Result<Output, CallError>> {
        Box::pin(async move {
            let Conn::Grpc(client) = conn else { return Err("not a gRPC connection".to_string()) };
            match tokio::time::timeout(TIMEOUT, grpc_call(client, op)).await {
                Ok(answer) => answer.map_err(|status| status_name(&status)),
                Err(_) => Err("timeout".to_string()),
            }
        })
    }
}

async fn grpc_call(client: &mut grpcc::Client, op: &Op) -> Result<Output, tonic::Status> {
    let raw = pb::MessageType::Raw as i32;
    Ok(match op.clone() {
        Op::CreateKey(kind) => {
            let (usage, spec) = key_spec(kind);
            let request = pb::CreateKeyRequest {
                description: Some("kms-bench".into()),
                key_usage: usage as i32,
                key_spec: spec as i32,
                ..Default::default()
            };
            let metadata = client.call::<pb::CreateKeyResponse>("CreateKey", &request).await?.key_metadata;
            Output { key: metadata.map(|m| m.key_id), blob: None }
        }
        Op::Encrypt { key, plaintext } => {
            let request =
                pb::EncryptRequest { key_id: key, plaintext: plaintext.to_vec(), ..Default::default() };
            let blob = client.call::<pb::EncryptResponse>("Encrypt", &request).await?.ciphertext_blob;
            Output { key: None, blob: Some(blob.into()) }
        }
        Op::Decrypt { key, ciphertext } => {
            let request = pb::DecryptRequest {
                key_id: Some(key),
                ciphertext_blob: ciphertext.to_vec(),
                ..Default::default()
            };
            client.call::<pb::DecryptResponse>("Decrypt", &request).await?;
            Output::default()
        }
        Op::GenerateDataKey { key } => {
            let request = pb::GenerateDataKeyRequest {
                key_id: key,
                key_spec: pb::DataKeySpec::Aes256 as i32,
                ..Default::default()
            };
            client.call::<pb::GenerateDataKeyResponse>("GenerateDataKey", &request).await?;
            Output::default()
        }
        Op::Sign { key, kind, message } => {
            let request = pb::SignRequest {
                key_id: key,
                message: message.to_vec(),
                message_type: raw,
                signing_algorithm: signing_algorithm(kind) as i32,
                ..Default::default()
            };
            let signature = client.call::<pb::SignResponse>("Sign", &request).await?.signature;
            Output { key: None, blob: Some(signature.into()) }
        }
        Op::Verify { key, kind, message, signature } => {
            let request = pb::VerifyRequest {
                key_id: key,
                message: message.to_vec(),
                message_type: raw,
                signature: signature.to_vec(),
                signing_algorithm: signing_algorithm(kind) as i32,
                ..Default::default()
            };
            if !client.call::<pb::VerifyResponse>("Verify", &request).await?.signature_valid {
                return Err(tonic::Status::data_loss("signature not valid"));
            }
            Output::default()
        }
        Op::GenerateMac { key, message } => {
            let request = pb::GenerateMacRequest {
                key_id: key,
                message: message.to_vec(),
                mac_algorithm: pb::MacAlgorithmSpec::HmacSha256 as i32,
                ..Default::default()
            };
            client.call::<pb::GenerateMacResponse>("GenerateMac", &request).await?;
            Output::default()
        }
    })
}

/// The baseline server: gRPC Encrypt only. It has no keys, so "creating" one is answered here
/// without a call (the key id is ignored by the server).
pub struct Baseline(pub Grpc);

impl Driver for Baseline {
    fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
        self.0.connect()
    }

    fn call<'a>(&'a self, conn: &'a mut Conn, op: &'a Op) -> BoxFuture<'a, Result<Output, CallError>> {
        match op {
            Op::CreateKey(_) => Box::pin(async { Ok(Output { key: Some("baseline".into()), blob: None }) }),
            _ => self.0.call(conn, op),
        }
    }

    fn supports(&self, workload: Workload) -> bool {
        matches!(workload, Workload::Encrypt32 | Workload::Encrypt4k)
    }
}

/// kmsd's AWS JSON 1.1 endpoint: SigV4-signed POSTs over one HTTP/1.1 keep-alive connection per
/// client.
pub struct AwsJson {
    /// `host:port` of the endpoint.
    pub host: String,
    pub signer: Signer,
}

impl AwsJson {
    /// kmsd dev mode's access key (`kmsd dev` prints it; its region is `dev-1`), which
    /// kms-bench's regions configure too.
    pub fn dev(host: String, region: &str) -> Self {
        let signer = Signer {
            access_key_id: crate::region::AWS_ACCESS_KEY_ID.into(),
            secret_access_key: crate::region::AWS_SECRET_ACCESS_KEY.into(),
            region: region.to_string(),
        };
        Self { host, signer }
    }
}

impl Driver for AwsJson {
    fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
        Box::pin(async move { Ok(Conn::Http(httpc::Conn::connect(&self.host).await?)) })
    }

    fn call<'a>(&'a self, conn: &'a mut Conn, op: &'a Op) -> BoxFuture<'a, Result<Output, CallError>> {
        Box::pin(async move {
            let Conn::Http(conn) = conn else { return Err("not an HTTP connection".to_string()) };
            let (operation, body) = aws_request(op);
            let target = format!("TrentService.{operation}");
            let body = Bytes::from(body.to_string());
            let date = sigv4::amz_date_now();
            let authorization = self.signer.authorization(conn.host(), &target, &body, &date);
            let headers = [
                ("content-type", sigv4::CONTENT_TYPE),
                ("x-amz-date", date.as_str()),
                ("x-amz-target", target.as_str()),
                ("authorization", authorization.as_str()),
            ];
            let answer = conn.send(http::Method::POST, "/", &headers, body).await?;
            if !answer.status.is_success() {
                return Err(aws_error_name(answer.status, &answer.body));
            }
            let value: Value = serde_json::from_slice(&answer.body).map_err(|e| format!("bad JSON: {e}"))?;
            aws_output(op, &value)
        })
    }
}

/// The operation name and JSON body of `op`.
fn aws_request(op: &Op) -> (&'static str, Value) {
    let name = |v: Option<&'static str>| v.unwrap_or_default();
    match op {
        Op::CreateKey(kind) => {
            let (usage, spec) = key_spec(*kind);
            let body = json!({"KeySpec": name(spec.aws_name()), "KeyUsage": name(usage.aws_name()), "Description": "kms-bench"});
            ("CreateKey", body)
        }
        Op::Encrypt { key, plaintext } => {
            ("Encrypt", json!({"KeyId": key, "Plaintext": B64.encode(plaintext)}))
        }
        Op::Decrypt { key, ciphertext } => {
            ("Decrypt", json!({"KeyId": key, "CiphertextBlob": B64.encode(ciphertext)}))
        }
        Op::GenerateDataKey { key } => ("GenerateDataKey", json!({"KeyId": key, "KeySpec": "AES_256"})),
        Op::Sign { key, kind, message } => (
            "Sign",
            json!({"KeyId": key, "Message": B64.encode(message), "MessageType": "RAW",
                   "SigningAlgorithm": name(signing_algorithm(*kind).aws_name())}),
        ),
        Op::Verify { key, kind, message, signature } => (
            "Verify",
            json!({"KeyId": key, "Message": B64.encode(message), "MessageType": "RAW",
                   "Signature": B64.encode(signature),
                   "SigningAlgorithm": name(signing_algorithm(*kind).aws_name())}),
        ),
        Op::GenerateMac { key, message } => (
            "GenerateMac",
            json!({"KeyId": key, "Message": B64.encode(message), "MacAlgorithm": "HMAC_SHA_256"}),
        ),
    }
}

/// What a later call needs from an answer: the new key's id, the ciphertext, the signature.
fn aws_output(op: &Op, value: &Value) -> Result<Output, CallError> {
    let blob = |field: &str| -> Result<Option<Bytes>, CallError> {
        let text = value[field].as_str().ok_or_else(|| format!("answer without {field}"))?;
        Ok(Some(B64.decode(text).map_err(|e| format!("{field} not base64: {e}"))?.into()))
    };
    match op {
        Op::CreateKey(_) => {
            let key = value["KeyMetadata"]["KeyId"].as_str().ok_or("answer without KeyMetadata.KeyId")?;
            Ok(Output { key: Some(key.to_string()), blob: None })
        }
        Op::Encrypt { .. } => Ok(Output { key: None, blob: blob("CiphertextBlob")? }),
        Op::Sign { .. } => Ok(Output { key: None, blob: blob("Signature")? }),
        Op::Verify { .. } if value["SignatureValid"] != json!(true) => Err("signature not valid".into()),
        _ => Ok(Output::default()),
    }
}

/// An AWS error answer's exception name (`__type`, after any `#`), else its HTTP status.
fn aws_error_name(status: http::StatusCode, body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match value["__type"].as_str() {
        Some(kind) => kind.rsplit('#').next().unwrap_or(kind).to_string(),
        None => format!("HTTP {}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_bodies_use_the_wire_names() {
        let (name, body) = aws_request(&Op::CreateKey(KeyKind::Ed25519));
        assert_eq!(name, "CreateKey");
        assert_eq!(body["KeySpec"], "ECC_NIST_EDWARDS25519");
        assert_eq!(body["KeyUsage"], "SIGN_VERIFY");
        let sign = Op::Sign { key: "k".into(), kind: KeyKind::Rsa2048, message: Bytes::from_static(b"m") };
        assert_eq!(aws_request(&sign).1["SigningAlgorithm"], "RSASSA_PSS_SHA_256");
        let encrypt = Op::Encrypt { key: "k".into(), plaintext: Bytes::from_static(b"\x00\x01") };
        assert_eq!(aws_request(&encrypt).1["Plaintext"], "AAE=");
    }

    #[test]
    fn aws_errors_are_named_by_exception() {
        let body = br#"{"__type":"com.amazonaws.kms#NotFoundException","message":"x"}"#;
        assert_eq!(aws_error_name(http::StatusCode::BAD_REQUEST, body), "NotFoundException");
        assert_eq!(aws_error_name(http::StatusCode::BAD_GATEWAY, b"oops"), "HTTP 502");
        let verify = Op::Verify {
            key: "k".into(),
            kind: KeyKind::P256,
            message: Bytes::new(),
            signature: Bytes::new(),
        };
        assert!(aws_output(&verify, &json!({"SignatureValid": false})).is_err());
        assert!(aws_output(&verify, &json!({"SignatureValid": true})).is_ok());
    }
}
