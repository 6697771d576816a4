//! A stand-in for KMS with one fixed data key, for the envelope's memory test and throughput
//! benchmark, which measure the format, not KMS (the real KMS is in tests/tests/envelope_files.rs).
//! Its "encrypted" data key is the key id itself, so Decrypt names the key GenerateDataKey did.

use kms_client::envelope::{DataKey, DataKeySource, DecryptedDataKey, EncryptionContext};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[error("not a data key this stand-in handed out")]
pub struct Unknown;

pub struct OneKey;

fn data_key() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(vec![0x5A; 32])
}

fn arn(key_id: &str) -> String {
    format!("arn:aws:kms:dev-1:000000000000:key/{key_id}")
}

impl DataKeySource for OneKey {
    type Error = Unknown;

    async fn generate_data_key(&self, key_id: &str, _: &EncryptionContext) -> Result<DataKey, Unknown> {
        Ok(DataKey {
            plaintext: data_key(),
            ciphertext_blob: key_id.as_bytes().to_vec(),
            key_id: arn(key_id),
        })
    }

    async fn decrypt(
        &self,
        blob: &[u8],
        _: &EncryptionContext,
        _: Option<&str>,
    ) -> Result<DecryptedDataKey, Unknown> {
        let key_id = std::str::from_utf8(blob).map_err(|_| Unknown)?;
        Ok(DecryptedDataKey { plaintext: data_key(), key_id: arn(key_id) })
    }
}
