//! The workloads, what a target must offer to be loaded ([`Driver`]), and the load loop: N
//! clients, each on its own connection, each calling one prepared operation back to back until
//! a request count or a duration is reached, whichever comes first.

use crate::stats::{Row, Samples};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use std::future::Future;
use std::io::IsTerminal as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The kinds of key the workloads use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Symmetric,
    Ed25519,
    P256,
    Rsa2048,
    Hmac256,
}

/// One benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    Encrypt32,
    Encrypt4k,
    Decrypt,
    GenerateDataKey,
    SignEd25519,
    SignP256,
    SignRsa2048,
    VerifyP256,
    GenerateMac,
    CreateKey,
}

impl Workload {
    pub const ALL: [Workload; 10] = [
        Workload::Encrypt32,
        Workload::Encrypt4k,
        Workload::Decrypt,
        Workload::GenerateDataKey,
        Workload::SignEd25519,
        Workload::SignP256,
        Workload::SignRsa2048,
        Workload::VerifyP256,
        Workload::GenerateMac,
        Workload::CreateKey,
    ];

    /// The name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Encrypt32 => "encrypt-32",
            Workload::Encrypt4k => "encrypt-4k",
            Workload::Decrypt => "decrypt",
            Workload::GenerateDataKey => "generate-data-key",
            Workload::SignEd25519 => "sign-ed25519",
            Workload::SignP256 => "sign-p256",
            Workload::SignRsa2048 => "sign-rsa2048",
            Workload::VerifyP256 => "verify-p256",
            Workload::GenerateMac => "generate-mac",
            Workload::CreateKey => "create-key",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::Encrypt32 => "Encrypt 32 B",
            Workload::Encrypt4k => "Encrypt 4 KiB",
            Workload::Decrypt => "Decrypt 32 B",
            Workload::GenerateDataKey => "GenerateDataKey",
            Workload::SignEd25519 => "Sign Ed25519",
            Workload::SignP256 => "Sign ECDSA P-256",
            Workload::SignRsa2048 => "Sign RSA-2048 PSS",
            Workload::VerifyP256 => "Verify ECDSA P-256",
            Workload::GenerateMac => "GenerateMac",
            Workload::CreateKey => "CreateKey",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|w| w.name() == name) {
            Some(w) => Ok(w),
            None => {
                let names: Vec<&str> = Self::ALL.iter().map(|w| w.name()).collect();
                bail!("unknown workload {name:?}; one of {}", names.join(", "))
            }
        }
    }

    /// The kind of key the workload runs under (CreateKey creates symmetric keys).
    pub fn key_kind(self) -> KeyKind {
        match self {
            Workload::SignEd25519 => KeyKind::Ed25519,
            Workload::SignP256 | Workload::VerifyP256 => KeyKind::P256,
            Workload::SignRsa2048 => KeyKind::Rsa2048,
            Workload::GenerateMac => KeyKind::Hmac256,
            _ => KeyKind::Symmetric,
        }
    }
}

/// One call, as every driver understands it. Blobs are what the target returned earlier
/// (binary ciphertext for kms, the `vault:v1:...` text for OpenBao).
#[derive(Clone, Debug)]
pub enum Op {
    CreateKey(KeyKind),
    Encrypt { key: String, plaintext: Bytes },
    Decrypt { key: String, ciphertext: Bytes },
    GenerateDataKey { key: String },
    Sign { key: String, kind: KeyKind, message: Bytes },
    Verify { key: String, kind: KeyKind, message: Bytes, signature: Bytes },
    GenerateMac { key: String, message: Bytes },
}

/// What a call returned that a later call may need: a key id, a ciphertext or a signature.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub key: Option<String>,
    pub blob: Option<Bytes>,
}

/// A failure, named for the tables (AWS exception, gRPC code, HTTP status, ...).
pub type CallError = String;

/// One client's connection to a target.
pub enum Conn {
    Grpc(crate::grpcc::Client),
    Http(crate::httpc::Conn),
}

/// A target that can be loaded.
pub trait Driver: Send + Sync {
    /// Opens one client's connection.
    fn connect(&self) -> BoxFuture<'_, Result<Conn>>;
    /// Makes one call on `conn`.
    fn call<'a>(&'a self, conn: &'a mut Conn, op: &'a Op) -> BoxFuture<'a, Result<Output, CallError>>;
    /// Whether the target can run `workload` at all (the baseline only encrypts).
    fn supports(&self, _workload: Workload) -> bool {
        true
    }
}

