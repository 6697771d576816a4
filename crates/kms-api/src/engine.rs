//! The bridge between the domain's enums (kms-core) and the crypto engine's (kms-crypto), and
//! key generation off the async runtime. kms-crypto keeps its own enums so it stays usable and
//! testable without the domain; this module is the one place they meet.

use crate::kms::crypto_error;
use kms_core::spec::{EncryptionAlgorithm, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use kms_core::{KmsError, KmsResult};
use kms_crypto::asymmetric as asym;
use kms_crypto::{SecretBytes, SymmetricKeySpec};

/// New key material for `spec` and, for asymmetric specs, the DER public key.
///
/// Asymmetric generation runs on the blocking pool: an RSA-4096 key takes seconds, and must not
/// stall the requests this node is serving meanwhile.
pub(crate) async fn generate_material(spec: KeySpec) -> KmsResult<(SecretBytes, Vec<u8>)> {
    if let Some(symmetric) = symmetric_spec(spec) {
        let material = kms_crypto::generate_symmetric_material(symmetric).map_err(crypto_error)?;
        return Ok((material, Vec::new()));
    }
    let asymmetric = asymmetric_spec(spec)?;
    tokio::task::spawn_blocking(move || {
        let private = asym::generate_private_key(asymmetric)?;
        let public = asym::public_key_der(asymmetric, private.expose())?;
        Ok((private, public))
    })
    .await
    .map_err(|err| KmsError::internal(format!("key generation task failed: {err}")))?
    .map_err(crypto_error)
}

/// A fresh data key pair (PKCS#8 private, SPKI public), generated off the async runtime.
pub(crate) async fn generate_data_key_pair(spec: KeySpec) -> KmsResult<(SecretBytes, Vec<u8>)> {
    let asymmetric = asymmetric_spec(spec)?;
    tokio::task::spawn_blocking(move || asym::generate_data_key_pair(asymmetric))
        .await
        .map_err(|err| KmsError::internal(format!("key pair generation task failed: {err}")))?
        .map_err(crypto_error)
}

fn symmetric_spec(spec: KeySpec) -> Option<SymmetricKeySpec> {
    match spec {
        KeySpec::SymmetricDefault => Some(SymmetricKeySpec::SymmetricDefault),
        KeySpec::Hmac224 => Some(SymmetricKeySpec::Hmac224),
        KeySpec::Hmac256 => Some(SymmetricKeySpec::Hmac256),
        KeySpec::Hmac384 => Some(SymmetricKeySpec::Hmac384),
        KeySpec::Hmac512 => Some(SymmetricKeySpec::Hmac512),
        _ => None,
    }
}

pub(crate) fn asymmetric_spec(spec: KeySpec) -> KmsResult<asym::AsymmetricKeySpec> {
    use asym::AsymmetricKeySpec as A;
    Ok(match spec {
        KeySpec::Rsa2048 => A::Rsa2048,
        KeySpec::Rsa3072 => A::Rsa3072,
        KeySpec::Rsa4096 => A::Rsa4096,
        KeySpec::EccNistP256 => A::EccNistP256,
        KeySpec::EccNistP384 => A::EccNistP384,
        KeySpec::EccNistP521 => A::EccNistP521,
        KeySpec::EccSecgP256k1 => A::EccSecgP256k1,
        KeySpec::EccNistEdwards25519 => A::EccNistEdwards25519,
        KeySpec::MlDsa44 => A::MlDsa44,
        KeySpec::MlDsa65 => A::MlDsa65,
        KeySpec::MlDsa87 => A::MlDsa87,
        other => {
            return Err(KmsError::unsupported(format!("KeySpec {other} is not supported by this server")));
        }
    })
}

pub(crate) fn signing_algorithm(algorithm: SigningAlgorithm) -> KmsResult<asym::SigningAlgorithm> {
    use asym::SigningAlgorithm as S;
    Ok(match algorithm {
        SigningAlgorithm::RsassaPssSha256 => S::RsassaPssSha256,
        SigningAlgorithm::RsassaPssSha384 => S::RsassaPssSha384,
        SigningAlgorithm::RsassaPssSha512 => S::RsassaPssSha512,
        SigningAlgorithm::RsassaPkcs1V15Sha256 => S::RsassaPkcs1V15Sha256,
        SigningAlgorithm::RsassaPkcs1V15Sha384 => S::RsassaPkcs1V15Sha384,
        SigningAlgorithm::RsassaPkcs1V15Sha512 => S::RsassaPkcs1V15Sha512,
        SigningAlgorithm::EcdsaSha256 => S::EcdsaSha256,
        SigningAlgorithm::EcdsaSha384 => S::EcdsaSha384,
        SigningAlgorithm::EcdsaSha512 => S::EcdsaSha512,
        SigningAlgorithm::Ed25519Sha512 => S::Ed25519Sha512,
        SigningAlgorithm::Ed25519PhSha512 => S::Ed25519PhSha512,
        SigningAlgorithm::MlDsaShake256 => S::MlDsaShake256,
        SigningAlgorithm::Sm2dsa => {
            return Err(KmsError::unsupported("SM2DSA is not supported by this server"));
        }
    })
}

pub(crate) fn message_type(message_type: MessageType) -> asym::MessageType {
    match message_type {
        MessageType::Raw => asym::MessageType::Raw,
        MessageType::Digest => asym::MessageType::Digest,
        MessageType::ExternalMu => asym::MessageType::ExternalMu,
    }
}

pub(crate) fn rsa_encryption_algorithm(
    algorithm: EncryptionAlgorithm,
) -> KmsResult<asym::EncryptionAlgorithm> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(asym::EncryptionAlgorithm::RsaesOaepSha1),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(asym::EncryptionAlgorithm::RsaesOaepSha256),
        other => Err(KmsError::invalid_key_usage(format!("{other} is not an RSA encryption algorithm"))),
    }
}

pub(crate) fn mac_algorithm(algorithm: MacAlgorithm) -> kms_crypto::MacAlgorithm {
    match algorithm {
        MacAlgorithm::HmacSha224 => kms_crypto::MacAlgorithm::HmacSha224,
        MacAlgorithm::HmacSha256 => kms_crypto::MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384 => kms_crypto::MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512 => kms_crypto::MacAlgorithm::HmacSha512,
    }
}
