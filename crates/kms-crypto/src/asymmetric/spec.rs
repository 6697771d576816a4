//! The asymmetric key specs, algorithms and message types, and the AWS rules that pair them
//! (aws-kms-api.md §2.2, §2.3). Kept local so this crate does not depend on how kms-core models
//! them; the caller converts.

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::CryptoError;
use crate::backend::Message;

/// Largest `Message` AWS accepts for Sign/Verify with `RAW` (§2.3).
pub const MAX_RAW_MESSAGE_LEN: usize = 4096;

/// Length of the ML-DSA `μ` accepted with [`MessageType::ExternalMu`] (FIPS 204 §6.2).
pub const EXTERNAL_MU_LEN: usize = 64;

/// The asymmetric KMS key specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymmetricKeySpec {
    /// `RSA_2048`.
    Rsa2048,
    /// `RSA_3072`.
    Rsa3072,
    /// `RSA_4096`.
    Rsa4096,
    /// `ECC_NIST_P256` (secp256r1).
    EccNistP256,
    /// `ECC_NIST_P384` (secp384r1).
    EccNistP384,
    /// `ECC_NIST_P521` (secp521r1).
    EccNistP521,
    /// `ECC_SECG_P256K1` (secp256k1).
    EccSecgP256k1,
    /// `ECC_NIST_EDWARDS25519` (Ed25519).
    EccNistEdwards25519,
    /// `ML_DSA_44` (FIPS 204).
    MlDsa44,
    /// `ML_DSA_65` (FIPS 204).
    MlDsa65,
    /// `ML_DSA_87` (FIPS 204).
    MlDsa87,
}

impl AsymmetricKeySpec {
    /// Every spec, for tests and for callers that enumerate.
    pub const ALL: [Self; 11] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EccNistP256,
        Self::EccNistP384,
        Self::EccNistP521,
        Self::EccSecgP256k1,
        Self::EccNistEdwards25519,
        Self::MlDsa44,
        Self::MlDsa65,
        Self::MlDsa87,
    ];

    /// The modulus size in bits for an RSA spec, `None` otherwise.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The AWS name, for error messages.
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::EccNistP256 => "ECC_NIST_P256",
            Self::EccNistP384 => "ECC_NIST_P384",
            Self::EccNistP521 => "ECC_NIST_P521",
            Self::EccSecgP256k1 => "ECC_SECG_P256K1",
            Self::EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
            Self::MlDsa44 => "ML_DSA_44",
            Self::MlDsa65 => "ML_DSA_65",
            Self::MlDsa87 => "ML_DSA_87",
        }
    }

    /// Whether AWS offers this spec as a `DataKeyPairSpec` (§2.1; SM2 is China-only and absent
    /// here, ML-DSA is not a data key pair spec).
    pub fn is_data_key_pair_spec(self) -> bool {
        !matches!(self, Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87)
    }

    /// The signing algorithms AWS allows for this spec (§2.2).
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm::*;
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &[
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
            ],
            Self::EccNistP256 | Self::EccSecgP256k1 => &[EcdsaSha256],
            Self::EccNistP384 => &[EcdsaSha384],
            Self::EccNistP521 => &[EcdsaSha512],
            Self::EccNistEdwards25519 => &[Ed25519Sha512, Ed25519PhSha512],
            Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87 => &[MlDsaShake256],
        }
    }
}

/// The asymmetric signing algorithms (`SigningAlgorithmSpec` without the China-only SM2DSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// `RSASSA_PSS_SHA_256`: MGF1-SHA-256, salt length 32.
    RsassaPssSha256,
    /// `RSASSA_PSS_SHA_384`: MGF1-SHA-384, salt length 48.
    RsassaPssSha384,
    /// `RSASSA_PSS_SHA_512`: MGF1-SHA-512, salt length 64.
    RsassaPssSha512,
    /// `RSASSA_PKCS1_V1_5_SHA_256`.
    RsassaPkcs1V15Sha256,
    /// `RSASSA_PKCS1_V1_5_SHA_384`.
    RsassaPkcs1V15Sha384,
    /// `RSASSA_PKCS1_V1_5_SHA_512`.
    RsassaPkcs1V15Sha512,
    /// `ECDSA_SHA_256` (P-256, secp256k1).
    EcdsaSha256,
    /// `ECDSA_SHA_384` (P-384).
    EcdsaSha384,
    /// `ECDSA_SHA_512` (P-521).
    EcdsaSha512,
    /// `ED25519_SHA_512`: PureEdDSA (RFC 8032 Ed25519), `RAW` only.
    Ed25519Sha512,
    /// `ED25519_PH_SHA_512`: HashEdDSA (RFC 8032 Ed25519ph), `DIGEST` only.
    Ed25519PhSha512,
    /// `ML_DSA_SHAKE_256`: pure ML-DSA (FIPS 204), `RAW` or `EXTERNAL_MU`.
    MlDsaShake256,
}

