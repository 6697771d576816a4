//! Elliptic-curve keys on the Weierstrass curves (P-256, P-384, P-521, secp256k1): generation,
//! the PKCS#8 storage form (RFC 5915 ECPrivateKey with the named-curve OID, as OpenSSL writes it)
//! and the SubjectPublicKeyInfo (id-ecPublicKey + named curve, uncompressed point, RFC 5480).
//!
//! One generic implementation for the four curves; the spec decides which curve type runs.

use getrandom::SysRng;
use p256::elliptic_curve::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p256::elliptic_curve::{CurveArithmetic, Generate, PublicKey, SecretKey};

use super::AsymmetricKeySpec;
use super::der::{
    check_public_key_len, encode_error, public_key_error, secret_from_document, stored_key_error,
};
use crate::{CryptoError, SecretBytes};

/// A fresh key from the OS CSPRNG, as PKCS#8 DER.
pub(crate) fn generate<C>() -> Result<SecretBytes, CryptoError>
where
    C: CurveArithmetic,
    SecretKey<C>: EncodePrivateKey,
{
    let key = SecretKey::<C>::try_generate_from_rng(&mut SysRng)
        .map_err(|e| CryptoError::Internal(format!("OS random number generator failed: {e}")))?;
    let doc = key.to_pkcs8_der().map_err(|_| encode_error("EC private key"))?;
    Ok(secret_from_document(&doc))
}

/// Parses a stored PKCS#8 key; the curve OID must be `C`'s, so a P-384 key stored under a
/// P-256 spec is refused.
pub(crate) fn load_private<C>(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<SecretKey<C>, CryptoError>
where
    C: CurveArithmetic,
    SecretKey<C>: DecodePrivateKey,
{
    SecretKey::<C>::from_pkcs8_der(pkcs8).map_err(|_| stored_key_error(spec))
}

/// Parses a caller's DER SubjectPublicKeyInfo on curve `C`. The parser checks the algorithm
/// (id-ecPublicKey), the named curve and that the point is on the curve and not the identity;
/// explicit curve parameters and other curves are refused.
pub(crate) fn load_public<C>(spec: AsymmetricKeySpec, spki: &[u8]) -> Result<PublicKey<C>, CryptoError>
where
    C: CurveArithmetic,
    PublicKey<C>: DecodePublicKey,
{
    check_public_key_len(spki, spec)?;
    PublicKey::<C>::from_public_key_der(spki).map_err(|_| public_key_error(spec))
}

/// The SubjectPublicKeyInfo of a stored private key.
pub(crate) fn public_key_der<C>(spec: AsymmetricKeySpec, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError>
where
    C: CurveArithmetic,
    SecretKey<C>: DecodePrivateKey,
    PublicKey<C>: EncodePublicKey,
{
    let key = load_private::<C>(spec, pkcs8)?;
    key.public_key().to_public_key_der().map(|doc| doc.into_vec()).map_err(|_| encode_error("EC public key"))
}
