//! Loading the region root key, and creating one for dev mode.
//!
//! The file holds 64 hex digits. It must be readable by the owner only: a root key that others
//! can read protects nothing, so kmsd refuses to start with one.

use anyhow::{Context, Result, bail};
use kms_crypto::RootKey;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
    let text =
        fs::read_to_string(path).with_context(|| format!("reading the root key file {}", path.display()))?;
    let bytes = decode_hex(text.trim())
        .with_context(|| format!("the root key file {} must hold 64 hex digits", path.display()))?;
    RootKey::from_bytes(&bytes).map_err(|err| anyhow::anyhow!("root key file {}: {err}", path.display()))
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
        let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
        file.write_all(hex.as_bytes())?;
        file.sync_all()?;
        tracing::warn!(path = %path.display(), "generated a new DEVELOPMENT root key");
    }
    load(path)
}

fn decode_hex(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not an even-length hex string");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("bad hex digit"))
        .collect()
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
}
