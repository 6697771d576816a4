//! ECDH (`DeriveSharedSecret`) on the NIST curves. AWS offers KEY_AGREEMENT only for P-256,
//! P-384 and P-521; secp256k1 and Ed25519 keys are SIGN_VERIFY only, so they are refused here.
//!
//! The result is the raw shared x-coordinate (SP 800-56A "Z"), which is what AWS returns: the
//! caller runs its own KDF over it.

use p256::elliptic_curve::CurveArithmetic;
use p256::elliptic_curve::pkcs8::{DecodePrivateKey, DecodePublicKey};
use p256::elliptic_curve::{PublicKey, SecretKey};

use super::{AsymmetricKeySpec, ec};
use crate::{CryptoError, SecretBytes};

/// ECDH between the stored private key of `spec` and a peer's DER SubjectPublicKeyInfo on the
/// same curve. A peer key that is truncated, garbage, on another curve, uses explicit curve
/// parameters, or is not a valid point is `InvalidInput`.
pub(crate) fn derive_shared_secret(
    spec: AsymmetricKeySpec,
    pkcs8: &[u8],
    peer_spki: &[u8],
) -> Result<SecretBytes, CryptoError> {
    match spec {
        AsymmetricKeySpec::EccNistP256 => derive::<p256::NistP256>(spec, pkcs8, peer_spki),
        AsymmetricKeySpec::EccNistP384 => derive::<p384::NistP384>(spec, pkcs8, peer_spki),
        AsymmetricKeySpec::EccNistP521 => derive::<p521::NistP521>(spec, pkcs8, peer_spki),
        _ => Err(CryptoError::InvalidInput(format!(
            "key spec {} does not support key agreement (ECDH is offered on ECC_NIST_P256, \
             ECC_NIST_P384 and ECC_NIST_P521 only)",
            spec.aws_name()
        ))),
    }
}

fn derive<C>(spec: AsymmetricKeySpec, pkcs8: &[u8], peer_spki: &[u8]) -> Result<SecretBytes, CryptoError>
where
    C: CurveArithmetic,
    SecretKey<C>: DecodePrivateKey,
    PublicKey<C>: DecodePublicKey,
{
    // Parse the caller's key first: a bad peer key is reported the same whatever is stored.
    let peer = ec::load_public::<C>(spec, peer_spki)?;
    let secret = ec::load_private::<C>(spec, pkcs8)?;
    // `PublicKey` is never the identity and always on the curve (checked when decoded), and the
    // NIST curves have cofactor 1, so the product cannot be the identity: no zero-check needed.
    let shared = secret.diffie_hellman(&peer);
    Ok(SecretBytes::new(shared.raw_secret_bytes().to_vec()))
}
