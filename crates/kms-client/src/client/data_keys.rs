//! The client as the source of envelope encryption's data keys, so that
//! [`envelope`](crate::envelope) gets retries, failover and multi-Region routing too.

use super::{Client, Error};
use crate::envelope::{DataKey, DataKeySource, DecryptedDataKey, EncryptionContext};
use kms_proto::v1 as pb;
use std::future::Future;

impl DataKeySource for Client {
    type Error = Error;

    fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, Error>> + Send {
        let request = pb::GenerateDataKeyRequest {
            key_id: key_id.to_string(),
            encryption_context: context.to_hash_map(),
            key_spec: pb::DataKeySpec::Aes256.into(),
            ..Default::default()
        };
        async move {
            let generated = Client::generate_data_key(self, request).await?;
            Ok(DataKey {
                plaintext: generated.plaintext.into_zeroizing(),
                ciphertext_blob: generated.ciphertext_blob,
                key_id: generated.key_id,
            })
        }
    }

    fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> impl Future<Output = Result<DecryptedDataKey, Error>> + Send {
        let request = pb::DecryptRequest {
            ciphertext_blob: ciphertext_blob.to_vec(),
            encryption_context: context.to_hash_map(),
            key_id: key_id.map(str::to_string),
            ..Default::default()
        };
        async move {
            let decrypted = Client::decrypt(self, request).await?;
            Ok(DecryptedDataKey { plaintext: decrypted.plaintext.into_zeroizing(), key_id: decrypted.key_id })
        }
    }
}