impl SigningAlgorithm {
    /// The AWS name, for error messages.
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "RSASSA_PSS_SHA_256",
            Self::RsassaPssSha384 => "RSASSA_PSS_SHA_384",
            Self::RsassaPssSha512 => "RSASSA_PSS_SHA_512",
            Self::RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
            Self::RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
            Self::RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
            Self::EcdsaSha256 => "ECDSA_SHA_256",
            Self::EcdsaSha384 => "ECDSA_SHA_384",
            Self::EcdsaSha512 => "ECDSA_SHA_512",
            Self::Ed25519Sha512 => "ED25519_SHA_512",
            Self::Ed25519PhSha512 => "ED25519_PH_SHA_512",
            Self::MlDsaShake256 => "ML_DSA_SHAKE_256",
        }
    }

    /// The SHA-2 hash that `RAW` messages are hashed with and whose length `DIGEST` messages
    /// must have. `None` for ML-DSA, which hashes internally with SHAKE-256 and has no `DIGEST`.
    pub fn hash(self) -> Option<HashAlg> {
        match self {
            Self::RsassaPssSha256 | Self::RsassaPkcs1V15Sha256 | Self::EcdsaSha256 => Some(HashAlg::Sha256),
            Self::RsassaPssSha384 | Self::RsassaPkcs1V15Sha384 | Self::EcdsaSha384 => Some(HashAlg::Sha384),
            Self::RsassaPssSha512
            | Self::RsassaPkcs1V15Sha512
            | Self::EcdsaSha512
            | Self::Ed25519Sha512
            | Self::Ed25519PhSha512 => Some(HashAlg::Sha512),
            Self::MlDsaShake256 => None,
        }
    }

    /// The message types AWS accepts with this algorithm (§2.2).
    pub fn message_types(self) -> &'static [MessageType] {
        match self {
            Self::Ed25519Sha512 => &[MessageType::Raw],
            Self::Ed25519PhSha512 => &[MessageType::Digest],
            Self::MlDsaShake256 => &[MessageType::Raw, MessageType::ExternalMu],
            _ => &[MessageType::Raw, MessageType::Digest],
        }
    }
}

/// How the `Message` of Sign/Verify is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `RAW`: the message itself; this crate hashes it as the algorithm requires.
    Raw,
    /// `DIGEST`: the message is already the digest of the algorithm's hash.
    Digest,
    /// `EXTERNAL_MU`: the 64-byte ML-DSA `μ` (FIPS 204 §6.2), computed by the caller.
    ExternalMu,
}

impl MessageType {
    /// The AWS name, for error messages.
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::Raw => "RAW",
            Self::Digest => "DIGEST",
            Self::ExternalMu => "EXTERNAL_MU",
        }
    }
}

/// The RSA encryption algorithms (OAEP, the same hash for OAEP and MGF1, empty label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    /// `RSAES_OAEP_SHA_1`.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`.
    RsaesOaepSha256,
}

impl EncryptionAlgorithm {
    /// Output length of the OAEP hash in bytes.
    pub fn hash_len(self) -> usize {
        match self {
            Self::RsaesOaepSha1 => 20,
            Self::RsaesOaepSha256 => 32,
        }
    }
}

