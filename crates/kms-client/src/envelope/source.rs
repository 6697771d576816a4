//! Where data keys come from: the two KMS calls envelope encryption needs, behind a small trait.

use std::error::Error as StdError;
use std::future::Future;

use kms_proto::v1;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use tonic::codegen::{Body, Bytes, StdError as BoxError};
use zeroize::Zeroizing;

use super::context::EncryptionContext;

/// A fresh data key: its plaintext (for this process only) and its copy encrypted by KMS.
#[derive(Clone)]
pub struct DataKey {
    /// The 32-byte AES-256 key; wiped from memory when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The data key encrypted under the KMS key, bound to the encryption context
    /// (GenerateDataKey's `CiphertextBlob`); it goes into the message header.
    pub ciphertext_blob: Vec<u8>,
    /// The ARN of the KMS key that encrypted it (GenerateDataKey's `KeyId`).
    pub key_id: String,
}

/// A data key that KMS decrypted.
pub struct DecryptedDataKey {
    /// The 32-byte AES-256 key; wiped from memory when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The ARN of the KMS key that decrypted it (Decrypt's `KeyId`).
    pub key_id: String,
}

// Key material never reaches a log through `{:?}`.
impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl std::fmt::Debug for DecryptedDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedDataKey")
            .field("plaintext", &"<redacted>")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// The KMS operations envelope encryption needs.
///
/// Implemented for the generated gRPC client ([`KeyManagementServiceClient`]) over any tonic
/// transport; a client with retries and failover implements it the same way. An implementation
/// must call KMS (or an equivalent that enforces the key's policy and the encryption context):
/// the envelope relies on `decrypt` refusing a `CiphertextBlob` whose context differs from the
/// one it was made with, and on the `key_id` it reports being the key that really decrypted it.
pub trait DataKeySource: Send + Sync {
    /// The implementation's error, kept as the source of [`EnvelopeError::Kms`](super::EnvelopeError::Kms).
    type Error: StdError + Send + Sync + 'static;

    /// GenerateDataKey with `KeySpec` AES_256 under `key_id` (key id, ARN or alias) and `context`.
    fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, Self::Error>> + Send;

    /// Decrypt of an encrypted data key with the context it was generated with. With `key_id`,
    /// KMS must refuse a blob that is not under that key (AWS's `IncorrectKeyException`).
    fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> impl Future<Output = Result<DecryptedDataKey, Self::Error>> + Send;
}

impl<T> DataKeySource for KeyManagementServiceClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + Sync,
    T::Error: Into<BoxError>,
    T::Future: Send,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<BoxError> + Send,
{
    type Error = tonic::Status;

    fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, tonic::Status>> + Send {
        // The generated client needs `&mut self`; a clone shares the same connection.
        let mut client = self.clone();
        let request = v1::GenerateDataKeyRequest {
            key_id: key_id.to_string(),
            encryption_context: context.to_hash_map(),
            key_spec: v1::DataKeySpec::Aes256.into(),
            ..Default::default()
        };
        async move {
            // Called by path: the trait's `&self` method of the same name would win method lookup.
            let response =
                KeyManagementServiceClient::generate_data_key(&mut client, request).await?.into_inner();
            Ok(DataKey {
                plaintext: Zeroizing::new(response.plaintext),
                ciphertext_blob: response.ciphertext_blob,
                key_id: response.key_id,
            })
        }
    }

    fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> impl Future<Output = Result<DecryptedDataKey, tonic::Status>> + Send {
        let mut client = self.clone();
        let request = v1::DecryptRequest {
            ciphertext_blob: ciphertext_blob.to_vec(),
            encryption_context: context.to_hash_map(),
            key_id: key_id.map(str::to_string),
            ..Default::default()
        };
        async move {
            let response = KeyManagementServiceClient::decrypt(&mut client, request).await?.into_inner();
            Ok(DecryptedDataKey { plaintext: Zeroizing::new(response.plaintext), key_id: response.key_id })
        }
    }
}

/// Whether two key ARNs name the same key, for checking KMS's Decrypt answer against the
/// header. Equal strings match; so do the ARNs of one multi-Region key (`key/mrk-...`) in two
/// regions of the same partition and account, since a replica decrypts what its primary
/// encrypted and answers with its own region's ARN.
pub(crate) fn same_key(header: &str, kms: &str) -> bool {
    if header == kms {
        return true;
    }
    match (parse_arn(header), parse_arn(kms)) {
        (Some(a), Some(b)) => {
            a.resource.starts_with("key/mrk-")
                && a.partition == b.partition
                && a.account == b.account
                && a.resource == b.resource
        }
        _ => false,
    }
}

struct Arn<'a> {
    partition: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// `arn:<partition>:kms:<region>:<account>:<resource>`
fn parse_arn(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kms"), Some(_region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Arn { partition, account, resource })
}
