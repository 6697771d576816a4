//! deploy/compose.yaml on the Docker engine: region A's three kmsd containers on their private
//! network, built FROM scratch out of the debug binaries (deploy/image-from-binary.sh; no image
//! is pulled). Under a CreateKey/Encrypt workload through a published client port, the leader's
//! container is killed and started again, then a node's network is disconnected and
//! reconnected. Every acknowledged key and ciphertext must be on every node at the end.
//!
//! Skips (passing, with a message) when no Docker engine or docker-compose is available.
//! Everything it creates (containers, networks, volumes, the image) is removed by project name
//! and tag, also when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, AdminClient, Client, admin_pb, lazy_channel, verify_with, workload};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["kms-a-0", "kms-a-1", "kms-a-2"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn succeeded(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

/// One compose project; dropping it removes everything it made.
struct Project {
    name: String,
    image: String,
    secrets: tempfile::TempDir,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .args(["--project-name", &self.name, "--file"])
            .arg(repo_root().join("deploy/compose.yaml"))
            .args(args)
            .env("KMS_IMAGE", &self.image)
            .env("KMS_SECRETS", self.secrets.path())
            .output()
            .expect("running docker-compose")
    }

    fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn container(&self, service: &str) -> String {
        self.compose_ok(&["ps", "-q", service])
    }

    fn network(&self) -> String {
        format!("{}_region-a", self.name)
    }

    /// The host address of a service's client port (it changes when the container restarts or
    /// is reconnected).
    fn client_address(&self, service: &str) -> Option<SocketAddr> {
        let out = self.compose(&["port", service, "8300"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    fn endpoint(&self, service: &str) -> String {
        let address = self.client_address(service).unwrap_or_else(|| panic!("{service} publishes no port"));
        format!("http://{address}")
    }

    fn client(&self, service: &str) -> Client {
        Client::new(lazy_channel(&self.endpoint(service), Duration::from_secs(10)))
    }

    async fn status(&self, service: &str) -> Option<admin_pb::GetClusterStatusResponse> {
        let address = self.client_address(service)?;
        let mut admin = AdminClient::new(lazy_channel(&format!("http://{address}"), Duration::from_secs(3)));
        admin.get_cluster_status(admin_pb::GetClusterStatusRequest {}).await.ok().map(|r| r.into_inner())
    }

    /// Waits until all three nodes name the same leader and reach every member (and, when
    /// `idle`, have applied the same index: only without a workload). Returns the leader's
    /// service name.
    async fn wait_converged(&self, idle: bool, timeout: Duration) -> &'static str {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for service in NODES {
                seen.push(self.status(service).await);
            }
            let leaders: Vec<Option<u64>> =
                seen.iter().map(|s| s.as_ref().and_then(|s| s.leader_id)).collect();
            let applied: Vec<Option<u64>> = seen
                .iter()
                .map(|s| {
                    let s = s.as_ref()?;
                    s.nodes.iter().find(|n| n.node_id == s.reporting_node_id)?.last_applied_index
                })
                .collect();
            let healthy = seen.iter().all(|s| {
                s.as_ref().is_some_and(|s| s.nodes.len() == 3 && s.nodes.iter().all(|n| n.error.is_empty()))
            });
            if healthy
                && let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| *l == Some(*leader))
                && (!idle || applied.iter().all(|a| *a == applied[0]))
            {
                // Node ids are ordinal + 1 (node_id_from_hostname).
                return NODES[usize::try_from(*leader).unwrap() - 1];
            }
            assert!(
                Instant::now() < deadline,
                "region A did not converge in {timeout:?}: leaders {leaders:?}, applied {applied:?}\n{}",
                self.compose(&["logs", "--tail", "30"]).stdout.escape_ascii()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.compose(&["logs", "--tail", "60"]);
            eprintln!("==== compose logs ====\n{}", String::from_utf8_lossy(&logs.stdout));
        }
        let down = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        if !down.status.success() {
            eprintln!("docker-compose down failed: {}", String::from_utf8_lossy(&down.stderr));
        }
        let _ = Command::new("docker").args(["image", "rm", "--force", &self.image]).output();
    }
}

fn write_root_key(path: &Path) {
    let key = kms_crypto::random_bytes(32).unwrap();
    let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, hex).unwrap();
}

/// Runs the workload against `service` (never faulted) while `faults` runs; returns what was
/// acknowledged.
async fn run_workload_during<F: std::future::Future<Output = ()>>(
    project: &Project,
    service: &str,
    faults: F,
) -> Acked {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = tokio::spawn(workload(
        0,
        project.client(service),
        project.client(service),
        acked.clone(),
        stop.clone(),
        Duration::from_millis(200),
    ));
    faults.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    worker.await.unwrap();
    acked.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_a_keeps_every_acknowledged_write_through_a_kill_and_a_partition() {
    if !succeeded("docker", &["info"]) || !succeeded("docker-compose", &["version"]) {
        println!("SKIPPED: no reachable Docker engine or no docker-compose; deploy/compose.yaml not tested");
        return;
    }
    let pid = std::process::id();
    let project = Project {
        name: format!("kmse2e{pid}"),
        image: format!("kms-e2e:{pid}"),
        secrets: tempfile::tempdir().unwrap(),
    };
    let bin_dir = kms_e2e::binary("kmsd").parent().unwrap().to_path_buf();
    let built = Command::new(repo_root().join("deploy/image-from-binary.sh"))
        .arg(&project.image)
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "building the image: {}", String::from_utf8_lossy(&built.stderr));
    write_root_key(&project.secrets.path().join("root-a.key"));
    write_root_key(&project.secrets.path().join("root-b.key"));

    project.compose_ok(&["up", "--detach", "--no-build", "kms-a-0", "kms-a-1", "kms-a-2"]);
    let leader = project.wait_converged(true, Duration::from_secs(60)).await;
    let steady = NODES.into_iter().find(|s| *s != leader).unwrap();
    println!("region A is up; leader {leader}; workload on {steady}");

    let acked = run_workload_during(&project, steady, async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The leader's container dies (SIGKILL) and comes back on its volume.
        let container = project.container(leader);
        assert!(succeeded("docker", &["kill", &container]));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(succeeded("docker", &["start", &container]));
        let leader = project.wait_converged(false, Duration::from_secs(60)).await;
        println!("after the kill: leader {leader}");

        // A node (the leader if that is not the workload's node) is cut off its network.
        let cut = if leader == steady { NODES.into_iter().find(|s| *s != steady).unwrap() } else { leader };
        let container = project.container(cut);
        let network = project.network();
        assert!(succeeded("docker", &["network", "disconnect", &network, &container]));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(succeeded("docker", &["network", "connect", "--alias", cut, &network, &container]));
        let leader = project.wait_converged(false, Duration::from_secs(60)).await;
        println!("after cutting {cut} off: leader {leader}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    })
    .await;

    println!(
        "acknowledged: {} keys, {} ciphertexts, {} rotations; errors {:?}",
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.rotations,
        acked.errors
    );
    assert!(acked.keys.len() >= 5, "the workload made too little progress: {acked:?}");
    project.wait_converged(true, Duration::from_secs(60)).await;
    for service in NODES {
        verify_with(project.client(service), service, &acked).await;
    }
}
