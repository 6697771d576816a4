//! Loading the region root key from its provider, and creating one for dev mode.
//!
//! - file: 64 hex digits, readable by the owner only (a root key that others can read protects
//!   nothing, so kmsd refuses to start with one);
//! - env: 64 hex digits in an environment variable (a Kubernetes Secret mapped into the pod);
//! - pkcs11: derived inside a PKCS#11 token from an AES-256 key that never leaves it, with the
//!   NIST SP 800-108 counter-mode KDF whose PRF is AES-CMAC computed by the token. The derived key
//!   lives in kmsd's memory only (zeroized on drop); nothing about it is written to disk, so a
//!   copied data directory is useless without the token. Every node of a region must reach a
//!   token holding the same AES key (an HSM cluster, or the key imported into each token).

use crate::config::{Config, RootKeySource};
use anyhow::{Context, Result, bail};
use kms_crypto::{RootKey, RootKeyRing};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The active root key and the previous ones, each from its provider.
pub fn load_ring(config: &Config) -> Result<RootKeyRing> {
    let active = load_from(&config.root_key_source()?).context("loading the root key")?;
    let previous = config
        .previous_root_keys
        .iter()
        .enumerate()
        .map(|(i, source)| load_from(source).with_context(|| format!("loading previous root key #{}", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    let ring =
        RootKeyRing::new(active, previous).map_err(|err| anyhow::anyhow!("[previous_root_keys]: {err}"))?;
    let previous: Vec<String> = ring.keys().skip(1).map(|key| key.id().to_string()).collect();
    tracing::info!(active = %ring.active().id(), previous = ?previous, "root keys loaded");
    Ok(ring)
}

/// The root key from its configured provider.
pub fn load_from(source: &RootKeySource) -> Result<RootKey> {
    match source {
        RootKeySource::File { path } => load(path),
        RootKeySource::Env { variable } => from_env(variable),
        RootKeySource::Pkcs11 { module, slot, token_label, key_label, pin_file } => {
            let token = pkcs11::Token { module, slot: *slot, token_label: token_label.as_deref(), key_label };
            pkcs11::derive(&token, pin_file)
        }
    }
}

fn from_hex(text: &str, what: &str) -> Result<RootKey> {
    let bytes = zeroize::Zeroizing::new(
        decode_hex(text.trim()).with_context(|| format!("{what} must hold 64 hex digits"))?,
    );
    RootKey::from_bytes(&bytes).map_err(|err| anyhow::anyhow!("{what}: {err}"))
}

fn from_env(variable: &str) -> Result<RootKey> {
    let text = zeroize::Zeroizing::new(
        std::env::var(variable).with_context(|| format!("reading the root key from ${variable}"))?,
    );
    from_hex(&text, &format!("${variable}"))
}

pub fn load(path: &Path) -> Result<RootKey> {
    let metadata =
        fs::metadata(path).with_context(|| format!("reading the root key file {}", path.display()))?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "the root key file {} is accessible by group or others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading the root key file {}", path.display()))?,
    );
    from_hex(&text, &format!("the root key file {}", path.display()))
}

/// Loads the dev root key, creating it (mode 0600) on first start.
pub fn load_or_create(path: &Path) -> Result<RootKey> {
    if !path.exists() {
        let key = kms_crypto::random_bytes(32).map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the root key file {}", path.display()))?;
        let hex = zeroize::Zeroizing::new(base16ct::lower::encode_string(key.expose()));
        file.write_all(hex.as_bytes())?;
        file.sync_all()?;
        tracing::warn!(path = %path.display(), "generated a new DEVELOPMENT root key");
    }
    load(path)
}

mod pkcs11 {
    use anyhow::{Context, Result, bail};
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    use cryptoki::session::{Session, UserType};
    use cryptoki::slot::Slot;
    use cryptoki::types::AuthPin;
    use kms_crypto::RootKey;
    use std::path::Path;
    use zeroize::Zeroizing;

