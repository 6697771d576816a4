//! Per-principal rate limits on a real kmsd: a principal that bursts above its limit is refused
//! with ThrottlingException (RESOURCE_EXHAUSTED) before the operation runs, another principal is
//! unaffected, the refusals are audited, and the bucket refills.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, TEST_RAFT_TUNING, binary, exception, free_port, lazy_channel, write_root_key};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::{Code, Request};

const ALICE_TOKEN: &str = "alice-throttle-token";
const BOB_TOKEN: &str = "bob-throttle-token";

/// Two bearer tokens (their SHA-256 digests) and small limits.
const LIMITS: &str = "[tokens]\n\
alice = \"sha256:aba999013be9be095e0604f2cc643c4eb0ff2db386d59a643e56606d52f753a2\"\n\
bob = \"sha256:a0af28894f755570600e890f73999b139222af17f479b8f4a9e6bd22783f0973\"\n\
[rate_limits]\n\
cryptographic_per_second = 2\n\
cryptographic_burst = 5\n\
management_write_per_second = 1\n\
management_write_burst = 3\n";

/// One kmsd with [`LIMITS`]. With tokens configured nobody is anonymous (the shared harness
/// waits for a node anonymously), so this test starts its own node.
struct Node {
    _tmp: tempfile::TempDir,
    child: Child,
    data_dir: PathBuf,
    log: PathBuf,
    endpoint: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    async fn start() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let root_key = tmp.path().join("root.key");
        write_root_key(&root_key);
        let data_dir = tmp.path().join("data");
        let (listen, raft_listen) = (free_port(), free_port());
        let config = format!(
            "node_id = 1\ndata_dir = {data_dir:?}\nlisten = \"127.0.0.1:{listen}\"\n\
             raft_listen = \"127.0.0.1:{raft_listen}\"\nregion = \"e2e-1\"\naccount = \"111122223333\"\n\
             root_key_file = {root_key:?}\n[initial_members]\n1 = \"127.0.0.1:{raft_listen}\"\n\
             [raft]\n{TEST_RAFT_TUNING}{LIMITS}"
        );
        let config_path = tmp.path().join("kmsd.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = tmp.path().join("kmsd.log");
        let child = Command::new(binary("kmsd"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let node = Node { _tmp: tmp, child, data_dir, log, endpoint: format!("http://127.0.0.1:{listen}") };
        // Serving once Bob can list keys (a management read: its limit is the default).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut client = node.client();
        while client.list_keys(as_principal(BOB_TOKEN, pb::ListKeysRequest::default())).await.is_err() {
            assert!(Instant::now() < deadline, "kmsd not serving; log:\n{}", node.log_text());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        node
    }

    fn client(&self) -> Client {
        KeyManagementServiceClient::new(lazy_channel(&self.endpoint, Duration::from_secs(10)))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn as_principal<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn random(client: &mut Client, token: &str) -> Result<(), tonic::Status> {
    let message = pb::GenerateRandomRequest { number_of_bytes: Some(16), ..Default::default() };
    client.generate_random(as_principal(token, message)).await.map(|_| ())
}

async fn create_key(client: &mut Client, token: &str) -> Result<(), tonic::Status> {
    client.create_key(as_principal(token, pb::CreateKeyRequest::default())).await.map(|_| ())
}

fn assert_throttled(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(exception(status), "ThrottlingException");
    assert!(status.message().contains("Retry after"), "{}", status.message());
}

/// Calls `call` until it is refused (at most `limit` times); returns how many succeeded.
async fn admitted_until_refused<F>(limit: usize, mut call: F) -> usize
where
    F: AsyncFnMut() -> Result<(), tonic::Status>,
{
    for admitted in 0..limit {
        if let Err(status) = call().await {
            assert_throttled(&status);
            return admitted;
        }
    }
    panic!("{limit} calls in a row were admitted: no rate limit applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_the_limit_is_throttled_for_that_principal_only() {
    let node = Node::start().await;
    let mut client = node.client();

    // Alice's cryptographic bucket holds 5 (refilling 2/s): a quick burst is cut off after ~5.
    let admitted = admitted_until_refused(40, async || random(&mut client, ALICE_TOKEN).await).await;
    // (More than 5 only as far as the bucket refilled while the burst ran.)
    assert!(admitted >= 5, "admitted {admitted} of a burst against a bucket of 5");

    // Bob has his own bucket: his burst goes through in full.
    for _ in 0..5 {
        random(&mut client, BOB_TOKEN).await.unwrap();
    }

    // After the refill Alice is served again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    random(&mut client, ALICE_TOKEN).await.unwrap();

    // A refused write does not happen: Alice's CreateKey burst creates exactly the keys that
    // were admitted.
    let created = admitted_until_refused(20, async || create_key(&mut client, ALICE_TOKEN).await).await;
    assert!(created >= 3, "created {created} keys against a bucket of 3");
    let listed = client.list_keys(as_principal(BOB_TOKEN, pb::ListKeysRequest::default())).await.unwrap();
    assert_eq!(listed.into_inner().keys.len(), created);

    // Every refusal is in the audit log, under Alice's name.
    let audit_path = node.data_dir.join("audit.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusals = loop {
        let text = std::fs::read_to_string(&audit_path).unwrap_or_default();
        let refusals: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["outcome"] == "ThrottlingException")
            .collect();
        if refusals.len() >= 2 || Instant::now() > deadline {
            break refusals;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refusals.len(), 2, "one audited refusal per burst: {refusals:?}");
    assert!(refusals.iter().all(|r| r["principal"] == "alice"), "{refusals:?}");
    let operations: Vec<&str> = refusals.iter().filter_map(|r| r["operation"].as_str()).collect();
    assert_eq!(operations, ["GenerateRandom", "CreateKey"]);
}
