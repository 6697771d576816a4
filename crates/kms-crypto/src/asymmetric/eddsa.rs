//! Ed25519 (`ECC_NIST_EDWARDS25519`): PureEdDSA for `ED25519_SHA_512` and HashEdDSA (Ed25519ph,
//! RFC 8032 §5.1) for `ED25519_PH_SHA_512`.
//!
//! # What `ED25519_PH_SHA_512` signs
//!
//! AWS accepts this algorithm with `MessageType=DIGEST` only: the caller sends SHA-512(M), 64
//! bytes. AWS's note (aws-kms-api.md §2.2) is that KMS *still* applies the FIPS 186-5 / RFC 8032
//! SHA-512 prehash, so the input is hashed twice. In RFC 8032 terms the 64-byte input is the
//! message of Ed25519ph: PH(input) = SHA-512(input) is what the signature covers, with the
//! `dom2(1, "")` prefix (phflag = 1, empty context). So we feed the input to a SHA-512 hasher and
//! hand that hasher to `sign_prehashed`; we do **not** treat the input as PH(M) itself (that
//! would sign SHA-512(M) once and match a different, non-AWS, convention). A verifier outside
//! KMS checks the signature with standard Ed25519ph over the 64-byte digest as the message.
//!
//! # Verification strictness
//!
//! `verify_strict` (and its prehash twin) reject non-canonical `S` (malleability), small-order
//! public keys and small-order `R`. KMS keys are never weak, so the only signatures this refuses
//! beyond RFC 8032's cofactorless check are ones no honest signer produces.

use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

use super::der::{
    check_public_key_len, encode_error, public_key_error, secret_from_document, stored_key_error,
};
use super::{AsymmetricKeySpec, SigningAlgorithm};
use crate::random::random_bytes;
use crate::{CryptoError, SecretBytes};

const SPEC: AsymmetricKeySpec = AsymmetricKeySpec::EccNistEdwards25519;

/// A fresh key: 32 bytes from the OS CSPRNG (RFC 8032 §5.1.5), stored as a PKCS#8 v1 document
/// (RFC 8410) without the optional public key, the form OpenSSL writes and every reader accepts.
pub(crate) fn generate() -> Result<SecretBytes, CryptoError> {
    let seed = random_bytes(ed25519_dalek::SECRET_KEY_LENGTH)?;
    let mut keypair = KeypairBytes { secret_key: [0; ed25519_dalek::SECRET_KEY_LENGTH], public_key: None };
    keypair.secret_key.copy_from_slice(seed.expose());
    // `KeypairBytes` wipes its secret on drop; the DER document wipes itself too.
    let doc = keypair.to_pkcs8_der().map_err(|_| encode_error("Ed25519 private key"))?;
    Ok(secret_from_document(&doc))
}

/// The SubjectPublicKeyInfo (id-Ed25519, RFC 8410) of a stored private key.
pub(crate) fn public_key_der(pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key = load_private(pkcs8)?;
    key.verifying_key()
        .to_public_key_der()
        .map(|doc| doc.into_vec())
        .map_err(|_| encode_error("Ed25519 public key"))
}

/// Signs `message` (the raw message for PureEdDSA, the caller's SHA-512 digest for Ed25519ph;
/// lengths and message types are checked by the caller).
pub(crate) fn sign(
    key: &SigningKey,
    algorithm: SigningAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let signature = match algorithm {
        SigningAlgorithm::Ed25519Sha512 => key.sign(message),
        SigningAlgorithm::Ed25519PhSha512 => key
            .sign_prehashed(Sha512::new_with_prefix(message), None)
            .map_err(|_| CryptoError::Internal("Ed25519ph signing failed".into()))?,
        _ => return Err(not_eddsa(algorithm)),
    };
    Ok(signature.to_bytes().to_vec())
}

/// Verifies a 64-byte signature; any other length, or a non-canonical encoding, is `false`.
pub(crate) fn verify(
    spki: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    check_public_key_len(spki, SPEC)?;
    let key = VerifyingKey::from_public_key_der(spki).map_err(|_| public_key_error(SPEC))?;
    let Ok(signature) = Signature::from_slice(signature) else {
        return Ok(false);
    };
    let checked = match algorithm {
        SigningAlgorithm::Ed25519Sha512 => key.verify_strict(message, &signature),
        SigningAlgorithm::Ed25519PhSha512 => {
            key.verify_prehashed_strict(Sha512::new_with_prefix(message), None, &signature)
        }
        _ => return Err(not_eddsa(algorithm)),
    };
    Ok(checked.is_ok())
}

pub(crate) fn load_private(pkcs8: &[u8]) -> Result<SigningKey, CryptoError> {
    SigningKey::from_pkcs8_der(pkcs8).map_err(|_| stored_key_error(SPEC))
}

fn not_eddsa(algorithm: SigningAlgorithm) -> CryptoError {
    CryptoError::InvalidInput(format!(
        "signing algorithm {} is not an Ed25519 algorithm",
        algorithm.aws_name()
    ))
}
