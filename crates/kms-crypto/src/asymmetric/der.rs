//! The two encodings every asymmetric key crosses this crate in: PKCS#8 DER (RFC 5958) for
//! private keys, DER SubjectPublicKeyInfo (RFC 5280) for public keys. Only the error policy and
//! the hand-over into [`SecretBytes`] live here; each algorithm module parses with its own crate.

use pkcs8::SecretDocument;

use super::AsymmetricKeySpec;
use crate::{CryptoError, SecretBytes};

/// Largest public key DER accepted from a caller (`DeriveSharedSecret` `PublicKey`, §2.3). Also
/// bounds the work a hostile blob can cause in the DER parsers.
pub(crate) const MAX_PUBLIC_KEY_DER_LEN: usize = 8192;

/// The private key handed to us was unsealed from our own store, so a parse failure is not the
/// client's fault: an internal error. The message names the spec, never the bytes.
pub(crate) fn stored_key_error(spec: AsymmetricKeySpec) -> CryptoError {
    CryptoError::Internal(format!("stored private key is not a valid {} PKCS#8 key", spec.aws_name()))
}

/// A public key passed in (a peer key, or a key to verify or encrypt with) that does not parse as
/// a DER SubjectPublicKeyInfo of the expected type and size.
pub(crate) fn public_key_error(spec: AsymmetricKeySpec) -> CryptoError {
    CryptoError::InvalidInput(format!(
        "public key is not a DER SubjectPublicKeyInfo for key spec {}",
        spec.aws_name()
    ))
}

/// Rejects an oversized public key before any parser sees it.
pub(crate) fn check_public_key_len(der: &[u8], spec: AsymmetricKeySpec) -> Result<(), CryptoError> {
    if der.is_empty() || der.len() > MAX_PUBLIC_KEY_DER_LEN {
        return Err(public_key_error(spec));
    }
    Ok(())
}

/// Moves an encoded private key into [`SecretBytes`]. `SecretDocument` wipes its own buffer on
/// drop; the copy is made at its final size, so no reallocation leaves a stray copy behind.
pub(crate) fn secret_from_document(doc: &SecretDocument) -> SecretBytes {
    SecretBytes::new(doc.as_bytes().to_vec())
}

/// Encoding a key we just built can only fail on a bug in the encoder; report it without detail.
pub(crate) fn encode_error(what: &str) -> CryptoError {
    CryptoError::Internal(format!("could not encode {what}"))
}
