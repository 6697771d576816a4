//! Cross-checks against an independent implementation, the `openssl` command line tool, when
//! it is on PATH (skipped with a printed note otherwise). Both directions: OpenSSL verifies our
//! signatures with our SPKI and decrypts/derives with our PKCS#8, and we verify OpenSSL's
//! signatures and decrypt OpenSSL's OAEP ciphertexts. OpenSSL 3.0 has no ML-DSA or Ed25519ph,
//! so those are covered by the Wycheproof and RFC 8032 vectors instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

struct Openssl {
    dir: tempfile::TempDir,
}

impl Openssl {
    fn find() -> Option<Self> {
        let found = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("NOTE: openssl is not on PATH; skipping the OpenSSL cross-checks");
            return None;
        }
        Some(Self { dir: tempfile::tempdir().unwrap() })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Runs openssl; returns whether it succeeded (stderr printed on failure, for diagnosis).
    fn run(&self, args: &[&str]) -> bool {
        let output = Command::new("openssl").args(args).current_dir(self.dir.path()).output().unwrap();
        if !output.status.success() {
            eprintln!("openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        output.status.success()
    }

    /// Converts our SPKI DER into a PEM file OpenSSL loads as a public key.
    fn public_pem(&self, name: &str, spki: &[u8]) -> String {
        let der = self.write(&format!("{name}.pub.der"), spki);
        let pem = format!("{name}.pub.pem");
        assert!(self.run(&["pkey", "-pubin", "-inform", "DER", "-in", &der, "-out", &pem]), "{name}: SPKI");
        pem
    }

    /// Converts our PKCS#8 DER into a PEM file: this is also the check that OpenSSL reads our
    /// private key storage format.
    fn private_pem(&self, name: &str, pkcs8: &[u8]) -> String {
        let der = self.write(&format!("{name}.key.der"), pkcs8);
        let pem = format!("{name}.key.pem");
        assert!(self.run(&["pkey", "-inform", "DER", "-in", &der, "-out", &pem]), "{name}: PKCS#8");
        pem
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// `openssl dgst` arguments for a classical algorithm (hash and RSA padding options).
fn dgst_options(algorithm: SigningAlgorithm) -> Vec<&'static str> {
    use SigningAlgorithm::*;
    let hash = match algorithm.hash().unwrap() {
        HashAlg::Sha256 => "-sha256",
        HashAlg::Sha384 => "-sha384",
        HashAlg::Sha512 => "-sha512",
    };
    let mut options = vec![hash];
    if let RsassaPssSha256 | RsassaPssSha384 | RsassaPssSha512 = algorithm {
        let salt = match algorithm {
            RsassaPssSha256 => "rsa_pss_saltlen:32",
            RsassaPssSha384 => "rsa_pss_saltlen:48",
            _ => "rsa_pss_saltlen:64",
        };
        let mgf = match algorithm {
            RsassaPssSha256 => "rsa_mgf1_md:sha256",
            RsassaPssSha384 => "rsa_mgf1_md:sha384",
            _ => "rsa_mgf1_md:sha512",
        };
        options.extend(["-sigopt", "rsa_padding_mode:pss", "-sigopt", salt, "-sigopt", mgf]);
    }
    options
}

/// Our RSA / ECDSA signatures (RAW and DIGEST) verify in OpenSSL; OpenSSL's verify with us.
#[test]
fn signatures_interoperate_with_openssl() {
    use AsymmetricKeySpec::*;
    let Some(ssl) = Openssl::find() else { return };
    let message = b"interop with an independent implementation";
    let message_file = ssl.write("message.bin", message);
    let mut checked = 0;
    for spec in [Rsa2048, EccNistP256, EccNistP384, EccNistP521, EccSecgP256k1] {
        let name = spec.aws_name();
        let public_pem = ssl.public_pem(name, &public(spec));
        let private_pem = ssl.private_pem(name, key(spec).expose());
        for &algorithm in spec.signing_algorithms() {
            for message_type in [MessageType::Raw, MessageType::Digest] {
                // OpenSSL always hashes the message file itself; a DIGEST signature is over
                // the same hash, so both must verify against the same file.
                let input = match message_type {
                    MessageType::Raw => message.to_vec(),
                    _ => algorithm.hash().unwrap().digest(message),
                };
                let signature = sign(spec, key(spec).expose(), algorithm, message_type, &input).unwrap();
                let signature_file = ssl.write("signature.bin", &signature);
                let mut args = vec!["dgst"];
                args.extend(dgst_options(algorithm));
                args.extend(["-verify", &public_pem, "-signature", &signature_file, &message_file]);
                assert!(
                    ssl.run(&args),
                    "OpenSSL rejected our {name} {algorithm:?} {message_type:?} signature"
                );
                checked += 1;
            }
            // OpenSSL signs, we verify.
            let mut args = vec!["dgst"];
            args.extend(dgst_options(algorithm));
            args.extend(["-sign", &private_pem, "-out", "openssl.sig", &message_file]);
            assert!(ssl.run(&args));
            let signature = ssl.read("openssl.sig");
            assert!(
                verify(spec, &public(spec), algorithm, MessageType::Raw, message, &signature).unwrap(),
                "we rejected OpenSSL's {name} {algorithm:?} signature"
            );
            checked += 1;
        }
    }
    eprintln!("openssl: {checked} RSA/ECDSA signature cross-checks");
    assert_eq!(checked, 6 * 3 + 4 * 3);
}

/// Ed25519 (PureEdDSA) both ways with `pkeyutl -rawin`.
#[test]
fn ed25519_interoperates_with_openssl() {
    let Some(ssl) = Openssl::find() else { return };
    let spec = AsymmetricKeySpec::EccNistEdwards25519;
    let public_pem = ssl.public_pem("ed25519", &public(spec));
    let private_pem = ssl.private_pem("ed25519", key(spec).expose());
    let message = b"ed25519 interop";
    let message_file = ssl.write("ed-message.bin", message);
    let alg = SigningAlgorithm::Ed25519Sha512;
    let signature = sign(spec, key(spec).expose(), alg, MessageType::Raw, message).unwrap();
    let signature_file = ssl.write("ed.sig", &signature);
    let verify_args = ["pkeyutl", "-verify", "-pubin", "-inkey", &public_pem, "-rawin", "-in", &message_file];
    let mut args = verify_args.to_vec();
    args.extend(["-sigfile", &signature_file]);
    assert!(ssl.run(&args), "OpenSSL rejected our Ed25519 signature");
    let sign_args = [
        "pkeyutl",
        "-sign",
        "-inkey",
        &private_pem,
        "-rawin",
        "-in",
        &message_file,
        "-out",
        "ed-openssl.sig",
    ];
    assert!(ssl.run(&sign_args));
    // Ed25519 is deterministic: same key, same message, same signature.
    assert_eq!(ssl.read("ed-openssl.sig"), signature);
    eprintln!("openssl: Ed25519 cross-checked both ways");
}

/// OAEP: OpenSSL encrypts with our SPKI and we decrypt; we encrypt and OpenSSL decrypts with
/// our PKCS#8. SHA-256 and SHA-1.
#[test]
fn oaep_interoperates_with_openssl() {
    let Some(ssl) = Openssl::find() else { return };
    let spec = AsymmetricKeySpec::Rsa2048;
    let public_pem = ssl.public_pem("oaep", &public(spec));
    let private_pem = ssl.private_pem("oaep", key(spec).expose());
    let plaintext = b"offline ciphertext must decrypt in KMS";
    let plaintext_file = ssl.write("oaep-plain.bin", plaintext);
    for (algorithm, md) in
        [(EncryptionAlgorithm::RsaesOaepSha256, "sha256"), (EncryptionAlgorithm::RsaesOaepSha1, "sha1")]
    {
        let oaep_md = format!("rsa_oaep_md:{md}");
        let mgf1_md = format!("rsa_mgf1_md:{md}");
        let options = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", &oaep_md, "-pkeyopt", &mgf1_md];
        let mut args = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", &public_pem, "-in", &plaintext_file];
        args.extend(options);
        args.extend(["-out", "oaep-openssl.bin"]);
        assert!(ssl.run(&args));
        let ciphertext = ssl.read("oaep-openssl.bin");
        let opened = rsa_decrypt(spec, key(spec).expose(), algorithm, &ciphertext).unwrap();
        assert!(opened.ct_eq(plaintext), "{algorithm:?}: OpenSSL ciphertext");

        let ours = rsa_encrypt(&public(spec), algorithm, plaintext).unwrap();
        let ours_file = ssl.write("oaep-ours.bin", &ours);
        let mut args = vec!["pkeyutl", "-decrypt", "-inkey", &private_pem, "-in", &ours_file];
        args.extend(options);
        args.extend(["-out", "oaep-ours-plain.bin"]);
        assert!(ssl.run(&args), "{algorithm:?}: OpenSSL could not decrypt ours");
        assert_eq!(ssl.read("oaep-ours-plain.bin"), plaintext);
    }
    eprintln!("openssl: RSA-OAEP SHA-1 and SHA-256 cross-checked both ways");
}

/// ECDH: OpenSSL derives the same raw x-coordinate from our PKCS#8 and a peer's SPKI.
#[test]
fn ecdh_matches_openssl() {
    use AsymmetricKeySpec::*;
    let Some(ssl) = Openssl::find() else { return };
    for spec in [EccNistP256, EccNistP384, EccNistP521] {
        let name = spec.aws_name();
        let (peer_private, peer_public) = generate_data_key_pair(spec).unwrap();
        let ours = derive_shared_secret(spec, key(spec).expose(), &peer_public).unwrap();
        let private_pem = ssl.private_pem(name, key(spec).expose());
        let peer_pem = ssl.public_pem(&format!("{name}-peer"), &peer_public);
        let out = ssl.path(&format!("{name}.shared"));
        assert!(ssl.run(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            &private_pem,
            "-peerkey",
            &peer_pem,
            "-out",
            file_name(&out)
        ]));
        assert!(ours.ct_eq(&std::fs::read(&out).unwrap()), "{name}");
        // And the peer's private key (a data key pair) is readable by OpenSSL as well.
        ssl.private_pem(&format!("{name}-peer"), peer_private.expose());
    }
    eprintln!("openssl: ECDH on P-256, P-384, P-521 cross-checked");
}