    /// Which token and key to use.
    pub struct Token<'a> {
        pub module: &'a Path,
        pub slot: Option<u64>,
        pub token_label: Option<&'a str>,
        pub key_label: &'a str,
    }

    /// The KDF's fixed inputs (SP 800-108: Label, 0x00, Context, [L]_32).
    const LABEL: &[u8] = b"kms region root key";
    const CONTEXT: &[u8] = b"v1";
    const OUTPUT_BITS: u32 = 256;

    fn kdf_input(counter: u8) -> Vec<u8> {
        let mut input = vec![counter];
        input.extend_from_slice(LABEL);
        input.push(0);
        input.extend_from_slice(CONTEXT);
        input.extend_from_slice(&OUTPUT_BITS.to_be_bytes());
        input
    }

    pub fn derive(token: &Token<'_>, pin_file: &Path) -> Result<RootKey> {
        let doing = format!("deriving the root key in the PKCS#11 token of {}", token.module.display());
        let pin = Zeroizing::new(
            std::fs::read_to_string(pin_file)
                .with_context(|| format!("reading the token PIN file {}", pin_file.display()))?,
        );
        let pkcs11 = Pkcs11::new(token.module).with_context(|| format!("{doing}: loading the module"))?;
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .with_context(|| format!("{doing}: initializing the module"))?;
        let slot = find_slot(&pkcs11, token).with_context(|| doing.clone())?;
        let session = pkcs11.open_ro_session(slot).with_context(|| format!("{doing}: opening a session"))?;
        session
            .login(UserType::User, Some(&AuthPin::from(pin.trim().to_string())))
            .with_context(|| format!("{doing}: logging in with the PIN from {}", pin_file.display()))?;
        let root = derive_in_session(&session, token.key_label).with_context(|| doing.clone())?;
        // The session logs out and closes, and the module finalizes, on drop.
        RootKey::from_bytes(&root).map_err(|err| anyhow::anyhow!("{doing}: {err}"))
    }

    fn find_slot(pkcs11: &Pkcs11, token: &Token<'_>) -> Result<Slot> {
        let slots = pkcs11.get_slots_with_token().context("listing the slots with a token")?;
        for slot in slots {
            let matches_id = token.slot.is_none_or(|id| slot.id() == id);
            let matches_label = match token.token_label {
                None => true,
                Some(label) => pkcs11.get_token_info(slot).is_ok_and(|info| info.label() == label),
            };
            if matches_id && matches_label {
                return Ok(slot);
            }
        }
        bail!("no token with slot {:?} and label {:?}", token.slot, token.token_label)
    }

    /// K = CMAC(1 || fixed) || CMAC(2 || fixed), computed by the token with the AES key.
    fn derive_in_session(session: &Session, key_label: &str) -> Result<Zeroizing<Vec<u8>>> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ];
        let keys = session.find_objects(&template).context("looking for the AES key")?;
        let key = match keys.as_slice() {
            [key] => *key,
            [] => bail!("the token holds no AES secret key labelled '{key_label}'"),
            _ => {
                bail!("the token holds {} AES keys labelled '{key_label}'; labels must be unique", keys.len())
            }
        };
        let mut root = Zeroizing::new(Vec::with_capacity(32));
        for counter in 1..=2u8 {
            let block = Zeroizing::new(
                session
                    .sign(&Mechanism::AesCMac, key, &kdf_input(counter))
                    .context("AES-CMAC in the token")?,
            );
            root.extend_from_slice(&block);
        }
        Ok(root)
    }
}

pub(crate) fn decode_hex(text: &str) -> Result<Vec<u8>> {
    base16ct::mixed::decode_vec(text).map_err(|_| anyhow::anyhow!("not an even-length hex string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_root_key_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap().len(), 64);
        load(&path).unwrap();
    }

    #[test]
    fn readable_or_malformed_root_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        fs::write(&path, "00".repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("chmod 600"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).is_ok());
        fs::write(&path, "abc").unwrap();
        assert!(load(&path).is_err());
    }

    fn key_file(dir: &Path, name: &str, byte: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, byte.repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn config_with(active: &Path, previous: &[&Path]) -> Config {
        let previous: String = previous
            .iter()
            .map(|p| format!("[[previous_root_keys]]\nprovider = \"file\"\npath = {:?}\n", p))
            .collect();
        let text = format!(
            "{}\n{previous}",
            crate::config::MINIMAL.replace("/etc/kms/root.key", &active.display().to_string())
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_ring_is_the_root_key_and_the_previous_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (key_file(dir.path(), "old.key", "01"), key_file(dir.path(), "new.key", "02"));
        let ring = load_ring(&config_with(&new, &[&old])).unwrap();
        assert_eq!(ring.active().id(), load(&new).unwrap().id());
        let ids: Vec<_> = ring.keys().map(RootKey::id).collect();
        assert_eq!(ids, vec![load(&new).unwrap().id(), load(&old).unwrap().id()]);
        assert_eq!(load_ring(&config_with(&new, &[])).unwrap().keys().count(), 1);

        // The same key twice means the rotation did not happen as configured.
        let copy = key_file(dir.path(), "copy.key", "02");
        let err = load_ring(&config_with(&new, &[&copy])).unwrap_err();
        assert!(format!("{err:#}").contains("listed twice"), "{err:#}");
        // A previous key that cannot be read stops the node, naming which.
        let err = load_ring(&config_with(&new, &[&old, &dir.path().join("gone.key")])).unwrap_err();
        assert!(format!("{err:#}").contains("previous root key #2"), "{err:#}");
    }
}
