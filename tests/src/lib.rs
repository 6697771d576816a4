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

/// A loopback port that was free a moment ago, and that this process has not handed out before
/// (the OS may offer a just-closed port again, and two nodes of one test must not both get it).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// One `kmsd dev` node.
pub struct Node {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    raft_listen: SocketAddr,
    /// The AWS JSON 1.1 endpoint (`--aws-listen`); see [`AWS_DEV_ACCESS_KEY_ID`].
    pub aws_listen: SocketAddr,
    /// Prometheus `GET /metrics` (`--metrics-listen`); see [`Node::scrape_metrics`].
    pub metrics_listen: SocketAddr,
    log: PathBuf,
}

/// The fixed credential and region `kmsd dev` accepts on its AWS endpoint.
pub const AWS_DEV_ACCESS_KEY_ID: &str = "kmsdev";
pub const AWS_DEV_SECRET_ACCESS_KEY: &str = "kmsdevsecret";
pub const AWS_DEV_REGION: &str = "dev-1";

impl Node {
    /// Starts a node in `data_dir` (created if missing) and waits until it serves requests.
    pub async fn start(data_dir: &Path) -> Node {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let raft_listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let aws_listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics_listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut node = Node {
            child: None,
            data_dir: data_dir.to_path_buf(),
            listen,
            raft_listen,
            aws_listen,
            metrics_listen,
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
            .args(["--aws-listen", &self.aws_listen.to_string()])
            .args(["--metrics-listen", &self.metrics_listen.to_string()])
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

    /// The AWS endpoint URL, for `--endpoint-url` / `endpoint_url`.
    pub fn aws_endpoint(&self) -> String {
        format!("http://{}", self.aws_listen)
    }

    /// Runs the Python script `tests/aws/<script>` against this node's AWS endpoint with the dev
    /// credentials (`KMS_AWS_*`) and no ambient AWS configuration. Panics only if python3 cannot
    /// be started; the caller judges the output.
    pub fn run_aws_script(&self, script: &str) -> Output {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("aws").join(script);
        Command::new("python3")
            .arg(&path)
            .env("KMS_AWS_ENDPOINT", self.aws_endpoint())
            .env("KMS_AWS_REGION", AWS_DEV_REGION)
            .env("KMS_AWS_ACCESS_KEY_ID", AWS_DEV_ACCESS_KEY_ID)
            .env("KMS_AWS_SECRET_ACCESS_KEY", AWS_DEV_SECRET_ACCESS_KEY)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 for {script} (install it with boto3, aws-encryption-sdk, cryptography): {e}")
            })
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

    /// `GET /metrics` of this node: (HTTP status, content type, body). Plain HTTP/1.1 over
    /// loopback, no client library.
    pub fn scrape_metrics(&self) -> (u16, String, String) {
        http_get(self.metrics_listen, "/metrics")
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

/// A minimal HTTP/1.1 GET (`Connection: close`): (status, content type, body).
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status");
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (status, content_type, body.to_string())
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

// ---------------------------------------------------------------------------------------------
// Multi-node regions: N real `kmsd run` processes on loopback.
// ---------------------------------------------------------------------------------------------

pub type AdminClient = kms_proto::admin::v1::cluster_admin_client::ClusterAdminClient<Channel>;
pub use kms_proto::admin::v1 as admin_pb;

/// Raft timing used by the cluster tests: fast enough for short tests, slack enough for a
/// loaded 2-core machine; small snapshot thresholds so catch-up by snapshot is exercised.
pub const TEST_RAFT_TUNING: &str = "heartbeat_interval_ms = 100\n\
election_timeout_min_ms = 600\n\
election_timeout_max_ms = 1200\n\
snapshot_logs_since_last = 60\n\
logs_kept_after_snapshot = 10\n\
request_timeout_ms = 3000\n";

/// One `kmsd run --config` node of a [`Cluster`].
pub struct ClusterNode {
    pub id: u64,
    child: Option<Child>,
    /// Holds `data/`, `kmsd.toml` and `kmsd.log`.
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub raft_listen: SocketAddr,
    /// Prometheus `GET /metrics`; see [`ClusterNode::scrape_metrics`].
    pub metrics_listen: SocketAddr,
    stopped: bool,
    env: Vec<(String, String)>,
    /// The harness's client identity when the region runs on TLS ([`Cluster::enable_tls`]).
    tls: Option<ClientIdentity>,
}

/// Files of a client certificate, its key and the CA that issued the nodes' certificates.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClientIdentity {
    pub fn tls_config(&self) -> tonic::transport::ClientTlsConfig {
        let read =
            |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(&self.ca)))
            .identity(tonic::transport::Identity::from_pem(read(&self.cert), read(&self.key)))
    }