/// The SHA-2 hashes used by the classical signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Hash `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// Rejects an algorithm or message type that AWS does not allow with `spec` (§2.2). Run before
/// any key is parsed, so a mismatch never reaches a primitive.
pub(crate) fn check_signing_combination(
    spec: AsymmetricKeySpec,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
) -> Result<(), CryptoError> {
    if !spec.signing_algorithms().contains(&algorithm) {
        return Err(CryptoError::InvalidInput(format!(
            "signing algorithm {} is not valid for key spec {}",
            algorithm.aws_name(),
            spec.aws_name()
        )));
    }
    if !algorithm.message_types().contains(&message_type) {
        return Err(CryptoError::InvalidInput(format!(
            "message type {} is not valid for signing algorithm {}",
            message_type.aws_name(),
            algorithm.aws_name()
        )));
    }
    Ok(())
}

/// What a classical (RSA/ECDSA) signature covers: a `RAW` message (at most 4096 bytes), or a
/// `DIGEST` message of the hash's length. The caller has already checked the combination, so
/// `ExternalMu` does not reach here for these algorithms.
pub(crate) fn classical_message(
    hash: HashAlg,
    message_type: MessageType,
    message: &[u8],
) -> Result<Message<'_>, CryptoError> {
    match message_type {
        MessageType::Raw => {
            check_raw_len(message)?;
            Ok(Message::Raw(message))
        }
        MessageType::Digest => {
            check_digest_len(hash, message)?;
            Ok(Message::Digest(message))
        }
        MessageType::ExternalMu => {
            Err(CryptoError::InvalidInput("message type EXTERNAL_MU is only valid for ML-DSA".into()))
        }
    }
}

/// The digest a classical signature covers: the hash of a `RAW` message, or the `DIGEST` as
/// given (see [`classical_message`]).
pub(crate) fn message_digest(
    hash: HashAlg,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Ok(classical_message(hash, message_type, message)?.digest(hash).into_owned())
}

/// `RAW` messages are capped at 4096 bytes by the AWS model (§2.3).
pub(crate) fn check_raw_len(message: &[u8]) -> Result<(), CryptoError> {
    if message.len() > MAX_RAW_MESSAGE_LEN {
        return Err(CryptoError::InvalidInput(format!(
            "a RAW message must be at most {MAX_RAW_MESSAGE_LEN} bytes, got {}",
            message.len()
        )));
    }
    Ok(())
}

/// A `DIGEST` message must be exactly as long as the algorithm's hash output (§2.3).
pub(crate) fn check_digest_len(hash: HashAlg, message: &[u8]) -> Result<(), CryptoError> {
    if message.len() != hash.output_len() {
        return Err(CryptoError::InvalidInput(format!(
            "a DIGEST message for this algorithm must be {} bytes, got {}",
            hash.output_len(),
            message.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_pairs() {
        use AsymmetricKeySpec::*;
        use SigningAlgorithm::*;
        assert!(check_signing_combination(EccNistP256, EcdsaSha256, MessageType::Digest).is_ok());
        assert!(check_signing_combination(EccNistP256, EcdsaSha384, MessageType::Raw).is_err());
        assert!(check_signing_combination(EccNistP521, EcdsaSha512, MessageType::Raw).is_ok());
        assert!(check_signing_combination(EccSecgP256k1, EcdsaSha256, MessageType::Raw).is_ok());
        assert!(check_signing_combination(Rsa2048, EcdsaSha256, MessageType::Raw).is_err());
        assert!(check_signing_combination(EccNistEdwards25519, Ed25519Sha512, MessageType::Digest).is_err());
        assert!(check_signing_combination(EccNistEdwards25519, Ed25519PhSha512, MessageType::Raw).is_err());
        assert!(check_signing_combination(MlDsa65, MlDsaShake256, MessageType::Digest).is_err());
        assert!(check_signing_combination(MlDsa65, MlDsaShake256, MessageType::ExternalMu).is_ok());
        assert!(check_signing_combination(Rsa4096, RsassaPssSha256, MessageType::ExternalMu).is_err());
    }

    #[test]
    fn digest_length_error_names_the_expected_length() {
        let err = message_digest(HashAlg::Sha384, MessageType::Digest, &[0; 32]).unwrap_err();
        assert!(matches!(&err, CryptoError::InvalidInput(m) if m.contains("48")), "{err}");
        assert_eq!(message_digest(HashAlg::Sha256, MessageType::Raw, b"abc").unwrap().len(), 32);
        assert!(message_digest(HashAlg::Sha256, MessageType::Raw, &[0; 4097]).is_err());
    }
}
