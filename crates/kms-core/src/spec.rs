//! AWS KMS enumerations (key specs, usages, states, algorithms) and the rules that tie them
//! together: which usage a spec allows, which algorithms a key offers.

use crate::error::{KmsError, KmsResult};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares an enum whose values are spelled exactly as AWS spells them on the wire.
macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = KmsError;
            fn from_str(text: &str) -> KmsResult<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(enum_validation_error($field, text, &[$($text),+])),
                }
            }
        }
    };
}

/// AWS's wording for a value outside an enum, so SDK users recognise it.
pub fn enum_validation_error(field: &str, value: &str, allowed: &[&str]) -> KmsError {
    KmsError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    ))
}

aws_enum!(KeySpec, "keySpec" {
    SymmetricDefault => "SYMMETRIC_DEFAULT",
    Hmac224 => "HMAC_224",
    Hmac256 => "HMAC_256",
    Hmac384 => "HMAC_384",
    Hmac512 => "HMAC_512",
    Rsa2048 => "RSA_2048",
    Rsa3072 => "RSA_3072",
    Rsa4096 => "RSA_4096",
    EccNistP256 => "ECC_NIST_P256",
    EccNistP384 => "ECC_NIST_P384",
    EccNistP521 => "ECC_NIST_P521",
    EccSecgP256k1 => "ECC_SECG_P256K1",
    EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
    MlDsa44 => "ML_DSA_44",
    MlDsa65 => "ML_DSA_65",
    MlDsa87 => "ML_DSA_87",
    Sm2 => "SM2",
});

aws_enum!(KeyUsage, "keyUsage" {
    EncryptDecrypt => "ENCRYPT_DECRYPT",
    SignVerify => "SIGN_VERIFY",
    GenerateVerifyMac => "GENERATE_VERIFY_MAC",
    KeyAgreement => "KEY_AGREEMENT",
});

aws_enum!(KeyState, "keyState" {
    Creating => "Creating",
    Enabled => "Enabled",
    Disabled => "Disabled",
    PendingDeletion => "PendingDeletion",
    PendingImport => "PendingImport",
    PendingReplicaDeletion => "PendingReplicaDeletion",
    Unavailable => "Unavailable",
    Updating => "Updating",
});

aws_enum!(Origin, "origin" {
    AwsKms => "AWS_KMS",
    External => "EXTERNAL",
    AwsCloudhsm => "AWS_CLOUDHSM",
    ExternalKeyStore => "EXTERNAL_KEY_STORE",
});

aws_enum!(
    /// Who manages a key: the customer (every key CreateKey makes), or the service on behalf of
    /// an integrated service (AWS managed keys, `alias/aws/<service>`; see `crate::managed`).
    KeyManager, "keyManager" {
    Aws => "AWS",
    Customer => "CUSTOMER",
});

impl Default for KeyManager {
    /// Records stored before key managers existed are customer managed.
    fn default() -> Self {
        Self::Customer
    }
}

impl KeyManager {
    pub fn is_customer(&self) -> bool {
        *self == Self::Customer
    }
}

aws_enum!(EncryptionAlgorithm, "encryptionAlgorithm" {
    SymmetricDefault => "SYMMETRIC_DEFAULT",
    RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
    Sm2pke => "SM2PKE",
});

aws_enum!(SigningAlgorithm, "signingAlgorithm" {
    RsassaPssSha256 => "RSASSA_PSS_SHA_256",
    RsassaPssSha384 => "RSASSA_PSS_SHA_384",
    RsassaPssSha512 => "RSASSA_PSS_SHA_512",
    RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
    RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
    RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
    EcdsaSha256 => "ECDSA_SHA_256",
    EcdsaSha384 => "ECDSA_SHA_384",
    EcdsaSha512 => "ECDSA_SHA_512",
    Sm2dsa => "SM2DSA",
    MlDsaShake256 => "ML_DSA_SHAKE_256",
    Ed25519Sha512 => "ED25519_SHA_512",
    Ed25519PhSha512 => "ED25519_PH_SHA_512",
});

aws_enum!(MacAlgorithm, "macAlgorithm" {
    HmacSha224 => "HMAC_SHA_224",
    HmacSha256 => "HMAC_SHA_256",
    HmacSha384 => "HMAC_SHA_384",
    HmacSha512 => "HMAC_SHA_512",
});

aws_enum!(KeyAgreementAlgorithm, "keyAgreementAlgorithm" {
    Ecdh => "ECDH",
});

aws_enum!(DataKeySpec, "keySpec" {
    Aes128 => "AES_128",
    Aes256 => "AES_256",
});

aws_enum!(MessageType, "messageType" {
    Raw => "RAW",
    Digest => "DIGEST",
    ExternalMu => "EXTERNAL_MU",
});

