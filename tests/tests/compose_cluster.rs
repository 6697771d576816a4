//! deploy/compose.yaml on the Docker engine: two regions of three kmsd containers, each on its
//! private network, joined by an inter-region network, built FROM scratch out of the debug
//! binaries (deploy/image-from-binary.sh; no image is pulled).
//!
//! 1. Region A under a CreateKey/Encrypt workload through a published client port: the leader's
//!    container is killed and started again, then a node's network is disconnected and
//!    reconnected. Every acknowledged key and ciphertext must be on every node at the end.
//! 2. Region B joins. A multi-Region key made in A is replicated to B; A's ciphertexts decrypt
//!    in B. Region A is cut off the inter-region network and lost (every container killed); B is
//!    promoted (UpdatePrimaryRegion with Force), encrypts, and still decrypts everything A
//!    acknowledged before. When A comes back it follows B as a replica.
//!
//! Skips (passing, with a message) when no Docker engine or docker-compose is available.
//! Everything it creates (containers, networks, volumes, the image) is removed by project name
//! and tag, also when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Acked, AdminClient, Client, admin_pb, eventually, lazy_channel, verify_with, workload};
use kms_proto::v1 as pb;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["kms-a-0", "kms-a-1", "kms-a-2"];
const REGION_B: [&str; 3] = ["kms-b-0", "kms-b-1", "kms-b-2"];
const MINUTE: Duration = Duration::from_secs(60);

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

    /// A network of the project, by its name in compose.yaml.
    fn network(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
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

    /// Waits until the three nodes of a region name the same leader and reach every member
    /// (and, when `idle`, have applied the same index: only without a workload). Returns the
    /// leader's service name.
    async fn wait_converged(&self, nodes: [&'static str; 3], idle: bool, timeout: Duration) -> &'static str {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for service in nodes {
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
                return nodes[usize::try_from(*leader).unwrap() - 1];
            }
            assert!(
                Instant::now() < deadline,
                "region {nodes:?} did not converge in {timeout:?}: leaders {leaders:?}, applied {applied:?}\n{}",
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
async fn two_regions_keep_every_acknowledged_write_through_kills_partitions_and_a_promotion() {
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
    let leader = project.wait_converged(NODES, true, Duration::from_secs(60)).await;
    let steady = NODES.into_iter().find(|s| *s != leader).unwrap();
    println!("region A is up; leader {leader}; workload on {steady}");

    let acked = run_workload_during(&project, steady, async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The leader's container dies (SIGKILL) and comes back on its volume.
        let container = project.container(leader);
        assert!(succeeded("docker", &["kill", &container]));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(succeeded("docker", &["start", &container]));
        let leader = project.wait_converged(NODES, false, Duration::from_secs(60)).await;
        println!("after the kill: leader {leader}");

        // A node (the leader if that is not the workload's node) is cut off its network.
        let cut = if leader == steady { NODES.into_iter().find(|s| *s != steady).unwrap() } else { leader };
        let container = project.container(cut);
        let network = project.network("region-a");
        assert!(succeeded("docker", &["network", "disconnect", &network, &container]));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(succeeded("docker", &["network", "connect", "--alias", cut, &network, &container]));
        let leader = project.wait_converged(NODES, false, Duration::from_secs(60)).await;
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
    project.wait_converged(NODES, true, Duration::from_secs(60)).await;
    for service in NODES {
        verify_with(project.client(service), service, &acked).await;
    }

    lose_region_a_and_promote_b(&project, steady).await;
}

/// Phase 2 (see the module comment).
async fn lose_region_a_and_promote_b(project: &Project, steady: &'static str) {
    project.compose_ok(&["up", "--detach", "--no-build", "kms-b-0", "kms-b-1", "kms-b-2"]);
    project.wait_converged(REGION_B, true, Duration::from_secs(60)).await;
    let mut a = project.client(steady);
    let key_id = a
        .create_key(pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id;
    let request = pb::ReplicateKeyRequest {
        key_id: key_id.clone(),
        replica_region: "compose-b".into(),
        ..Default::default()
    };
    a.replicate_key(request).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..5u8 {
        let plaintext = vec![i; 16];
        acked.push((encrypt(&mut a, &key_id, &plaintext).await, plaintext));
    }
    for service in REGION_B {
        for (blob, plaintext) in &acked {
            let what = format!("{service} to decrypt A's ciphertext");
            eventually(&what, MINUTE, || async { decrypt(project, service, blob, plaintext).await.ok() })
                .await;
        }
    }

    // Region A is cut off from B, then lost.
    let interregion = project.network("interregion");
    for service in NODES {
        let container = project.container(service);
        assert!(succeeded("docker", &["network", "disconnect", &interregion, &container]));
        assert!(succeeded("docker", &["kill", &container]));
    }
    let lost_at = Instant::now();
    let promote = pb::UpdatePrimaryRegionRequest {
        key_id: key_id.clone(),
        primary_region: "compose-b".into(),
        force: Some(true),
    };
    let mut b = project.client("kms-b-0");
    b.update_primary_region(promote).await.unwrap();
    let after = encrypt(&mut b, &key_id, b"written in B").await;
    let rto = lost_at.elapsed();
    for service in REGION_B {
        for (blob, plaintext) in &acked {
            decrypt(project, service, blob, plaintext).await.unwrap_or_else(|e| panic!("{service}: {e}"));
        }
    }
    println!(
        "region A lost; B promoted and encrypting {rto:?} later; every ciphertext A acknowledged decrypts in B"
    );

    // A comes back: the promotion's new epoch outranks what it holds, so it follows B.
    for service in NODES {
        let container = project.container(service);
        assert!(succeeded("docker", &["start", &container]));
        assert!(succeeded("docker", &["network", "connect", "--alias", service, &interregion, &container]));
    }
    project.wait_converged(NODES, false, Duration::from_secs(60)).await;
    eventually("A to follow B as primary", MINUTE, || async {
        let mut a = project.client(steady);
        let request = pb::DescribeKeyRequest { key_id: key_id.clone(), ..Default::default() };
        let meta = a.describe_key(request).await.ok()?.into_inner().key_metadata?;
        let primary = meta.multi_region_configuration.and_then(|c| c.primary_key).map(|k| k.region);
        (primary.as_deref() == Some("compose-b")).then_some(())
    })
    .await;
    decrypt(project, steady, &after, b"written in B").await.unwrap();
    println!("region A returned and follows B; B's ciphertext decrypts in A");
}

async fn encrypt(client: &mut Client, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let request =
        pb::EncryptRequest { key_id: key_id.into(), plaintext: plaintext.to_vec(), ..Default::default() };
    client.encrypt(request).await.unwrap().into_inner().ciphertext_blob
}

async fn decrypt(project: &Project, service: &str, blob: &[u8], plaintext: &[u8]) -> Result<(), String> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), ..Default::default() };
    let answer = project.client(service).decrypt(request).await.map_err(|e| e.to_string())?.into_inner();
    assert_eq!(answer.plaintext, plaintext, "{service} decrypted to something else");
    Ok(())
}