    /// kmsctl's flags for this identity.
    fn kmsctl_flags(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        ["--ca-bundle", &path(&self.ca), "--client-cert", &path(&self.cert), "--client-key", &path(&self.key)]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

impl ClusterNode {
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.listen)
    }

    /// A channel to this node's client port (over TLS with the harness identity when the region
    /// runs on TLS), connected lazily; every call bounded by `timeout`.
    pub fn channel(&self, timeout: Duration) -> Channel {
        lazy_channel_with(&self.endpoint(), timeout, self.tls.as_ref())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("kmsd.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("kmsd.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `GET /metrics` of this node: (HTTP status, content type, body).
    pub fn scrape_metrics(&self) -> (u16, String, String) {
        http_get(self.metrics_listen, "/metrics")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A KMS client whose connection is made lazily and re-made after the node restarts; every
    /// call is bounded by `timeout`.
    pub fn client_with_timeout(&self, timeout: Duration) -> Client {
        KeyManagementServiceClient::new(self.channel(timeout))
    }

    /// A KMS client (calls bounded by 10 s).
    pub fn client(&self) -> Client {
        self.client_with_timeout(Duration::from_secs(10))
    }

    /// A `kms.admin.v1.ClusterAdmin` client (calls bounded by 40 s).
    pub fn admin(&self) -> AdminClient {
        AdminClient::new(self.channel(Duration::from_secs(40)))
    }

    /// Runs `kmsctl --endpoint <this node> <args>`.
    pub fn kmsctl(&self, args: &[&str]) -> Output {
        Command::new(binary("kmsctl"))
            .args(["--endpoint", &self.endpoint()])
            .args(self.tls.iter().flat_map(ClientIdentity::kmsctl_flags))
            .args(args)
            .output()
            .expect("running kmsctl")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(binary("kmsd"))
            .args(["run", "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info,openraft=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kmsd");
        self.child = Some(child);
        self.stopped = false;
    }

    /// Waits until the node serves its client port (the admin status answers).
    async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("kmsd {} exited during start with {status}; log:\n{}", self.id, self.log_text());
            }
            let mut admin = AdminClient::new(self.channel(Duration::from_secs(3)));
            if admin.get_cluster_status(admin_pb::GetClusterStatusRequest {}).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kmsd {} not serving after 60 s; log:\n{}",
                self.id,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.stopped = false;
    }

    /// SIGTERM, and waits for the graceful shutdown to finish.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "-TERM");
            child.wait().unwrap();
        }
        self.stopped = false;
    }

    /// Whether the node was frozen with [`sigstop`](Self::sigstop) and not thawed yet.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// SIGSTOP: the process freezes (no answers, no heartbeats) but keeps its sockets.
    pub fn sigstop(&mut self) {
        let pid = self.pid().expect("node not running");
        signal(pid, "-STOP");
        self.stopped = true;
    }

