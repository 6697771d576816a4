//! Answers that carry plaintext: the bytes are wiped when dropped and never shown by `Debug`.

use kms_proto::v1 as pb;
use std::fmt;
use zeroize::Zeroizing;

/// Secret bytes: a decrypted plaintext or a data key.
#[derive(Clone)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext(<{} bytes redacted>)", self.0.len())
    }
}

/// Decrypt's answer.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The ARN of the key that decrypted (in the region that answered).
    pub key_id: String,
    pub plaintext: Plaintext,
    pub encryption_algorithm: i32,
    pub key_material_id: String,
    /// With a `Recipient` (an attested enclave): the plaintext encrypted for it.
    pub ciphertext_for_recipient: Vec<u8>,
}

impl From<pb::DecryptResponse> for Decrypted {
    fn from(mut response: pb::DecryptResponse) -> Self {
        Self {
            key_id: response.key_id,
            plaintext: Plaintext::new(std::mem::take(&mut response.plaintext)),
            encryption_algorithm: response.encryption_algorithm,
            key_material_id: response.key_material_id,
            ciphertext_for_recipient: response.ciphertext_for_recipient,
        }
    }
}

/// GenerateDataKey's answer.
#[derive(Debug, Clone)]
pub struct GeneratedDataKey {
    /// The ARN of the key that encrypted the data key.
    pub key_id: String,
    pub plaintext: Plaintext,
    pub ciphertext_blob: Vec<u8>,
    pub key_material_id: String,
    /// With a `Recipient` (an attested enclave): the data key encrypted for it.
    pub ciphertext_for_recipient: Vec<u8>,
}

impl From<pb::GenerateDataKeyResponse> for GeneratedDataKey {
    fn from(mut response: pb::GenerateDataKeyResponse) -> Self {
        Self {
            key_id: response.key_id,
            plaintext: Plaintext::new(std::mem::take(&mut response.plaintext)),
            ciphertext_blob: response.ciphertext_blob,
            key_material_id: response.key_material_id,
            ciphertext_for_recipient: response.ciphertext_for_recipient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_plaintext() {
        let decrypted = Decrypted::from(pb::DecryptResponse {
            key_id: "arn".into(),
            plaintext: b"top secret".to_vec(),
            ..Default::default()
        });
        let shown = format!("{decrypted:?}");
        assert!(!shown.contains("top secret") && !shown.contains("116, 111, 112"), "{shown}");
        assert!(shown.contains("10 bytes redacted"), "{shown}");
        assert_eq!(decrypted.plaintext.expose(), b"top secret");
        let data_key = GeneratedDataKey::from(pb::GenerateDataKeyResponse {
            plaintext: vec![7; 32],
            ..Default::default()
        });
        assert!(format!("{data_key:?}").contains("<32 bytes redacted>"));
    }
}
