//! Transport security end to end: a 3-node region whose every port speaks TLS with certificates
//! made by `kmsctl ca`, clients authenticated by certificate or bearer token, Raft traffic
//! admitted only from this region's node certificates, and a plaintext listener beyond loopback
//! refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{binary, free_port, write_root_key};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const REGION: &str = "tls-1";

struct TlsNode {
    child: Child,
    dir: PathBuf,
    listen: SocketAddr,
    raft_listen: SocketAddr,
    aws_listen: SocketAddr,
}

impl TlsNode {
    fn endpoint(&self) -> String {
        format!("https://{}", self.listen)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("kmsd.log")).unwrap_or_default()
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kmsctl(args: &[&str]) -> Output {
    Command::new(binary("kmsctl")).args(args).output().expect("running kmsctl")
}

fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "kmsctl failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `kmsctl ca issue` into `pki`, returning nothing (the files are pki/<name>.crt|key).
fn issue(pki: &Path, name: &str, extra: &[&str]) {
    let (ca, out) = (pki.join("ca"), pki.to_str().unwrap().to_string());
    let mut args = vec!["ca", "issue", "--ca-dir", ca.to_str().unwrap(), "--out-dir", &out, "--name", name];
    args.extend_from_slice(extra);
    ok(kmsctl(&args));
}

/// The kmsctl flags that present `name`'s client certificate (and trust the CA) to `node`.
fn as_client(pki: &Path, node: &TlsNode, name: Option<&str>) -> Vec<String> {
    let mut args = vec!["--endpoint".into(), node.endpoint(), "--ca-bundle".into(), path(pki, "ca/ca.crt")];
    if let Some(name) = name {
        args.extend(["--client-cert".into(), path(pki, &format!("{name}.crt"))]);
        args.extend(["--client-key".into(), path(pki, &format!("{name}.key"))]);
    }
    args
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().unwrap().to_string()
}

fn run_as(client: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = client.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    kmsctl(&all)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// What every node of the test region shares.
struct Setup {
    dir: PathBuf,
    pki: PathBuf,
    root_key: PathBuf,
    token_line: String,
}

impl Setup {
    /// Starts node `id` with its certificate `node<id>`; `top` adds top-level keys, `tables` adds
    /// tables (membership).
    fn spawn_node(
        &self,
        id: usize,
        addrs: (SocketAddr, SocketAddr, SocketAddr),
        top: &str,
        tables: &str,
    ) -> TlsNode {
        let (listen, raft_listen, aws_listen) = addrs;
        let dir = self.dir.join(format!("node{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "node_id = {id}\ndata_dir = {data:?}\nlisten = \"{listen}\"\nraft_listen = \"{raft_listen}\"\n\
             aws_listen = \"{aws_listen}\"\nregion = \"{REGION}\"\naccount = \"111122223333\"\n\
             root_key_file = {root_key:?}\nadmins = [\"ops\"]\n{top}\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n\
             [tokens]\n{token_line}\n\
             [aws_credentials.AKIDTLS]\nsecret_access_key = \"tls-secret\"\nprincipal = \"aws-app\"\n\
             {tables}\
             [raft]\n{tuning}",
            data = dir.join("data"),
            root_key = self.root_key,
            cert = self.pki.join(format!("node{id}.crt")),
            key = self.pki.join(format!("node{id}.key")),
            ca = self.pki.join("ca/ca.crt"),
            token_line = self.token_line,
            tuning = kms_e2e::TEST_RAFT_TUNING,
        );
        std::fs::write(dir.join("kmsd.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("kmsd.log")).unwrap();
        let child = Command::new(binary("kmsd"))
            .args(["run", "--config"])
            .arg(dir.join("kmsd.toml"))
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        TlsNode { child, dir, listen, raft_listen, aws_listen }
    }
}

struct Region {
    _tmp: tempfile::TempDir,
    setup: Setup,
    pki: PathBuf,
    nodes: Vec<TlsNode>,
    token: String,
}

async fn start_region() -> Region {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    ok(kmsctl(&["ca", "create", "--out-dir", &path(&pki, "ca")]));
    for id in 1..=4 {
        issue(&pki, &format!("node{id}"), &["--node", REGION, "--dns", "localhost", "--ip", "127.0.0.1"]);
    }
    issue(&pki, "app", &["--uri", "spiffe://test/app"]);
    issue(&pki, "ops", &[]);
    issue(&pki, "intruder", &["--node", "other-region", "--ip", "127.0.0.1"]);
    let token = json(&ok(kmsctl(&["token", "create", "--principal", "token-app"])));
    let root_key = tmp.path().join("root.key");
    write_root_key(&root_key);

    let addrs: Vec<(SocketAddr, SocketAddr, SocketAddr)> = (0..3)
        .map(|_| {
            let port = || format!("127.0.0.1:{}", free_port()).parse().unwrap();
            (port(), port(), port())
        })
        .collect();
    let members: String =
        addrs.iter().enumerate().map(|(i, (_, raft, _))| format!("{} = \"{raft}\"\n", i + 1)).collect();
    let token_line = token["ConfigLine"].as_str().unwrap().to_string();
    let setup = Setup { dir: tmp.path().to_path_buf(), pki: pki.clone(), root_key, token_line };
    let tables = format!("[initial_members]\n{members}");
    let nodes =
        addrs.iter().enumerate().map(|(i, addrs)| setup.spawn_node(i + 1, *addrs, "", &tables)).collect();
    let region = Region { _tmp: tmp, setup, pki, nodes, token: token["Token"].as_str().unwrap().to_string() };
    // Every node answers its health check over TLS, and the region elects a leader (Raft over
    // mutual TLS works): a key can be created.
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in &region.nodes {
        while !run_as(&as_client(&region.pki, node, None), &["health"]).status.success() {
            assert!(Instant::now() < deadline, "node not healthy; log:\n{}", node.log_text());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    region
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_runs_on_mutual_tls_and_admits_only_authenticated_callers() {
    let region = start_region().await;
    let [n1, n2, n3] = [&region.nodes[0], &region.nodes[1], &region.nodes[2]];
    let app = |node| as_client(&region.pki, node, Some("app"));

    // A client certificate: create on one node (forwarded to the leader over mutual TLS), use on
    // the others (read-your-writes over the Raft port).
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        let output = run_as(&app(n1), &["create-key", "--description", "tls"]);
        if output.status.success() {
            break json(&String::from_utf8_lossy(&output.stdout));
        }
        assert!(Instant::now() < deadline, "create-key never succeeded: {}", stderr(&output));
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let ciphertext = json(&ok(run_as(
        &app(n2),
        &["encrypt", "--key-id", &key_id, "--plaintext", "aGVsbG8=", "--encryption-context", "a=b"],
    )))["CiphertextBlob"]
        .as_str()
        .unwrap()
        .to_string();
    let decrypted = json(&ok(run_as(
        &app(n3),
        &["decrypt", "--ciphertext-blob", &ciphertext, "--encryption-context", "a=b"],
    )));
    assert_eq!(decrypted["Plaintext"], "aGVsbG8=");

    // A bearer token instead of a certificate; a wrong token is refused even with a certificate.
    let mut with_token = as_client(&region.pki, n2, None);
    with_token.extend(["--token".to_string(), region.token.clone()]);
    ok(run_as(&with_token, &["describe-key", "--key-id", &key_id]));
    let mut bad_token = app(n2);
    bad_token.extend(["--token".to_string(), "not-the-token".to_string()]);
    let refused = run_as(&bad_token, &["describe-key", "--key-id", &key_id]);
    assert_eq!(refused.status.code(), Some(254));
    assert!(stderr(&refused).contains("UnrecognizedClientException"), "{}", stderr(&refused));

    // Neither: refused, with what to do next.
    let anonymous = run_as(&as_client(&region.pki, n1, None), &["list-keys"]);
    assert_eq!(anonymous.status.code(), Some(254));
    assert!(stderr(&anonymous).contains("MissingAuthenticationTokenException"), "{}", stderr(&anonymous));

    // Plaintext to a TLS port does not get an answer.
    let plaintext = kmsctl(&["--endpoint", &format!("http://{}", n1.listen), "list-keys"]);
    assert!(!plaintext.status.success());

    // The cluster admin API: the configured admin yes, an ordinary client no.
    let ops = as_client(&region.pki, n1, Some("ops"));
    let status = json(&ok(run_as(&ops, &["cluster", "status"])));
    assert_eq!(status["Nodes"].as_array().map(Vec::len), Some(3), "{status}");
    let denied = run_as(&app(n1), &["cluster", "status"]);
    assert!(stderr(&denied).contains("AccessDeniedException"), "{}", stderr(&denied));

    // The Raft port: a client certificate of the same CA, or another region's node certificate,
    // is turned away; this region's node certificate gets through the door.
    for (who, admitted) in [("app", false), ("intruder", false), ("node2", true)] {
        let raft = TlsNode::raft_probe(&region.pki, n1.raft_listen, who);
        assert_eq!(raft, admitted, "{who} on the raft port");
    }

    // The AWS endpoint speaks HTTPS (an unsigned request gets the AWS error, over TLS).
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &path(&region.pki, "ca/ca.crt"), "-X", "POST"])
        .args(["-H", "X-Amz-Target: TrentService.ListKeys", "-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["--data", "{}", &format!("https://localhost:{}/", n1.aws_listen.port())])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&curl.stdout);
    assert!(body.contains("MissingAuthenticationToken"), "{body} {}", String::from_utf8_lossy(&curl.stderr));

    // A fourth node joins by itself over mutual TLS (its node certificate may administer) and
    // then serves the key created before it existed.
    let port = || format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let n4 = region.setup.spawn_node(4, (port(), port(), port()), &format!("join = [\"{}\"]", n1.listen), "");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = json(&ok(run_as(&ops, &["cluster", "status"])));
        let voters = status["Nodes"].as_array().unwrap().iter().filter(|n| n["Role"] == "Voter").count();
        if voters == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "node 4 did not join: {status}\n{}", n4.log_text());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let described = json(&ok(run_as(&app(&n4), &["describe-key", "--key-id", &key_id])));
    assert_eq!(described["KeyMetadata"]["KeyId"], key_id.as_str());
}

impl TlsNode {
    /// Whether `who`'s certificate gets past the Raft port's peer check: any answer but
    /// PermissionDenied (the probe asks for a service the port does not serve).
    fn raft_probe(pki: &Path, raft: SocketAddr, who: &str) -> bool {
        let output = kmsctl(&[
            "--endpoint",
            &format!("https://{raft}"),
            "--ca-bundle",
            &path(pki, "ca/ca.crt"),
            "--client-cert",
            &path(pki, &format!("{who}.crt")),
            "--client-key",
            &path(pki, &format!("{who}.key")),
            "health",
        ]);
        let err = stderr(&output);
        assert!(!output.status.success(), "the raft port serves no health service: {err}");
        !err.contains("PermissionDenied") && !err.contains("only the nodes of this region")
    }
}

#[test]
fn plaintext_beyond_loopback_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let root_key = tmp.path().join("root.key");
    write_root_key(&root_key);
    let config = |extra: &str| {
        format!(
            "node_id = 1\ndata_dir = {:?}\nlisten = \"0.0.0.0:{}\"\nraft_listen = \"127.0.0.1:{}\"\n\
             region = \"{REGION}\"\naccount = \"111122223333\"\nroot_key_file = {root_key:?}\n{extra}",
            tmp.path().join("data"),
            free_port(),
            free_port(),
        )
    };
    let path = tmp.path().join("kmsd.toml");
    std::fs::write(&path, config("")).unwrap();
    let output = Command::new(binary("kmsd")).args(["run", "--config"]).arg(&path).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("[tls] is not configured") && err.contains("allow_insecure_plaintext"), "{err}");
}