    /// SIGCONT after [`sigstop`](Self::sigstop).
    pub fn sigcont(&mut self) {
        let pid = self.pid().expect("node not running");
        signal(pid, "-CONT");
        self.stopped = false;
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        // SIGKILL also ends a SIGSTOPped process.
        self.kill();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Polls `check` (every 100 ms) until it yields a value, and returns it; panics naming `what`
/// after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A channel connected on first use (and re-connected after failures); every call is bounded by
/// `timeout`.
pub fn lazy_channel(endpoint: &str, timeout: Duration) -> Channel {
    lazy_channel_with(endpoint, timeout, None)
}

/// [`lazy_channel`], over TLS as `identity` when given.
pub fn lazy_channel_with(endpoint: &str, timeout: Duration, identity: Option<&ClientIdentity>) -> Channel {
    let mut endpoint = tonic::transport::Endpoint::from_shared(endpoint.to_string()).unwrap();
    if let Some(identity) = identity {
        endpoint = endpoint.tls_config(identity.tls_config()).unwrap();
    }
    endpoint.connect_timeout(Duration::from_secs(2)).timeout(timeout).connect_lazy()
}

/// A region of real `kmsd run` processes in one temporary directory, sharing one root key file
/// (mode 0600). Nodes are kept by id; ids are never reused.
pub struct Cluster {
    tmp: tempfile::TempDir,
    root_key: PathBuf,
    raft_tuning: String,
    /// Appended to every node's config; `{node_dir}` stands for the node's directory.
    extra_config: String,
    /// Environment variables of every kmsd.
    env: Vec<(String, String)>,
    /// The region's name (`e2e-1` unless [`prepare`](Self::prepare) names it).
    region: String,
    /// The harness's client identity once [`enable_tls`](Self::enable_tls) was called.
    tls: Option<ClientIdentity>,
    /// `maintenance_interval_secs` of every node: an hour unless a test needs the maintenance
    /// pass (deletions, rotations, re-sealing) to run ([`set_maintenance_interval`](Self::set_maintenance_interval)).
    maintenance_interval_secs: u64,
    pub nodes: std::collections::BTreeMap<u64, ClusterNode>,
}

impl Cluster {
    /// Starts nodes 1..=n as a fresh region (node 1 initializes it with all n as voters) and
    /// waits until every node knows the same leader.
    pub async fn start(n: u64) -> Cluster {
        Self::start_with(n, TEST_RAFT_TUNING).await
    }

    pub async fn start_with(n: u64, raft_tuning: &str) -> Cluster {
        Self::start_with_config(n, raft_tuning, "").await
    }

    /// Like [`start_with`](Self::start_with), with `extra` TOML appended to every node's config
    /// (`{node_dir}` in it becomes the node's directory), e.g. a `[kubernetes]` section.
    pub async fn start_with_config(n: u64, raft_tuning: &str, extra: &str) -> Cluster {
        Self::start_full(n, raft_tuning, extra, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables for every kmsd (e.g. the
    /// OTLP exporter's).
    pub async fn start_with_env(n: u64, env: &[(&str, &str)]) -> Cluster {
        Self::start_full(n, TEST_RAFT_TUNING, "", env).await
    }

    /// A fresh region of `n` nodes with Raft `raft_tuning`, `extra` TOML appended to every node's
    /// config (`{node_dir}` becomes the node's directory) and `env` set for every kmsd.
    pub async fn start_full(n: u64, raft_tuning: &str, extra: &str, env: &[(&str, &str)]) -> Cluster {
        let mut cluster = Self::prepare_full(n, "e2e-1", raft_tuning, env);
        cluster.append_config(extra);
        cluster.launch().await;
        cluster
    }

    /// Region `region` of `n` nodes with their directories and ports chosen but not started, so
    /// that another region's configuration can name its endpoints first; then
    /// [`launch`](Self::launch). Each region gets its own root key.
    pub fn prepare(n: u64, region: &str) -> Cluster {
        Self::prepare_full(n, region, TEST_RAFT_TUNING, &[])
    }

    fn prepare_full(n: u64, region: &str, raft_tuning: &str, env: &[(&str, &str)]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let root_key = tmp.path().join("root.key");
        write_root_key(&root_key);
        let mut cluster = Cluster {
            tmp,
            root_key,
            raft_tuning: raft_tuning.to_string(),
            extra_config: String::new(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            region: region.to_string(),
            tls: None,
            maintenance_interval_secs: 3600,
            nodes: Default::default(),
        };
        for id in 1..=n {
            let node = cluster.place(id);
            cluster.nodes.insert(id, node);
        }
        cluster
    }

    /// Puts the prepared region on mutual TLS with certificates from the CA in `ca_dir` (made
    /// with `kmsctl ca create`): each node gets a node certificate of this region, and the
    /// harness a client certificate with the region's node identity, which may administer.
    pub fn enable_tls(&mut self, ca_dir: &Path) {
        let ca_dir_arg = ca_dir.display().to_string();
        let issue = |out_dir: &Path, name: &str| {
            let output = Command::new(binary("kmsctl"))
                .args(["ca", "issue", "--ca-dir", &ca_dir_arg, "--out-dir"])
                .arg(out_dir)
                .args(["--name", name, "--node", &self.region, "--dns", "localhost", "--ip", "127.0.0.1"])
                .output()
                .unwrap();
            assert!(output.status.success(), "kmsctl ca issue: {}", String::from_utf8_lossy(&output.stderr));
        };
        for node in self.nodes.values() {
            issue(&node.dir, "node");
        }
        issue(self.tmp.path(), "harness");
        let identity = ClientIdentity {
            ca: ca_dir.join("ca.crt"),
            cert: self.tmp.path().join("harness.crt"),
            key: self.tmp.path().join("harness.key"),
        };
        for node in self.nodes.values_mut() {
            node.tls = Some(identity.clone());
        }
        self.tls = Some(identity);
        self.append_config(&format!(
            "[tls]\ncert = \"{{node_dir}}/node.crt\"\nkey = \"{{node_dir}}/node.key\"\nca = {:?}",
            ca_dir.join("ca.crt")
        ));
    }

    /// How often every node runs its maintenance pass; takes effect for nodes started or
    /// restarted afterwards.
    pub fn set_maintenance_interval(&mut self, secs: u64) {
        self.maintenance_interval_secs = secs;
    }

    /// The region's root key file, named in every node's configuration as `root_key_file`.
    pub fn root_key_file(&self) -> &Path {
        &self.root_key
    }

    /// Names `path` as the root key file of nodes started or restarted from now on.
    pub fn set_root_key_file(&mut self, path: &Path) {
        self.root_key = path.to_path_buf();
    }

    /// Replaces the TOML appended to every node's configuration (see [`append_config`](Self::append_config)).
    pub fn set_config(&mut self, extra: &str) {
        self.extra_config = format!("{extra}\n");
    }

    /// Waits until the leader reports nothing left under a previous root key, after having
    /// re-sealed something (its log says so): the end of a root key rotation's re-seal.
    /// Returns how long that took. Needs a short maintenance interval.
    pub async fn wait_resealed(&self, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let leader = self.wait_leader(Duration::from_secs(10)).await;
            let (_, _, metrics) = self.node(leader).scrape_metrics();
            let resealed_something = self
                .nodes
                .values()
                .any(|node| node.log_text().contains("re-sealed key material under the active root key"));
            if resealed_something && metrics.lines().any(|line| line == "kms_root_key_stale_sealed_values 0")
            {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "re-seal not finished after {timeout:?}:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The harness's client identity, when the region runs on TLS.
    pub fn client_identity(&self) -> Option<ClientIdentity> {
        self.tls.clone()
    }

    /// The client endpoints (`host:port`) of every node.
    pub fn client_endpoints(&self) -> Vec<String> {
        self.nodes.values().map(|node| node.listen.to_string()).collect()
    }

    /// Appends TOML to every node's configuration (`{node_dir}` becomes the node's directory);
    /// takes effect for nodes started or restarted afterwards.
    pub fn append_config(&mut self, extra: &str) {
        self.extra_config.push_str(extra);
        self.extra_config.push('\n');
    }

    /// Starts the prepared nodes as a fresh region (the first initializes it with all as
    /// voters) and waits until every node knows the same leader.
    pub async fn launch(&mut self) {
        let initial: std::collections::BTreeMap<u64, String> =
            self.nodes.values().map(|node| (node.id, node.raft_listen.to_string())).collect();
        let ids: Vec<u64> = initial.keys().copied().collect();
        for id in &ids {
            self.write_config(&self.nodes[id], &initial);
            self.nodes.get_mut(id).unwrap().spawn();
        }
        for node in self.nodes.values_mut() {
            node.wait_serving().await;
        }
        self.wait_converged(&ids, Duration::from_secs(30)).await;
    }

    /// Directory and free ports for a new node (not started).
    fn place(&self, id: u64) -> ClusterNode {
        let dir = self.tmp.path().join(format!("node{id}"));
        assert!(!dir.exists(), "node id {id} was used before in this cluster");
        std::fs::create_dir_all(&dir).unwrap();
        ClusterNode {
            id,
            child: None,
            dir,
            listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            raft_listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            metrics_listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            stopped: false,
            env: self.env.clone(),
            tls: self.tls.clone(),
        }
    }

    fn write_config(&self, node: &ClusterNode, initial: &std::collections::BTreeMap<u64, String>) {
        self.write_config_joining(node, initial, &[]);
    }

    /// A node configuration; a non-empty `join` lists client endpoints the node asks to add it.
    fn write_config_joining(
        &self,
        node: &ClusterNode,
        initial: &std::collections::BTreeMap<u64, String>,
        join: &[String],
    ) {
        let mut text = format!(
            "node_id = {}\ndata_dir = {:?}\nlisten = \"{}\"\nraft_listen = \"{}\"\nregion = {:?}\n\
             account = \"111122223333\"\nroot_key_file = {:?}\nmaintenance_interval_secs = {}\n\
             metrics_listen = \"{}\"\n",
            node.id,
            node.data_dir(),
            node.listen,
            node.raft_listen,
            self.region,
            self.root_key,
            self.maintenance_interval_secs,
            node.metrics_listen,
        );
        if !join.is_empty() {
            let quoted: Vec<String> = join.iter().map(|endpoint| format!("{endpoint:?}")).collect();
            text.push_str(&format!("join = [{}]\n", quoted.join(", ")));
        }
        if !initial.is_empty() {
            text.push_str("[initial_members]\n");
            for (id, addr) in initial {
                text.push_str(&format!("{id} = \"{addr}\"\n"));
            }
        }
        text.push_str("[raft]\n");
        text.push_str(&self.raft_tuning);
        text.push('\n');
        text.push_str(&self.extra_config.replace("{node_dir}", &node.dir.display().to_string()));
        std::fs::write(node.config_path(), text).unwrap();
    }

    /// Starts a brand-new node `id` with no initial membership (it waits to be added with
    /// `cluster add-learner`). Returns once it serves its client port.
    pub async fn spawn_joining(&mut self, id: u64) -> &mut ClusterNode {
        assert!(!self.nodes.contains_key(&id), "node id {id} is taken");
        let mut node = self.place(id);
        self.write_config(&node, &Default::default());
        node.spawn();
        node.wait_serving().await;
        self.nodes.insert(id, node);
        self.nodes.get_mut(&id).unwrap()
    }

    /// Starts a brand-new node `id` configured with `join` = the client endpoints of every
    /// current node, so it adds itself to the region. Returns once it serves its client port.
    pub async fn spawn_auto_joining(&mut self, id: u64) -> &mut ClusterNode {
        assert!(!self.nodes.contains_key(&id), "node id {id} is taken");
        let node = self.place(id);
        self.insert_and_set_join(node);
        self.restart(id).await;
        self.node_mut(id)
    }

    /// Rewrites the configuration of the stopped node `id` so that, on its next start, it joins
    /// through the client endpoints of every other node.
    pub fn set_join(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap_or_else(|| panic!("no node {id}"));
        assert!(!node.is_running(), "stop node {id} first");
        self.insert_and_set_join(node);
    }

    fn insert_and_set_join(&mut self, node: ClusterNode) {
        let join: Vec<String> = self.nodes.values().map(|n| n.listen.to_string()).collect();
        self.write_config_joining(&node, &Default::default(), &join);
        self.nodes.insert(node.id, node);
    }

    pub fn node(&self, id: u64) -> &ClusterNode {
        self.nodes.get(&id).unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        self.nodes.get_mut(&id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Restarts a killed node on its data directory and ports; returns once it serves.
    /// Stops node `id` gracefully (SIGTERM) and starts it again with the cluster's current
    /// configuration (root key file, appended TOML), as one step of a rolling change does.
    /// Returns once it serves its client port.
    pub async fn restart_reconfigured(&mut self, id: u64) {
        self.node_mut(id).terminate();
        self.write_config(self.node(id), &Default::default());
        self.restart(id).await;
    }

    pub async fn restart(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.spawn();
        node.wait_serving().await;
    }

    /// Restarts several killed nodes at once (all are spawned before any is awaited, so nodes
    /// that need each other for a majority can come up together); returns once all serve.
    pub async fn restart_many(&mut self, ids: &[u64]) {
        for id in ids {
            self.node_mut(*id).spawn();
        }
        for id in ids {
            self.node_mut(*id).wait_serving().await;
        }
    }

    /// Undoes every fault: thaws stopped nodes and restarts killed ones (discarded nodes stay
    /// gone). Returns the ids that were thawed or restarted.
    pub async fn heal(&mut self) -> Vec<u64> {
        let mut healed = Vec::new();
        let stopped: Vec<u64> = self.nodes.values().filter(|n| n.stopped).map(|n| n.id).collect();
        for id in stopped {
            self.node_mut(id).sigcont();
            healed.push(id);
        }
        let killed: Vec<u64> = self.nodes.values().filter(|n| !n.is_running()).map(|n| n.id).collect();
        self.restart_many(&killed).await;
        healed.extend(killed);
        healed
    }

    /// Kills node `id` and forgets it (its directory stays until the cluster is dropped).
    pub fn discard(&mut self, id: u64) {
        if let Some(mut node) = self.nodes.remove(&id) {
            node.kill();
        }
    }

    /// Ids of running, not stopped nodes.
    pub fn live_ids(&self) -> Vec<u64> {
        self.nodes.values().filter(|n| n.is_running() && !n.stopped).map(|n| n.id).collect()
    }

    /// The cluster status as node `id` reports it.
    pub async fn status(&self, id: u64) -> Result<admin_pb::GetClusterStatusResponse, tonic::Status> {
        let mut admin = AdminClient::new(self.node(id).channel(Duration::from_secs(5)));
        admin.get_cluster_status(admin_pb::GetClusterStatusRequest {}).await.map(tonic::Response::into_inner)
    }

    /// Waits until every node in `ids` reports the same leader (one of `ids`), with `ids` all
    /// members, every member reachable, and every node caught up: its applied index at least the
    /// leader's when the check began. (Exact equality is not asked for: under a running workload
    /// the indexes move between two status calls.) Returns the leader.
    pub async fn wait_converged(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let why = match self.converged(ids).await {
                Ok(leader) => return leader,
                Err(why) => why,
            };
            assert!(Instant::now() < deadline, "cluster {ids:?} did not converge in {timeout:?}: {why}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn converged(&self, ids: &[u64]) -> Result<u64, String> {
        let first = *ids.first().ok_or("no nodes")?;
        let s = self.status(first).await.map_err(|e| format!("node {first}: {e}"))?;
        let leader = s.leader_id.ok_or_else(|| format!("node {first} knows no leader"))?;
        if !ids.contains(&leader) {
            return Err(format!("leader {leader} is not among {ids:?}"));
        }
        let s = self.status(leader).await.map_err(|e| format!("leader {leader}: {e}"))?;
        let target = applied_index(&s, leader)?;
        for id in ids {
            let s = self.status(*id).await.map_err(|e| format!("node {id}: {e}"))?;
            if s.leader_id != Some(leader) {
                return Err(format!("node {id} sees leader {:?}, node {first} sees {leader}", s.leader_id));
            }
            for want in ids {
                let n = s.nodes.iter().find(|n| n.node_id == *want);
                let n = n.ok_or_else(|| format!("node {id} does not list member {want}"))?;
                if !n.error.is_empty() {
                    return Err(format!("node {id} cannot reach {want}: {}", n.error));
                }
            }
            let applied = applied_index(&s, *id)?;
            if applied < target {
                return Err(format!("node {id} applied {applied:?}, behind the leader's {target:?}"));
            }
        }
        Ok(leader)
    }

    /// The leader as the live nodes agree on it (waits up to `timeout`).
    pub async fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for id in self.live_ids() {
                if let Ok(s) = self.status(id).await {
                    seen.push(s.leader_id);
                }
            }
            if let Some(Some(leader)) = seen.first()
                && seen.iter().all(|l| *l == Some(*leader))
                && self.live_ids().contains(leader)
            {
                return *leader;
            }
            assert!(Instant::now() < deadline, "no agreed leader within {timeout:?}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A small deterministic PRNG (SplitMix64) for randomized tests: a printed seed replays the
/// same sequence of choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A random seed (from the OS RNG).
    pub fn random_seed() -> u64 {
        let bytes = kms_crypto::random_bytes(8).unwrap();
        u64::from_le_bytes(bytes.expose()[..8].try_into().unwrap())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A duration uniform in `min_ms..=max_ms` milliseconds.
    pub fn millis(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(min_ms + self.below(max_ms - min_ms + 1))
    }

    /// A uniformly chosen element of `items` (non-empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Writes a random 32-byte root key as 64 hex digits, mode 0600.
pub fn write_root_key(path: &Path) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = kms_crypto::random_bytes(32).unwrap();
    let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    file.write_all(hex.as_bytes()).unwrap();
}

// ---- A KMS workload against a cluster, and checks of what it was told ----

/// What the cluster acknowledged to the workload.
#[derive(Default, Debug, Clone)]
pub struct Acked {
    pub keys: Vec<String>,
    /// (ciphertext, plaintext)
    pub ciphertexts: Vec<(Vec<u8>, Vec<u8>)>,
    pub rotations: usize,
    /// (started, finished) of every acknowledged write (create or rotate).
    pub writes: Vec<(Instant, Instant)>,
    /// Failed calls, by the AWS exception name or gRPC code.
    pub errors: std::collections::BTreeMap<String, usize>,
}

impl Acked {
    fn error(&mut self, status: &tonic::Status) {
        let name = match status.metadata().get(kms_proto::EXCEPTION_METADATA_KEY) {
            Some(v) => v.to_str().unwrap_or("?").to_string(),
            None => format!("{:?}", status.code()),
        };
        *self.errors.entry(name).or_default() += 1;
    }
}

/// One workload worker: creates a key on `writer`, encrypts under it on `reader` (another node, so
/// the follower's read barrier is exercised), rotates every third key on `writer` and encrypts
/// again. Runs until `stop`; failed calls are counted and retried after `pause`.
pub async fn workload(
    worker: usize,
    mut writer: Client,
    mut reader: Client,
    acked: std::sync::Arc<std::sync::Mutex<Acked>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pause: Duration,
) {
    use kms_proto::v1 as pb;
    use std::sync::atomic::Ordering;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        let request =
            pb::CreateKeyRequest { description: Some(format!("w{worker}-{i}")), ..Default::default() };
        let key_id = match writer.create_key(request).await {
            Ok(r) => r.into_inner().key_metadata.unwrap().key_id,
            Err(status) => {
                acked.lock().unwrap().error(&status);
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        {
            let mut a = acked.lock().unwrap();
            a.keys.push(key_id.clone());
            a.writes.push((started, Instant::now()));
        }
        let rounds = if i.is_multiple_of(3) { 2 } else { 1 };
        for round in 0..rounds {
            if round == 1 {
                let started = Instant::now();
                let request = pb::RotateKeyOnDemandRequest { key_id: key_id.clone() };
                match writer.rotate_key_on_demand(request).await {
                    Ok(_) => {
                        let mut a = acked.lock().unwrap();
                        a.rotations += 1;
                        a.writes.push((started, Instant::now()));
                    }
                    Err(status) => {
                        acked.lock().unwrap().error(&status);
                        break;
                    }
                }
            }
            let plaintext = format!("worker {worker} key {i} round {round}").into_bytes();
            let request = pb::EncryptRequest {
                key_id: key_id.clone(),
                plaintext: plaintext.clone(),
                ..Default::default()
            };
            match reader.encrypt(request).await {
                Ok(r) => acked.lock().unwrap().ciphertexts.push((r.into_inner().ciphertext_blob, plaintext)),
                Err(status) => acked.lock().unwrap().error(&status),
            }
        }
    }
}

/// Checks that every acknowledged key exists on node `id` and every acknowledged ciphertext
/// decrypts there to its plaintext. Panics naming the first miss.
pub async fn verify_on(cluster: &Cluster, id: u64, acked: &Acked) {
    verify_with(cluster.node(id).client(), &format!("node {id}"), acked).await;
}

/// Checks every acknowledged key and ciphertext through `client` (a node named `id` in messages).
pub async fn verify_with(mut client: Client, id: &str, acked: &Acked) {
    use kms_proto::v1 as pb;
    for key_id in &acked.keys {
        let request = pb::DescribeKeyRequest { key_id: key_id.clone(), ..Default::default() };
        let meta = client
            .describe_key(request)
            .await
            .unwrap_or_else(|e| panic!("{id}: acknowledged key {key_id} missing: {e}"))
            .into_inner()
            .key_metadata
            .unwrap();
        assert_eq!(&meta.key_id, key_id);
    }
    for (blob, plaintext) in &acked.ciphertexts {
        let request = pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() };
        let response = client
            .decrypt(request)
            .await
            .unwrap_or_else(|e| panic!("{id}: acknowledged ciphertext does not decrypt: {e}"))
            .into_inner();
        assert_eq!(&response.plaintext, plaintext, "{id}: wrong plaintext");
    }
}

impl Drop for Cluster {
    /// On a failing test, shows the end of every node's log (including discarded nodes).
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill();
        }
        if !std::thread::panicking() {
            return;
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let log = std::fs::read_to_string(dir.join("kmsd.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!("==== {} (last {} lines) ====\n{}", dir.display(), tail.len(), tail.join("\n"));
        }
    }
}

/// The applied index node `id` reports for itself in its cluster status.
fn applied_index(status: &admin_pb::GetClusterStatusResponse, id: u64) -> Result<Option<u64>, String> {
    let me = status.nodes.iter().find(|n| n.node_id == id);
    Ok(me.ok_or_else(|| format!("node {id} does not list itself"))?.last_applied_index)
}
