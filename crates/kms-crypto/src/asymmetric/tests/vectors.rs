//! Published known-answer vectors for the deterministic schemes (RFC 8032 Ed25519/Ed25519ph).

use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};

use super::*;
use crate::test_util::hex;

fn ed25519_pkcs8(secret: &str) -> Vec<u8> {
    let keypair = KeypairBytes { secret_key: hex(secret).try_into().unwrap(), public_key: None };
    keypair.to_pkcs8_der().unwrap().as_bytes().to_vec()
}

/// RFC 8032 §7.1 TEST 1 (empty message) and TEST 3 (two bytes), through the public API.
#[test]
fn rfc8032_ed25519() {
    let spec = AsymmetricKeySpec::EccNistEdwards25519;
    let vectors = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
             c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290\
             ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (secret, public_hex, message, signature) in vectors {
        let signature = hex(&signature.replace(' ', ""));
        let pkcs8 = ed25519_pkcs8(secret);
        let spki = public_key_der(spec, &pkcs8).unwrap();
        assert!(spki.ends_with(&hex(public_hex)));
        let message = hex(message);
        let alg = SigningAlgorithm::Ed25519Sha512;
        assert_eq!(sign(spec, &pkcs8, alg, MessageType::Raw, &message).unwrap(), signature);
        assert!(verify(spec, &spki, alg, MessageType::Raw, &message, &signature).unwrap());
    }
}

/// RFC 8032 §7.3 (Ed25519ph, message "abc"). The public API takes only 64-byte digests for
/// ED25519_PH_SHA_512, so this drives the module function directly: it shows that the input we
/// are given is treated as the Ed25519ph *message* M (the signature covers SHA-512(input)), the
/// "hashed twice" reading of AWS's note.
#[test]
fn rfc8032_ed25519ph_treats_the_input_as_the_message() {
    let pkcs8 = ed25519_pkcs8("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
    let expected = hex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aa\
         a10b8c61e636062aaad11c2a26083406"
            .replace(' ', "")
            .as_str(),
    );
    let key = super::super::eddsa::load_private(&pkcs8).unwrap();
    let signed = super::super::eddsa::sign(&key, SigningAlgorithm::Ed25519PhSha512, b"abc").unwrap();
    assert_eq!(signed, expected);
    let spki = public_key_der(AsymmetricKeySpec::EccNistEdwards25519, &pkcs8).unwrap();
    assert!(
        super::super::eddsa::verify(&spki, SigningAlgorithm::Ed25519PhSha512, b"abc", &expected).unwrap()
    );
}