/// The operation `workload` repeats, with the key and fixtures it needs created on `driver`
/// (a key; a ciphertext to decrypt; a signature to verify).
pub async fn prepare(driver: &dyn Driver, workload: Workload) -> Result<Op> {
    let mut conn = driver.connect().await?;
    let conn = &mut conn;
    if workload == Workload::CreateKey {
        return Ok(Op::CreateKey(KeyKind::Symmetric));
    }
    let kind = workload.key_kind();
    let key = once(driver, conn, &Op::CreateKey(kind))
        .await
        .with_context(|| format!("creating a {kind:?} key for {}", workload.name()))?
        .key
        .context("CreateKey answered without a key id")?;
    let message = Bytes::from_static(b"kms-bench: a 64-byte message to sign, MAC or verify, fixed..!!");
    let op = match workload {
        Workload::Encrypt32 => Op::Encrypt { key, plaintext: pattern(32) },
        Workload::Encrypt4k => Op::Encrypt { key, plaintext: pattern(4096) },
        Workload::Decrypt => {
            let encrypt = Op::Encrypt { key: key.clone(), plaintext: pattern(32) };
            let ciphertext = once(driver, conn, &encrypt)
                .await
                .context("encrypting the ciphertext to decrypt")?
                .blob
                .context("no ciphertext")?;
            Op::Decrypt { key, ciphertext }
        }
        Workload::GenerateDataKey => Op::GenerateDataKey { key },
        Workload::SignEd25519 | Workload::SignP256 | Workload::SignRsa2048 => Op::Sign { key, kind, message },
        Workload::VerifyP256 => {
            let sign = Op::Sign { key: key.clone(), kind, message: message.clone() };
            let signature = once(driver, conn, &sign)
                .await
                .context("signing the message to verify")?
                .blob
                .context("no signature")?;
            Op::Verify { key, kind, message, signature }
        }
        Workload::GenerateMac => Op::GenerateMac { key, message },
        Workload::CreateKey => Op::CreateKey(KeyKind::Symmetric),
    };
    // One call before the clock starts: a setup error is reported as such, not as 100% errors.
    once(driver, conn, &op).await.with_context(|| format!("a first {} call", workload.name()))?;
    Ok(op)
}

async fn once(driver: &dyn Driver, conn: &mut Conn, op: &Op) -> Result<Output> {
    driver.call(conn, op).await.map_err(|e| anyhow::anyhow!("{e}"))
}

fn pattern(size: usize) -> Bytes {
    (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// How much load: clients, and a bound in count and in time.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    pub count: u64,
    pub duration: Duration,
}

/// Runs `load.clients` clients calling `op` on `driver` until `load.count` calls were started or
/// `load.duration` passed. A progress bar shows on stderr when it is a terminal.
pub async fn run(driver: Arc<dyn Driver>, op: Op, load: Load, label: &str) -> Result<Row> {
    let clients = load.clients.max(1);
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        conns.push(driver.connect().await.with_context(|| format!("opening connection {i} for {label}"))?);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let op = Arc::new(op);
    let progress = Progress::start(label, load, done.clone());
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut workers = Vec::with_capacity(clients);
    for mut conn in conns {
        let (driver, op, issued, done) = (driver.clone(), op.clone(), issued.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < load.count {
                let t = Instant::now();
                match driver.call(&mut conn, &op).await {
                    Ok(_) => samples.record_ok(t.elapsed()),
                    Err(name) => samples.record_error(name),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for worker in workers {
        all.merge(worker.await.context("a load client panicked")?);
    }
    let wall = started.elapsed();
    progress.finish();
    Ok(all.row(label, clients, wall))
}

/// A progress bar over the run's duration, showing calls done and the rate so far.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(label: &str, load: Load, done: Arc<AtomicU64>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None, ticker: None };
        }
        let millis = u64::try_from(load.duration.as_millis()).unwrap_or(u64::MAX);
        let bar = indicatif::ProgressBar::new(millis);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        // A constant template; a bad one only loses the styling.
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:32} [{bar:30}] {elapsed} {prefix}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        let ticking = bar.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            // Ends when the run aborts it in `finish`.
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let elapsed = started.elapsed();
                let n = done.load(Ordering::Relaxed);
                ticking.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).min(millis));
                ticking.set_prefix(format!("{n} calls, {:.0}/s", n as f64 / elapsed.as_secs_f64().max(1e-3)));
            }
        });
        Self { bar: Some(bar), ticker: Some(ticker) }
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()).unwrap(), w);
        }
        assert!(Workload::parse("encrypt").is_err());
    }

    /// A driver that answers at once, to check the loop's bounds. Its connections go to a
    /// listener that never answers (the kernel accepts them into its backlog): no call uses them.
    struct Instant0(std::net::TcpListener);
    impl Driver for Instant0 {
        fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
            Box::pin(async {
                let host = self.0.local_addr()?.to_string();
                Ok(Conn::Http(crate::httpc::Conn::connect(&host).await?))
            })
        }
        fn call<'a>(&'a self, _: &'a mut Conn, _: &'a Op) -> BoxFuture<'a, Result<Output, CallError>> {
            Box::pin(async { Ok(Output::default()) })
        }
    }

    #[tokio::test]
    async fn the_loop_stops_at_the_count() {
        let load = Load { clients: 4, count: 1000, duration: Duration::from_secs(30) };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let row =
            run(Arc::new(Instant0(listener)), Op::CreateKey(KeyKind::Symmetric), load, "x").await.unwrap();
        assert_eq!((row.ok, row.errors, row.clients), (1000, 0, 4));
    }
}
