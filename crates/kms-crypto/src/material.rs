//! Generating fresh key material for the symmetric key specs.

use crate::{CryptoError, MacAlgorithm, SecretBytes, random::random_bytes};

/// The symmetric KMS key specs this crate can generate material for. Kept local so this crate
/// does not depend on how kms-core models key specs; the caller converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymmetricKeySpec {
    /// `SYMMETRIC_DEFAULT`: an AES-256-GCM key.
    SymmetricDefault,
    /// `HMAC_224`: an HMAC-SHA-224 key.
    Hmac224,
    /// `HMAC_256`: an HMAC-SHA-256 key.
    Hmac256,
    /// `HMAC_384`: an HMAC-SHA-384 key.
    Hmac384,
    /// `HMAC_512`: an HMAC-SHA-512 key.
    Hmac512,
}

impl SymmetricKeySpec {
    /// Length in bytes of the key material. For HMAC the key is as long as the digest output,
    /// as AWS KMS does: shorter would cut security, longer adds nothing.
    pub fn material_len(self) -> usize {
        match self {
            Self::SymmetricDefault => crate::aead::AES256_KEY_LEN,
            Self::Hmac224 => 28,
            Self::Hmac256 => 32,
            Self::Hmac384 => 48,
            Self::Hmac512 => 64,
        }
    }

    /// The MAC algorithm an HMAC key spec is used with; `None` for `SYMMETRIC_DEFAULT`.
    pub fn mac_algorithm(self) -> Option<MacAlgorithm> {
        match self {
            Self::SymmetricDefault => None,
            Self::Hmac224 => Some(MacAlgorithm::HmacSha224),
            Self::Hmac256 => Some(MacAlgorithm::HmacSha256),
            Self::Hmac384 => Some(MacAlgorithm::HmacSha384),
            Self::Hmac512 => Some(MacAlgorithm::HmacSha512),
        }
    }
}

/// Fresh random key material for `spec`, from the OS CSPRNG.
pub fn generate_symmetric_material(spec: SymmetricKeySpec) -> Result<SecretBytes, CryptoError> {
    random_bytes(spec.material_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_has_the_spec_length() {
        for (spec, len) in [
            (SymmetricKeySpec::SymmetricDefault, 32),
            (SymmetricKeySpec::Hmac224, 28),
            (SymmetricKeySpec::Hmac256, 32),
            (SymmetricKeySpec::Hmac384, 48),
            (SymmetricKeySpec::Hmac512, 64),
        ] {
            assert_eq!(generate_symmetric_material(spec).unwrap().len(), len, "{spec:?}");
        }
    }

    #[test]
    fn hmac_key_length_matches_mac_output() {
        for spec in [
            SymmetricKeySpec::Hmac224,
            SymmetricKeySpec::Hmac256,
            SymmetricKeySpec::Hmac384,
            SymmetricKeySpec::Hmac512,
        ] {
            let alg = spec.mac_algorithm().unwrap();
            assert_eq!(alg.output_len(), spec.material_len());
        }
        assert_eq!(SymmetricKeySpec::SymmetricDefault.mac_algorithm(), None);
    }
}
