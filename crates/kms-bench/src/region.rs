//! A region of real `kmsd run` processes on loopback, in a temporary directory, with kmsd's
//! default Raft settings and durability, each node also serving the AWS JSON endpoint with
//! kmsd dev mode's access key. Every process is SIGKILLed when the region is dropped.

use anyhow::{Context, Result, bail};
use kms_proto::admin::v1 as admin_pb;
use kms_proto::admin::v1::cluster_admin_client::ClusterAdminClient;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type Client = KeyManagementServiceClient<Channel>;

/// A client whose connection is made on first use; every call bounded by `timeout`.
pub fn lazy_client(endpoint: &str, timeout: Duration) -> Result<Client> {
    Ok(KeyManagementServiceClient::new(lazy_channel(endpoint, timeout)?))
}

fn lazy_channel(endpoint: &str, timeout: Duration) -> Result<Channel> {
    Ok(tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .connect_lazy())
}

/// Refuses anything but a loopback `http://host:port` endpoint: this tool only loads this machine.
pub fn check_loopback(endpoint: &str) -> Result<()> {
    let rest = endpoint.strip_prefix("http://").context("--endpoint must be http://127.0.0.1:<port>")?;
    let host_port = rest.trim_end_matches('/');
    let loopback = match host_port.parse::<SocketAddr>() {
        Ok(address) => address.ip().is_loopback(),
        Err(_) => host_port.strip_prefix("localhost:").is_some_and(|p| p.parse::<u16>().is_ok()),
    };
    if !loopback {
        bail!("kms-bench only sends load to loopback addresses, got {endpoint}");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The access key every spawned node's AWS endpoint accepts (the one `kmsd dev` configures).
pub const AWS_ACCESS_KEY_ID: &str = "kmsdev";
pub const AWS_SECRET_ACCESS_KEY: &str = "kmsdevsecret";

struct Node {
    dir: PathBuf,
    listen: SocketAddr,
    aws_listen: SocketAddr,
    child: Option<Child>,
}

pub struct SpawnedRegion {
    _tmp: tempfile::TempDir,
    kmsd: PathBuf,
    nodes: BTreeMap<u64, Node>,
    name: String,
    root_key: PathBuf,
    raft: BTreeMap<u64, SocketAddr>,
}

impl SpawnedRegion {
    /// Starts nodes 1..=n of region `bench-1` (node 1 initializes it with all n as voters).
    pub async fn start(kmsd: &Path, n: u64) -> Result<Self> {
        let mut region = Self::prepare(kmsd, n, "bench-1")?;
        region.launch("")?;
        Ok(region)
    }

    /// Region `name` of n nodes with directories and ports chosen but nothing started, so that
    /// another region's configuration can name its endpoints first; then [`launch`](Self::launch).
    pub fn prepare(kmsd: &Path, n: u64, name: &str) -> Result<Self> {
        if !kmsd.exists() {
            bail!(
                "{} not found: build it first (`cargo build --release -p kms-server -p kms-bench`) or pass --kmsd",
                kmsd.display()
            );
        }
        let tmp = tempfile::tempdir()?;
        let root_key = tmp.path().join("root.key");
        write_root_key(&root_key)?;
        let mut raft = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let dir = tmp.path().join(format!("node{id}"));
            std::fs::create_dir_all(&dir)?;
            let listen: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
            let aws_listen: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
            raft.insert(id, SocketAddr::from(([127, 0, 0, 1], free_port()?)));
            nodes.insert(id, Node { dir, listen, aws_listen, child: None });
        }
        Ok(Self { _tmp: tmp, kmsd: kmsd.to_path_buf(), nodes, name: name.to_string(), root_key, raft })
    }

    /// The client endpoints (`host:port`) of every node.
    pub fn client_addresses(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.listen.to_string()).collect()
    }

    /// Writes every node's configuration, with `extra` TOML appended, and starts them.
    pub fn launch(&mut self, extra: &str) -> Result<()> {
        let (raft, root_key) = (&self.raft, &self.root_key);
        for (id, node) in &self.nodes {
            let mut config = format!(
                "node_id = {id}\ndata_dir = {:?}\nlisten = \"{}\"\naws_listen = \"{}\"\nraft_listen = \"{}\"\n\
                 region = {:?}\naccount = \"111122223333\"\nroot_key_file = {:?}\n\
                 maintenance_interval_secs = 3600\n[initial_members]\n",
                node.dir.join("data"),
                node.listen,
                node.aws_listen,
                raft[id],
                self.name,
                root_key
            );
            for (peer, address) in raft {
                config.push_str(&format!("{peer} = \"{address}\"\n"));
            }
            // The load comes from one principal: measure the service, not the per-principal
            // rate limits.
            config.push_str(
                "[rate_limits]\ncryptographic_per_second = 0\nmanagement_read_per_second = 0\n\
                 management_write_per_second = 0\n",
            );
            config.push_str(&format!(
                "[aws_credentials.{AWS_ACCESS_KEY_ID}]\nsecret_access_key = \"{AWS_SECRET_ACCESS_KEY}\"\n\
                 principal = \"{AWS_ACCESS_KEY_ID}\"\n"
            ));
            config.push_str(extra);
            std::fs::write(node.dir.join("kmsd.toml"), config)?;
        }
        for id in self.ids() {
            self.spawn(id)?;
        }
        Ok(())
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The region's name, as its AWS endpoint expects in SigV4 scopes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `host:port` of node `id`'s AWS JSON endpoint.
    pub fn aws_host(&self, id: u64) -> String {
        self.nodes.get(&id).map(|n| n.aws_listen.to_string()).unwrap_or_default()
    }

    pub fn endpoint(&self, id: u64) -> String {
        self.nodes.get(&id).map(|n| format!("http://{}", n.listen)).unwrap_or_default()
    }

    fn spawn(&mut self, id: u64) -> Result<()> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.dir.join("kmsd.log"))?;
        let child = Command::new(&self.kmsd)
            .args(["run", "--config"])
            .arg(node.dir.join("kmsd.toml"))
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.kmsd.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILLs node `id`; returns the moment the signal was sent.
    pub fn kill(&mut self, id: u64) -> Result<Instant> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let mut child = node.child.take().context("node not running")?;
        let at = Instant::now();
        child.kill()?;
        child.wait()?;
        Ok(at)
    }

    /// Starts a killed node again without waiting for it.
    pub fn start_node(&mut self, id: u64) -> Result<()> {
        self.spawn(id)
    }

    /// Node `id`'s resident memory (VmRSS), read from /proc.
    pub fn resident_bytes(&self, id: u64) -> Result<u64> {
        let pid =
            self.nodes.get(&id).and_then(|n| n.child.as_ref()).map(Child::id).context("node not running")?;
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc (Linux only)")?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kib * 1024)
    }

    /// CPU time (user + system, all threads) node `id` has used, from /proc.
    pub fn cpu_seconds(&self, id: u64) -> Result<f64> {
        /// The unit of /proc's times: USER_HZ, which the kernel ABI fixes at 100 on x86-64 and
        /// arm64 whatever the kernel's own tick rate.
        const TICKS_PER_SECOND: f64 = 100.0;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid(id)?))
            .context("reading /proc (Linux only)")?;
        // Fields after the command name (which is in parentheses and may hold spaces): state is
        // field 3, utime and stime are fields 14 and 15.
        let after_name =
            stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected /proc/<pid>/stat")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| {
            fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unexpected /proc/<pid>/stat")
        };
        Ok((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
    }

    fn pid(&self, id: u64) -> Result<u32> {
        self.nodes.get(&id).and_then(|n| n.child.as_ref()).map(Child::id).context("node not running")
    }

    /// The size of node `id`'s data directory (RocksDB and the audit log).
    pub fn data_bytes(&self, id: u64) -> Result<u64> {
        fn size(path: &Path) -> std::io::Result<u64> {
            let meta = std::fs::symlink_metadata(path)?;
            if !meta.is_dir() {
                return Ok(meta.len());
            }
            std::fs::read_dir(path)?.map(|entry| size(&entry?.path())).sum()
        }
        let node = self.nodes.get(&id).context("no such node")?;
        Ok(size(&node.dir.join("data"))?)
    }

    /// Starts a killed node again and waits until the region converges with it.
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        self.spawn(id)?;
        self.wait_converged(Duration::from_secs(60)).await.map(drop)
    }

    async fn status(&self, id: u64) -> Option<admin_pb::GetClusterStatusResponse> {
        let channel = lazy_channel(&self.endpoint(id), Duration::from_secs(3)).ok()?;
        let mut admin = ClusterAdminClient::new(channel);
        admin.get_cluster_status(admin_pb::GetClusterStatusRequest {}).await.ok().map(|r| r.into_inner())
    }

    /// Waits until the running nodes agree on a leader; returns it.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<u64> {
        let running: Vec<u64> =
            self.nodes.iter().filter(|(_, n)| n.child.is_some()).map(|(id, _)| *id).collect();
        self.wait_leader_among(&running, timeout).await
    }

    /// Waits until every node in `ids` answers and names the same leader, one of `ids`.
    /// Whether one of `ids` already reports a leader among `ids` (one status call each, bounded).
    pub async fn has_leader_among(&self, ids: &[u64]) -> bool {
        for id in ids {
            let status = tokio::time::timeout(Duration::from_millis(500), self.status(*id)).await;
            if let Ok(Some(leader)) = status.map(|s| s.and_then(|s| s.leader_id))
                && ids.contains(&leader)
            {
                return true;
            }
        }
        false
    }

    pub async fn wait_leader_among(&self, ids: &[u64], timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for id in ids {
                leaders.push(self.status(*id).await.and_then(|s| s.leader_id));
            }
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| *l == Some(*leader))
                && ids.contains(leader)
            {
                return Ok(*leader);
            }
            if Instant::now() > deadline {
                bail!(
                    "no agreed leader among {ids:?} within {timeout:?} (saw {leaders:?}); logs in the nodes' kmsd.log"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node is running, agrees on the leader and has applied what it has.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let ids = self.ids();
        loop {
            let leader =
                self.wait_leader_among(&ids, deadline.saturating_duration_since(Instant::now())).await?;
            let mut applied = Vec::new();
            for id in &ids {
                let status = self.status(*id).await;
                let me = status.and_then(|s| s.nodes.into_iter().find(|n| n.node_id == *id));
                applied.push(me.and_then(|n| n.last_applied_index));
            }
            if applied.iter().all(|a| a.is_some() && *a == applied[0]) {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!("region did not converge within {timeout:?}: applied {applied:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SpawnedRegion {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A random 32-byte root key as 64 hex digits, mode 0600 (kmsd refuses anything looser).
fn write_root_key(path: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = kms_crypto::random_bytes(32).map_err(|e| anyhow::anyhow!("drawing a root key: {e}"))?;
    let hex = zeroize::Zeroizing::new(base16ct::lower::encode_string(key.expose()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(hex.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_loaded() {
        assert!(check_loopback("http://127.0.0.1:8300").is_ok());
        assert!(check_loopback("http://[::1]:8300").is_ok());
        assert!(check_loopback("http://localhost:8300").is_ok());
        assert!(check_loopback("http://10.0.0.1:8300").is_err());
        assert!(check_loopback("http://example.com:8300").is_err());
        assert!(check_loopback("127.0.0.1:8300").is_err());
    }
}
