//! `[kubernetes]`: serving the Kubernetes KMS v2 plugin ([`kms_api::kubernetes`]) on a unix
//! socket for a kube-apiserver on the same host.
//!
//! The socket is plaintext gRPC, as kube-apiserver speaks it; file permissions are its only
//! access control: the socket is made mode 0600 (owner only, the user kmsd runs as), and a parent
//! directory that kmsd creates is mode 0700. A stale socket file left by a previous run is
//! removed at start; a socket some live process still answers on, or a path that is not a
//! socket, is refused.

use anyhow::{Context, Result, bail};
use kms_api::Kms;
use kms_api::kubernetes::KubernetesPlugin;
use serde::Deserialize;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The `[kubernetes]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The unix socket kube-apiserver connects to (`endpoint: unix://<socket>` in its
    /// EncryptionConfiguration).
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// The key that seals Kubernetes' DEK seeds: key id, key ARN, alias name or alias ARN. An
    /// alias that does not exist is created with a new symmetric key on first use. Unset: the
    /// plugin's AWS managed key `alias/aws/kubernetes`, created on first use.
    #[serde(default = "default_key_id")]
    pub key_id: String,
}

fn default_socket() -> PathBuf {
    PathBuf::from("/var/run/kmsplugin/socket.sock")
}

fn default_key_id() -> String {
    kms_api::kubernetes::SERVICE_KEY.to_string()
}

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// How long open connections get after shutdown is signalled: kube-apiserver keeps its
/// connection open, so a graceful stop must not wait for it forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl KubernetesConfig {
    pub fn validate(&self) -> Result<()> {
        let len = self.socket.as_os_str().len();
        if !self.socket.is_absolute() || self.socket.file_name().is_none() {
            bail!("[kubernetes] socket must be an absolute file path, got '{}'", self.socket.display());
        }
        if len > MAX_SOCKET_PATH {
            bail!("[kubernetes] socket path is {len} bytes; unix sockets allow at most {MAX_SOCKET_PATH}");
        }
        if self.key_id.trim().is_empty() {
            bail!("[kubernetes] key_id must name a key or alias (e.g. \"alias/kubernetes\")");
        }
        Ok(())
    }
}

/// Binds the plugin socket and serves the plugin until `stop` turns true; `None` without a
/// `[kubernetes]` section. Binding happens here, so a bad socket path stops kmsd at start.
pub fn start(
    kms: &Kms,
    config: Option<&KubernetesConfig>,
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>> {
    let Some(config) = config else { return Ok(None) };
    let listener = bind(&config.socket)?;
    let plugin = KubernetesPlugin::new(kms.clone(), config.key_id.clone());
    tracing::info!(
        socket = %config.socket.display(),
        key_id = %config.key_id,
        "kmsd is serving the Kubernetes KMS v2 plugin"
    );
    let socket = config.socket.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(err) = serve(plugin, listener, stop).await {
            tracing::error!(error = %format!("{err:#}"), "the Kubernetes KMS plugin server failed");
        }
        // Best effort: a leftover file is removed at the next start anyway.
        let _ = std::fs::remove_file(&socket);
    })))
}

async fn serve(plugin: KubernetesPlugin, listener: UnixListener, stop: watch::Receiver<bool>) -> Result<()> {
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let serve =
        tonic::transport::Server::builder().add_service(plugin.into_server()).serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            stopped(stop.clone()),
        );
    let grace_expired = async move {
        stopped(stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serve => served.context("serving the Kubernetes KMS plugin"),
        () = grace_expired => Ok(()),
    }
}

/// Creates the socket (and its directory, mode 0700, when missing) with mode 0600.
fn bind(socket: &Path) -> Result<UnixListener> {
    if let Some(dir) = socket.parent()
        && !dir.exists()
    {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| {
            format!("creating the directory of the Kubernetes plugin socket {}", dir.display())
        })?;
    }
    remove_stale_socket(socket)?;
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("binding the Kubernetes plugin socket {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making the Kubernetes plugin socket {} owner-only", socket.display()))?;
    Ok(listener)
}

/// Removes a socket file nobody listens on any more; refuses to touch anything else.
fn remove_stale_socket(socket: &Path) -> Result<()> {
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("inspecting {}", socket.display())),
    };
    if !metadata.file_type().is_socket() {
        bail!(
            "the Kubernetes plugin socket path {} exists and is not a socket; refusing to replace it",
            socket.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!(
            "another process is serving on the Kubernetes plugin socket {}; stop it or choose \
             another [kubernetes] socket",
            socket.display()
        );
    }
    tracing::info!(socket = %socket.display(), "removing the stale Kubernetes plugin socket of a previous run");
    std::fs::remove_file(socket).with_context(|| format!("removing the stale socket {}", socket.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(extra: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsd.toml");
        std::fs::write(&path, format!("{}{extra}", crate::config::MINIMAL)).unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_section_is_optional_has_defaults_and_is_checked() {
        assert_eq!(load("").unwrap().kubernetes, None);
        let defaults = load("[kubernetes]\n").unwrap().kubernetes.unwrap();
        assert_eq!(defaults.socket, PathBuf::from("/var/run/kmsplugin/socket.sock"));
        assert_eq!(defaults.key_id, "alias/aws/kubernetes");
        let set = load("[kubernetes]\nsocket = \"/run/kms/k8s.sock\"\nkey_id = \"alias/etcd\"\n").unwrap();
        assert_eq!(set.kubernetes.unwrap().key_id, "alias/etcd");
        assert!(load("[kubernetes]\nsocket = \"relative.sock\"\n").is_err());
        assert!(load("[kubernetes]\nkey_id = \"\"\n").is_err());
        assert!(load(&format!("[kubernetes]\nsocket = \"/{}\"\n", "s".repeat(120))).is_err());
        assert!(load("[kubernetes]\nendpoint = \"unix:///x.sock\"\n").is_err(), "unknown keys");
    }

    #[tokio::test]
    async fn bind_replaces_a_stale_socket_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plugin/kms.sock");
        let first = bind(&socket).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let live = bind(&socket).unwrap_err();
        assert!(format!("{live:#}").contains("another process"), "{live:#}");
        drop(first);
        let _second = bind(&socket).unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(format!("{:#}", bind(&file).unwrap_err()).contains("not a socket"));
    }
}
