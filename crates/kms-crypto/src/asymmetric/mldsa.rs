//! ML-DSA (FIPS 204) with the RustCrypto `ml-dsa` crate, for `ML_DSA_44/65/87` and the one
//! algorithm `ML_DSA_SHAKE_256`.
//!
//! - `RAW`: pure ML-DSA (FIPS 204 Algorithm 2) with an empty context string, so
//!   μ = SHAKE256(SHAKE256(pk, 64) ‖ 0x00 ‖ 0x00 ‖ M, 64). Not HashML-DSA.
//! - `EXTERNAL_MU`: the caller computed that μ itself (FIPS 204 §6.2 "external μ"), e.g. to
//!   stream a large message; we sign or verify the 64 bytes as μ.
//!
//! Signing is hedged (FIPS 204's default): `rnd` is 32 fresh bytes from the OS CSPRNG.
//!
//! Encodings (draft-ietf-lamps-dilithium-certificates, now RFC 9881, as the crate implements
//! them): the SPKI algorithm is `id-ml-dsa-44/65/87` (2.16.840.1.101.3.4.3.17 / .18 / .19) with
//! absent parameters and the raw FIPS 204 public key as the BIT STRING; the PKCS#8 private key
//! is the 32-byte seed ξ in the `seed [0] IMPLICIT OCTET STRING` choice. The seed is the
//! smallest form and the one the RFC recommends; the expanded key is recomputed on load.

use getrandom::SysRng;
use ml_dsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ml_dsa::{
    ExpandedSigningKey, KeyInit, Keypair, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Seed, Signature,
    SigningKey, VerifyingKey,
};
use zeroize::Zeroizing;

use super::der::{
    check_public_key_len, encode_error, public_key_error, secret_from_document, stored_key_error,
};
use super::spec::{EXTERNAL_MU_LEN, check_raw_len};
use super::{AsymmetricKeySpec, MessageType};
use crate::random::random_bytes;
use crate::{CryptoError, SecretBytes};

/// Dispatches on the ML-DSA spec to code generic over the parameter set.
macro_rules! by_params {
    ($spec:expr, $function:ident($($arg:expr),*)) => {
        match $spec {
            AsymmetricKeySpec::MlDsa44 => $function::<MlDsa44>($spec, $($arg),*),
            AsymmetricKeySpec::MlDsa65 => $function::<MlDsa65>($spec, $($arg),*),
            AsymmetricKeySpec::MlDsa87 => $function::<MlDsa87>($spec, $($arg),*),
            other => Err(CryptoError::InvalidInput(format!(
                "key spec {} is not an ML-DSA spec",
                other.aws_name()
            ))),
        }
    };
}

/// A fresh key from a 32-byte seed ξ drawn from the OS CSPRNG (FIPS 204 Algorithm 1).
pub(crate) fn generate(spec: AsymmetricKeySpec) -> Result<SecretBytes, CryptoError> {
    by_params!(spec, generate_with())
}

/// The SubjectPublicKeyInfo of a stored private key.
pub(crate) fn public_key_der(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    by_params!(spec, public_key_der_with(pkcs8))
}

/// Signs a `RAW` message (≤ 4096 bytes) or an `EXTERNAL_MU` μ (exactly 64 bytes).
pub(crate) fn sign(
    spec: AsymmetricKeySpec,
    pkcs8: &[u8],
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_message(message_type, message)?;
    by_params!(spec, sign_with(pkcs8, message_type, message))
}

/// Verifies a signature; a signature of the wrong length or encoding is `false`.
pub(crate) fn verify(
    spec: AsymmetricKeySpec,
    spki: &[u8],
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    check_message(message_type, message)?;
    by_params!(spec, verify_with(spki, message_type, message, signature))
}

fn check_message(message_type: MessageType, message: &[u8]) -> Result<(), CryptoError> {
    match message_type {
        MessageType::Raw => check_raw_len(message),
        MessageType::ExternalMu if message.len() == EXTERNAL_MU_LEN => Ok(()),
        MessageType::ExternalMu => Err(CryptoError::InvalidInput(format!(
            "an EXTERNAL_MU message must be {EXTERNAL_MU_LEN} bytes, got {}",
            message.len()
        ))),
        MessageType::Digest => {
            Err(CryptoError::InvalidInput("message type DIGEST is not valid for ML_DSA_SHAKE_256".into()))
        }
    }
}

fn generate_with<P>(_spec: AsymmetricKeySpec) -> Result<SecretBytes, CryptoError>
where
    P: MlDsaParams,
    SigningKey<P>: EncodePrivateKey,
{
    let seed = random_bytes(32)?;
    let seed = Zeroizing::new(
        Seed::try_from(seed.expose()).map_err(|_| CryptoError::Internal("ML-DSA seed length".into()))?,
    );
    let key = SigningKey::<P>::new(&seed);
    let doc = key.to_pkcs8_der().map_err(|_| encode_error("ML-DSA private key"))?;
    Ok(secret_from_document(&doc))
}

fn public_key_der_with<P>(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError>
where
    P: MlDsaParams,
    SigningKey<P>: DecodePrivateKey,
    VerifyingKey<P>: EncodePublicKey,
{
    let key = SigningKey::<P>::from_pkcs8_der(pkcs8).map_err(|_| stored_key_error(spec))?;
    key.verifying_key()
        .to_public_key_der()
        .map(|doc| doc.into_vec())
        .map_err(|_| encode_error("ML-DSA public key"))
}

fn sign_with<P>(
    spec: AsymmetricKeySpec,
    pkcs8: &[u8],
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError>
where
    P: MlDsaParams,
    ExpandedSigningKey<P>: DecodePrivateKey,
{
    let key = ExpandedSigningKey::<P>::from_pkcs8_der(pkcs8).map_err(|_| stored_key_error(spec))?;
    let signed = match message_type {
        MessageType::ExternalMu => key.sign_mu_randomized(&mu_array(message)?, &mut SysRng),
        _ => key.sign_randomized(message, &[], &mut SysRng),
    };
    // The crate's error is opaque: RNG failure or (with negligible probability) rejection
    // sampling running out of iterations.
    let signature = signed.map_err(|_| CryptoError::Internal("ML-DSA signing failed".into()))?;
    Ok(signature.encode().to_vec())
}

fn verify_with<P>(
    spec: AsymmetricKeySpec,
    spki: &[u8],
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError>
where
    P: MlDsaParams,
    VerifyingKey<P>: DecodePublicKey,
{
    check_public_key_len(spki, spec)?;
    let key = VerifyingKey::<P>::from_public_key_der(spki).map_err(|_| public_key_error(spec))?;
    let Ok(signature) = Signature::<P>::try_from(signature) else {
        return Ok(false);
    };
    Ok(match message_type {
        MessageType::ExternalMu => key.verify_mu(&mu_array(message)?, &signature),
        _ => key.verify_with_context(message, &[], &signature),
    })
}

/// The 64-byte μ as the crate's array type (length checked by `check_message`).
fn mu_array<T: From<[u8; EXTERNAL_MU_LEN]>>(message: &[u8]) -> Result<T, CryptoError> {
    let mu: [u8; EXTERNAL_MU_LEN] = message.try_into().map_err(|_| {
        CryptoError::InvalidInput(format!("an EXTERNAL_MU message must be {EXTERNAL_MU_LEN} bytes"))
    })?;
    Ok(T::from(mu))
}