aws_enum!(RotationType, "rotationType" {
    Automatic => "AUTOMATIC",
    OnDemand => "ON_DEMAND",
});

aws_enum!(WrappingAlgorithm, "wrappingAlgorithm" {
    RsaesPkcs1V15 => "RSAES_PKCS1_V1_5",
    RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
    RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
    RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
    Sm2pke => "SM2PKE",
});

aws_enum!(WrappingKeySpec, "wrappingKeySpec" {
    Rsa2048 => "RSA_2048",
    Rsa3072 => "RSA_3072",
    Rsa4096 => "RSA_4096",
    Sm2 => "SM2",
});

aws_enum!(ExpirationModel, "expirationModel" {
    KeyMaterialExpires => "KEY_MATERIAL_EXPIRES",
    KeyMaterialDoesNotExpire => "KEY_MATERIAL_DOES_NOT_EXPIRE",
});

aws_enum!(
    /// An operation a grant may allow (AWS's GrantOperation; PascalCase on the wire).
    GrantOperation, "operations" {
    Decrypt => "Decrypt",
    Encrypt => "Encrypt",
    GenerateDataKey => "GenerateDataKey",
    GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
    ReEncryptFrom => "ReEncryptFrom",
    ReEncryptTo => "ReEncryptTo",
    Sign => "Sign",
    Verify => "Verify",
    GetPublicKey => "GetPublicKey",
    CreateGrant => "CreateGrant",
    RetireGrant => "RetireGrant",
    DescribeKey => "DescribeKey",
    GenerateDataKeyPair => "GenerateDataKeyPair",
    GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
    GenerateMac => "GenerateMac",
    VerifyMac => "VerifyMac",
    DeriveSharedSecret => "DeriveSharedSecret",
});

impl DataKeySpec {
    pub fn byte_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
}

/// The broad family of a key; UpdateAlias may only move an alias within one family and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Symmetric,
    Hmac,
    Asymmetric,
}

impl KeySpec {
    pub fn family(self) -> KeyFamily {
        match self {
            Self::SymmetricDefault => KeyFamily::Symmetric,
            Self::Hmac224 | Self::Hmac256 | Self::Hmac384 | Self::Hmac512 => KeyFamily::Hmac,
            _ => KeyFamily::Asymmetric,
        }
    }

    /// The usages AWS allows for this spec (§2.2 of the API reference).
    pub fn allowed_usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            Self::SymmetricDefault => &[EncryptDecrypt],
            Self::Hmac224 | Self::Hmac256 | Self::Hmac384 | Self::Hmac512 => &[GenerateVerifyMac],
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &[EncryptDecrypt, SignVerify],
            Self::EccNistP256 | Self::EccNistP384 | Self::EccNistP521 => &[SignVerify, KeyAgreement],
            Self::EccSecgP256k1 | Self::EccNistEdwards25519 => &[SignVerify],
            Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87 => &[SignVerify],
            Self::Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
        }
    }

    /// The lengths of key material ImportKeyMaterial accepts for this spec, or None when this
    /// server does not import material for it (asymmetric specs). AWS: 256-bit symmetric keys;
    /// HMAC keys between their digest length and their block size.
    pub fn importable_material_len(self) -> Option<std::ops::RangeInclusive<usize>> {
        match self {
            Self::SymmetricDefault => Some(32..=32),
            Self::Hmac224 => Some(28..=64),
            Self::Hmac256 => Some(32..=64),
            Self::Hmac384 => Some(48..=128),
            Self::Hmac512 => Some(64..=128),
            _ => None,
        }
    }

    /// The usage a CreateKey without KeyUsage gets. Only symmetric keys have a default.
    pub fn default_usage(self) -> Option<KeyUsage> {
        match self {
            Self::SymmetricDefault => Some(KeyUsage::EncryptDecrypt),
            _ => None,
        }
    }

    /// The single MAC algorithm of an HMAC key.
    pub fn mac_algorithm(self) -> Option<MacAlgorithm> {
        match self {
            Self::Hmac224 => Some(MacAlgorithm::HmacSha224),
            Self::Hmac256 => Some(MacAlgorithm::HmacSha256),
            Self::Hmac384 => Some(MacAlgorithm::HmacSha384),
            Self::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        }
    }

    /// Whether this server can create keys of this spec. SM2 exists only in AWS's China regions.
    pub fn is_implemented(self) -> bool {
        self != Self::Sm2
    }

    /// The specs GenerateDataKeyPair accepts as KeyPairSpec (same names as the key specs).
    pub fn is_data_key_pair_spec(self) -> bool {
        matches!(
            self,
            Self::Rsa2048
                | Self::Rsa3072
                | Self::Rsa4096
                | Self::EccNistP256
                | Self::EccNistP384
                | Self::EccNistP521
                | Self::EccSecgP256k1
                | Self::EccNistEdwards25519
                | Self::Sm2
        )
    }

    /// Checks (spec, usage) and fills in the default usage, with AWS's exceptions.
    pub fn resolve_usage(self, usage: Option<KeyUsage>) -> KmsResult<KeyUsage> {
        let usage = match usage.or(self.default_usage()) {
            Some(usage) => usage,
            None => {
                return Err(KmsError::validation(format!(
                    "KeyUsage is required for a {self} key; allowed: {}",
                    join(self.allowed_usages())
                )));
            }
        };
        if self.allowed_usages().contains(&usage) {
            Ok(usage)
        } else {
            Err(KmsError::validation(format!(
                "KeyUsage {usage} is not compatible with KeySpec {self}; allowed: {}",
                join(self.allowed_usages())
            )))
        }
    }
}

