//! The region root key in a PKCS#11 token (SoftHSM2): a region derives its root key inside the
//! token, restarts, and still decrypts; it rotates to another key of the token (re-sealing its
//! material) and decrypts with that key alone; a wrong PIN or a missing key label stops kmsd at
//! start with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use kms_e2e::{Cluster, TEST_RAFT_TUNING, binary};
use kms_proto::v1 as pb;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "kms-e2e";
const PIN: &str = "4321";

/// A SoftHSM2 token in `dir` holding non-extractable AES-256 keys labelled `kms-root` and
/// `kms-root-2`.
fn softhsm_token(dir: &Path) -> String {
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is missing: `cargo xtask prereqs` (or apt-get install softhsm2) installs it"
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "8765"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    // This process was started with SOFTHSM2_CONF pointing at `conf` (see the test), which the
    // module reads when it is loaded.
    let conf_text = conf.to_str().unwrap().to_string();
    assert_eq!(std::env::var("SOFTHSM2_CONF").ok().as_deref(), Some(conf_text.as_str()));
    let pkcs11 = Pkcs11::new(MODULE).unwrap();
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| pkcs11.get_token_info(*slot).unwrap().label() == TOKEN)
        .unwrap();
    let session = pkcs11.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&AuthPin::from(PIN.to_string()))).unwrap();
    for label in ["kms-root", "kms-root-2"] {
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::ValueLen(32.into()),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                ],
            )
            .unwrap();
    }
    conf_text
}

fn root_key_section(pin_file: &Path, key_label: &str) -> String {
    token_key("[root_key]", pin_file, key_label)
}

fn previous_root_key_section(pin_file: &Path, key_label: &str) -> String {
    token_key("[[previous_root_keys]]", pin_file, key_label)
}

fn token_key(header: &str, pin_file: &Path, key_label: &str) -> String {
    format!(
        "{header}\nprovider = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\n\
         key_label = \"{key_label}\"\npin_file = {pin_file:?}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_keeps_its_root_key_in_softhsm_and_decrypts_after_restart() {
    // The module reads SOFTHSM2_CONF at load time: run the body in a child process that has it.
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("softhsm2.conf");
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_region_keeps_its_root_key_in_softhsm_and_decrypts_after_restart",
                "--nocapture",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .env("KMS_E2E_PKCS11_DIR", dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "the PKCS#11 test failed (its output is above)");
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var("KMS_E2E_PKCS11_DIR").unwrap());
    let conf = softhsm_token(&dir);
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, PIN).unwrap();

    let env = [("SOFTHSM2_CONF", conf.as_str())];
    let mut cluster =
        Cluster::start_full(1, TEST_RAFT_TUNING, &root_key_section(&pin_file, "kms-root"), &env).await;
    let mut client = cluster.node(1).client();
    let key_id = client
        .create_key(pb::CreateKeyRequest::default())
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id;
    let plaintext = b"sealed under a root key that lives in the token".to_vec();
    let ciphertext = client
        .encrypt(pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: plaintext.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;

    cluster.node_mut(1).kill();
    cluster.restart(1).await;
    cluster.wait_leader(Duration::from_secs(30)).await;
    let decrypted = cluster
        .node(1)
        .client()
        .decrypt(pb::DecryptRequest { ciphertext_blob: ciphertext.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decrypted.plaintext, plaintext);
    assert_eq!(decrypted.key_id.rsplit('/').next(), Some(key_id.as_str()));

    // Root key rotation to another key of the token: active kms-root-2 with kms-root previous,
    // until the leader has re-sealed everything; then kms-root-2 alone still decrypts.
    cluster.set_maintenance_interval(1);
    cluster.set_config(&format!(
        "{}{}",
        root_key_section(&pin_file, "kms-root-2"),
        previous_root_key_section(&pin_file, "kms-root")
    ));
    cluster.restart_reconfigured(1).await;
    cluster.wait_resealed(Duration::from_secs(60)).await;
    cluster.set_config(&root_key_section(&pin_file, "kms-root-2"));
    cluster.restart_reconfigured(1).await;
    cluster.wait_leader(Duration::from_secs(30)).await;
    let request = pb::DecryptRequest { ciphertext_blob: ciphertext.clone(), ..Default::default() };
    let decrypted = cluster.node(1).client().decrypt(request).await.unwrap().into_inner();
    assert_eq!(decrypted.plaintext, plaintext, "decrypts under the token's second key alone");

    // A wrong PIN, or a key label the token does not hold: kmsd stops at start and says why.
    for (section, expected) in [
        (root_key_section(&dir.join("wrong-pin"), "kms-root"), "PIN"),
        (root_key_section(&pin_file, "no-such-key"), "no AES secret key labelled 'no-such-key'"),
    ] {
        std::fs::write(dir.join("wrong-pin"), "0000").unwrap();
        let node_dir = dir.join("refused");
        std::fs::create_dir_all(&node_dir).unwrap();
        let config = node_dir.join("kmsd.toml");
        std::fs::write(
            &config,
            format!(
                "node_id = 1\ndata_dir = {:?}\nlisten = \"127.0.0.1:{}\"\nraft_listen = \"127.0.0.1:{}\"\n\
                 region = \"e2e-1\"\naccount = \"111122223333\"\n{section}",
                node_dir.join("data"),
                kms_e2e::free_port(),
                kms_e2e::free_port(),
            ),
        )
        .unwrap();
        let output = Command::new(binary("kmsd"))
            .args(["run", "--config"])
            .arg(&config)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(expected), "expected '{expected}' in:\n{stderr}");
    }
}
