//! Harness for end-to-end tests: starts the real `kmsd` binary on free loopback ports in a
//! temporary data directory, kills or stops it, and runs the real `kmsctl` against it.
//!
//! The binaries must be built first (`cargo verify` does `cargo build --bins` before testing);
//! they are looked up next to the test executable, in the same target directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type Client = KeyManagementServiceClient<Channel>;

/// Path of a binary of this workspace, built into the same target directory as the tests.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (`cargo build --workspace --bins`; `cargo verify` does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `kmsd dev` node.
pub struct Node {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    raft_listen: SocketAddr,
    log: PathBuf,
}

impl Node {
    /// Starts a node in `data_dir` (created if missing) and waits until it serves requests.
    pub async fn start(data_dir: &Path) -> Node {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let raft_listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut node = Node {
            child: None,
            data_dir: data_dir.to_path_buf(),
            listen,
            raft_listen,
            log: data_dir.with_extension("log"),
        };
        node.spawn().await;
        node
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(binary("kmsd"))
            .args(["dev", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen", &self.listen.to_string(), "--raft-listen", &self.raft_listen.to_string()])
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kmsd");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("kmsd exited during start with {status}; log:\n{}", self.log_text());
            }
            if let Ok(mut client) = self.try_client().await {
                let list = client.list_keys(kms_proto::v1::ListKeysRequest::default()).await;
                if list.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "kmsd not ready after 60 s; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.listen)
    }

    async fn try_client(&self) -> Result<Client, tonic::transport::Error> {
        KeyManagementServiceClient::connect(self.endpoint()).await
    }

    pub async fn client(&self) -> Client {
        self.try_client().await.expect("connecting to kmsd")
    }

    /// SIGKILL: no shutdown code runs, as in a power loss of the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "kmsd exited with {status} on SIGTERM; log:\n{}",
                        self.log_text()
                    );
                    return;
                }
                assert!(Instant::now() < deadline, "kmsd did not stop within 30 s of SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the node again on the same data directory and ports.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the node first");
        self.spawn().await;
    }

    /// Runs `kmsctl --endpoint <this node> <args>`.
    pub fn kmsctl(&self, args: &[&str]) -> Output {
        Command::new(binary("kmsctl"))
            .args(["--endpoint", &self.endpoint()])
            .args(args)
            .output()
            .expect("running kmsctl")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The AWS exception name a failed call carries.
pub fn exception(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(kms_proto::EXCEPTION_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_string()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() { pending.push(path) } else { files.push(path) }
        }
    }
    files
}

/// Whether `needle` occurs anywhere in any file under `dir`.
pub fn occurs_under(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    files_under(dir)
        .into_iter()
        .find(|file| std::fs::read(file).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)))
}