/// The algorithms a key offers, as DescribeKey lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyAlgorithms {
    pub encryption: Vec<EncryptionAlgorithm>,
    pub signing: Vec<SigningAlgorithm>,
    pub mac: Vec<MacAlgorithm>,
    pub key_agreement: Vec<KeyAgreementAlgorithm>,
}

impl KeyAlgorithms {
    pub fn for_key(spec: KeySpec, usage: KeyUsage) -> Self {
        use SigningAlgorithm::*;
        let mut algorithms = Self::default();
        match (spec.family(), usage) {
            (KeyFamily::Symmetric, _) => algorithms.encryption = vec![EncryptionAlgorithm::SymmetricDefault],
            (KeyFamily::Hmac, _) => algorithms.mac = spec.mac_algorithm().into_iter().collect(),
            (KeyFamily::Asymmetric, KeyUsage::EncryptDecrypt) => {
                algorithms.encryption = match spec {
                    KeySpec::Sm2 => vec![EncryptionAlgorithm::Sm2pke],
                    _ => vec![EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256],
                }
            }
            (KeyFamily::Asymmetric, KeyUsage::SignVerify) => {
                algorithms.signing = match spec {
                    KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => vec![
                        RsassaPssSha256,
                        RsassaPssSha384,
                        RsassaPssSha512,
                        RsassaPkcs1V15Sha256,
                        RsassaPkcs1V15Sha384,
                        RsassaPkcs1V15Sha512,
                    ],
                    KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => vec![EcdsaSha256],
                    KeySpec::EccNistP384 => vec![EcdsaSha384],
                    KeySpec::EccNistP521 => vec![EcdsaSha512],
                    KeySpec::EccNistEdwards25519 => vec![Ed25519Sha512, Ed25519PhSha512],
                    KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => vec![MlDsaShake256],
                    KeySpec::Sm2 => vec![Sm2dsa],
                    _ => vec![],
                }
            }
            (KeyFamily::Asymmetric, KeyUsage::KeyAgreement) => {
                algorithms.key_agreement = vec![KeyAgreementAlgorithm::Ecdh]
            }
            (KeyFamily::Asymmetric, KeyUsage::GenerateVerifyMac) => {}
        }
        algorithms
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(|item| item.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_aws_names() {
        for spec in KeySpec::ALL {
            assert_eq!(spec.as_str().parse::<KeySpec>().unwrap(), *spec);
        }
        for state in KeyState::ALL {
            assert_eq!(state.as_str().parse::<KeyState>().unwrap(), *state);
        }
    }

    #[test]
    fn unknown_enum_value_is_a_validation_error_listing_the_allowed_values() {
        let err = "AES_512".parse::<DataKeySpec>().unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::ValidationException);
        assert!(err.message.contains("[AES_128, AES_256]"), "{}", err.message);
    }

    #[test]
    fn usage_rules_follow_aws() {
        assert_eq!(KeySpec::SymmetricDefault.resolve_usage(None).unwrap(), KeyUsage::EncryptDecrypt);
        assert!(KeySpec::Hmac256.resolve_usage(None).is_err());
        assert!(KeySpec::Hmac256.resolve_usage(Some(KeyUsage::EncryptDecrypt)).is_err());
        assert_eq!(
            KeySpec::Hmac256.resolve_usage(Some(KeyUsage::GenerateVerifyMac)).unwrap(),
            KeyUsage::GenerateVerifyMac
        );
        assert!(KeySpec::EccSecgP256k1.resolve_usage(Some(KeyUsage::KeyAgreement)).is_err());
        assert!(KeySpec::SymmetricDefault.resolve_usage(Some(KeyUsage::SignVerify)).is_err());
    }
}
