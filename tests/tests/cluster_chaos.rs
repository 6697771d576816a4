//! A randomized fault schedule against a 3-node region of real kmsd processes, with a checker.
//!
//! Client workers keep issuing CreateKey, Encrypt, RotateKeyOnDemand and CreateAlias against
//! random nodes with short deadlines and retries, and record what was acknowledged (a call that
//! timed out or got UNAVAILABLE is *unknown*: it may or may not have happened). Meanwhile each
//! round injects one random fault: SIGKILL one node (leader or follower) and restart it,
//! SIGSTOP one node and SIGCONT it later, SIGKILL two nodes (majority loss) and restart them, or
//! SIGKILL all three and restart them. At the end everything is healed, the region must
//! converge (one leader, equal applied indexes), and on every node every acknowledged key
//! exists, every acknowledged ciphertext decrypts to its plaintext, every key has at least its
//! acknowledged number of rotations, and every acknowledged alias resolves to its key.
//!
//! `KMS_CHAOS_SEED` replays a fault schedule (the seed is printed); `KMS_CHAOS_ROUNDS` sets the
//! number of rounds. The seed fixes the faults, their targets and delays and each worker's
//! choices, not the interleaving with the processes, so a replay is close, not identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::{Client, Cluster, Rng, TEST_RAFT_TUNING};
use kms_proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fits the whole test in ~90 s on a loaded 2-core machine.
const DEFAULT_ROUNDS: u64 = 25;
const WORKERS: usize = 4;
/// Client deadline of one call; the server's own request timeout is 3 s (TEST_RAFT_TUNING).
const CALL_TIMEOUT: Duration = Duration::from_millis(2500);
const ATTEMPTS: usize = 3;
const IDS: [u64; 3] = [1, 2, 3];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    CreateKey,
    Encrypt,
    Rotate,
    CreateAlias,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    Acked,
    /// A definite refusal (the call did not happen), e.g. NotFound on a lagging node.
    Failed,
    /// Timed out, UNAVAILABLE, connection lost...: may or may not have happened.
    Unknown,
}

/// Whether a failed call may still have taken effect.
fn outcome_of(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal
        | Code::Aborted => Outcome::Unknown,
        _ => Outcome::Failed,
    }
}

fn error_name(status: &tonic::Status) -> String {
    match status.metadata().get(kms_proto::EXCEPTION_METADATA_KEY) {
        Some(v) => v.to_str().unwrap_or("?").to_string(),
        None => format!("{:?}", status.code()),
    }
}

/// Everything the region acknowledged, and how every attempt ended.
#[derive(Default)]
struct Ledger {
    keys: Vec<String>,
    /// (key, ciphertext, plaintext)
    ciphertexts: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// Acknowledged RotateKeyOnDemand calls per key.
    rotations: HashMap<String, usize>,
    /// (alias name, target key)
    aliases: Vec<(String, String)>,
    /// Attempts by operation and outcome.
    attempts: BTreeMap<(Op, Outcome), usize>,
    /// Failed or unknown attempts by AWS exception / gRPC code.
    errors: BTreeMap<String, usize>,
}

impl Ledger {
    fn count(&mut self, op: Op, outcome: Outcome) {
        *self.attempts.entry((op, outcome)).or_default() += 1;
    }
}

/// Calls `call` on random nodes until one attempt is acknowledged or `ATTEMPTS` are used up.
/// Records every attempt's outcome; returns the acknowledged answer, if any.
macro_rules! attempt {
    ($ledger:expr, $rng:expr, $clients:expr, $op:expr, |$client:ident| $call:expr) => {{
        let mut answer = None;
        for _ in 0..ATTEMPTS {
            let mut $client = $rng.pick(&$clients).clone();
            match $call.await {
                Ok(response) => {
                    $ledger.lock().unwrap().count($op, Outcome::Acked);
                    answer = Some(response.into_inner());
                    break;
                }
                Err(status) => {
                    let outcome = outcome_of(&status);
                    {
                        let mut ledger = $ledger.lock().unwrap();
                        ledger.count($op, outcome);
                        *ledger.errors.entry(error_name(&status)).or_default() += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        }
        answer
    }};
}

async fn worker(
    id: usize,
    seed: u64,
    clients: Vec<Client>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = {
            let ledger = ledger.lock().unwrap();
            (!ledger.keys.is_empty()).then(|| rng.pick(&ledger.keys).clone())
        };
        let roll = rng.below(100);
        let op = match (&key, roll) {
            (None, _) | (_, 0..30) => Op::CreateKey,
            (_, 30..65) => Op::Encrypt,
            (_, 65..80) => Op::Rotate,
            _ => Op::CreateAlias,
        };
        match op {
            Op::CreateKey => {
                let request = pb::CreateKeyRequest {
                    description: Some(format!("chaos w{id} #{n}")),
                    ..Default::default()
                };
                let created = attempt!(ledger, rng, clients, op, |c| c.create_key(request.clone()));
                if let Some(created) = created {
                    ledger.lock().unwrap().keys.push(created.key_metadata.unwrap().key_id);
                }
            }
            Op::Encrypt => {
                let key = key.unwrap();
                let plaintext = format!("chaos w{id} #{n} {}", rng.next_u64()).into_bytes();
                let request = pb::EncryptRequest {
                    key_id: key.clone(),
                    plaintext: plaintext.clone(),
                    ..Default::default()
                };
                if let Some(r) = attempt!(ledger, rng, clients, op, |c| c.encrypt(request.clone())) {
                    ledger.lock().unwrap().ciphertexts.push((key, r.ciphertext_blob, plaintext));
                }
            }
            Op::Rotate => {
                let key = key.unwrap();
                let request = pb::RotateKeyOnDemandRequest { key_id: key.clone() };
                if attempt!(ledger, rng, clients, op, |c| c.rotate_key_on_demand(request.clone())).is_some() {
                    *ledger.lock().unwrap().rotations.entry(key).or_default() += 1;
                }
            }
            Op::CreateAlias => {
                let key = key.unwrap();
                let alias = format!("alias/chaos-{seed:x}-w{id}-{n}");
                let request =
                    pb::CreateAliasRequest { alias_name: alias.clone(), target_key_id: key.clone() };
                if attempt!(ledger, rng, clients, op, |c| c.create_alias(request.clone())).is_some() {
                    ledger.lock().unwrap().aliases.push((alias, key));
                }
            }
        }
    }
}

/// Checks node `id` against `ledger`, returning the first few violations.
async fn check_node(client: Client, id: u64, ledger: Arc<Ledger>, part: usize, parts: usize) -> Vec<String> {
    let mut client = client;
    let mut lost = Vec::new();
    let mine = |i: &usize| i % parts == part;
    for (_, key) in ledger.keys.iter().enumerate().filter(|(i, _)| mine(i)) {
        let request = pb::DescribeKeyRequest { key_id: key.clone(), ..Default::default() };
        if let Err(e) = client.describe_key(request).await {
            lost.push(format!("node {id}: acknowledged key {key} missing: {e}"));
        }
    }
    for (_, (key, blob, plaintext)) in ledger.ciphertexts.iter().enumerate().filter(|(i, _)| mine(i)) {
        let request = pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() };
        match client.decrypt(request).await {
            Ok(r) if r.get_ref().plaintext == *plaintext => {}
            Ok(_) => lost.push(format!("node {id}: ciphertext under {key} decrypts to the wrong plaintext")),
            Err(e) => {
                lost.push(format!("node {id}: acknowledged ciphertext under {key} does not decrypt: {e}"))
            }
        }
    }
    let mut rotated: Vec<(&String, &usize)> = ledger.rotations.iter().collect();
    rotated.sort();
    for (_, (key, acked)) in rotated.into_iter().enumerate().filter(|(i, _)| mine(i)) {
        let request =
            pb::ListKeyRotationsRequest { key_id: key.clone(), limit: Some(1000), ..Default::default() };
        match client.list_key_rotations(request).await {
            Ok(r) if r.get_ref().rotations.len() >= *acked => {}
            Ok(r) => lost.push(format!(
                "node {id}: key {key} lists {} rotations, {acked} were acknowledged",
                r.get_ref().rotations.len()
            )),
            Err(e) => lost.push(format!("node {id}: ListKeyRotations {key}: {e}")),
        }
    }
    for (_, (alias, key)) in ledger.aliases.iter().enumerate().filter(|(i, _)| mine(i)) {
        let request = pb::DescribeKeyRequest { key_id: alias.clone(), ..Default::default() };
        match client.describe_key(request).await {
            Ok(r) if r.get_ref().key_metadata.as_ref().is_some_and(|m| m.key_id == *key) => {}
            Ok(r) => lost.push(format!("node {id}: alias {alias} resolves to {:?}, not {key}", r.get_ref())),
            Err(e) => lost.push(format!("node {id}: acknowledged alias {alias} does not resolve: {e}")),
        }
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_lose_no_acknowledged_write() {
    let test_start = Instant::now();
    let seed = std::env::var("KMS_CHAOS_SEED")
        .ok()
        .map(|v| v.trim_start_matches("0x").to_string())
        .map(|v| u64::from_str_radix(&v, 16).expect("KMS_CHAOS_SEED is hex"))
        .unwrap_or_else(Rng::random_seed);
    let rounds: u64 = std::env::var("KMS_CHAOS_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("KMS_CHAOS_ROUNDS is a number"))
        .unwrap_or(DEFAULT_ROUNDS);
    println!(
        "chaos: seed {seed:016x}, {rounds} rounds (replay: KMS_CHAOS_SEED={seed:016x} KMS_CHAOS_ROUNDS={rounds})"
    );
    let mut rng = Rng::new(seed);

    // The final check reads every acknowledged key, alias and rotation back from each node as
    // fast as the node answers (thousands of management reads a second). The per-principal rate
    // limits would refuse part of that and count it as lost; limits have their own test
    // (throttling.rs), this one is about acknowledged writes surviving faults.
    let no_rate_limits = "[rate_limits]\ncryptographic_per_second = 0\nmanagement_read_per_second = 0\n\
                          management_write_per_second = 0";
    let mut cluster = Cluster::start_with_config(3, TEST_RAFT_TUNING, no_rate_limits).await;
    let mut leader = cluster.wait_converged(&IDS, Duration::from_secs(30)).await;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<Client> =
        IDS.iter().map(|id| cluster.node(*id).client_with_timeout(CALL_TIMEOUT)).collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(w, seed, clients.clone(), ledger.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut faults: Vec<String> = Vec::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 1..=rounds {
        let role = |id: u64| if id == leader { "leader" } else { "follower" };
        let fault = match rng.below(10) {
            0..=2 => {
                let id = *rng.pick(&IDS);
                let down = rng.millis(100, 2000);
                let what = format!("SIGKILL node {id} ({}), restart after {down:?}", role(id));
                cluster.node_mut(id).kill();
                tokio::time::sleep(down).await;
                cluster.restart(id).await;
                kinds.entry("kill one").and_modify(|n| *n += 1).or_insert(1);
                what
            }
            3..=5 => {
                let id = *rng.pick(&IDS);
                let frozen = rng.millis(300, 4000);
                let what = format!("SIGSTOP node {id} ({}), SIGCONT after {frozen:?}", role(id));
                cluster.node_mut(id).sigstop();
                tokio::time::sleep(frozen).await;
                cluster.node_mut(id).sigcont();
                kinds.entry("freeze one").and_modify(|n| *n += 1).or_insert(1);
                what
            }
            6..=7 => {
                let spared = *rng.pick(&IDS);
                let pair: Vec<u64> = IDS.iter().copied().filter(|id| *id != spared).collect();
                let down = rng.millis(100, 2000);
                let what = format!(
                    "SIGKILL nodes {pair:?} ({}, {}; majority lost), restart after {down:?}",
                    role(pair[0]),
                    role(pair[1])
                );
                for id in &pair {
                    cluster.node_mut(*id).kill();
                }
                tokio::time::sleep(down).await;
                cluster.restart_many(&pair).await;
                kinds.entry("kill two").and_modify(|n| *n += 1).or_insert(1);
                what
            }
            _ => {
                let down = rng.millis(100, 1000);
                let what = format!("SIGKILL all nodes, restart after {down:?}");
                for id in IDS {
                    cluster.node_mut(id).kill();
                }
                tokio::time::sleep(down).await;
                cluster.restart_many(&IDS).await;
                kinds.entry("kill all").and_modify(|n| *n += 1).or_insert(1);
                what
            }
        };
        // Let the region recover (a liveness check: it must elect a leader) and the workload run.
        let recover_start = Instant::now();
        leader = cluster.wait_leader(Duration::from_secs(30)).await;
        let recovered = recover_start.elapsed();
        tokio::time::sleep(rng.millis(300, 1500)).await;
        let line = format!("round {round}: {fault}; leader {leader} agreed {recovered:?} after healing");
        println!("chaos: {line} (t={:?})", test_start.elapsed());
        faults.push(line);
    }

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w).await.expect("worker hung").unwrap();
    }
    let healed = cluster.heal().await;
    assert!(healed.is_empty(), "every round heals its fault: {healed:?}");
    let converge_start = Instant::now();
    let leader = cluster.wait_converged(&IDS, Duration::from_secs(60)).await;
    let converged = converge_start.elapsed();
    let applied = cluster.status(leader).await.unwrap().nodes.iter().map(|n| n.last_applied_index).max();

    let ledger = Arc::new(std::mem::take(&mut *ledger.lock().unwrap()));
    let check_start = Instant::now();
    let mut checks = tokio::task::JoinSet::new();
    const PARTS: usize = 3;
    for id in IDS {
        for part in 0..PARTS {
            let client = cluster.node(id).client();
            checks.spawn(check_node(client, id, ledger.clone(), part, PARTS));
        }
    }
    let mut lost = Vec::new();
    while let Some(result) = checks.join_next().await {
        lost.extend(result.unwrap());
    }
    let check_time = check_start.elapsed();

    let mut table = String::new();
    for op in [Op::CreateKey, Op::Encrypt, Op::Rotate, Op::CreateAlias] {
        let n = |o| ledger.attempts.get(&(op, o)).copied().unwrap_or(0);
        table.push_str(&format!(
            "\n  {op:?}: {} acked, {} failed, {} unknown",
            n(Outcome::Acked),
            n(Outcome::Failed),
            n(Outcome::Unknown)
        ));
    }
    let acked_rotations: usize = ledger.rotations.values().sum();
    println!(
        "chaos: seed {seed:016x}, {rounds} rounds, faults {kinds:?}; attempts (a call is retried up to \
         {ATTEMPTS} times on random nodes):{table}\n  errors: {:?}\n  converged on leader {leader} at applied \
         index {applied:?} {converged:?} after the last fault; checked on nodes {IDS:?}: {} keys, {} ciphertexts, \
         {acked_rotations} rotations of {} keys, {} aliases in {check_time:?}; {} violations; test took {:?}",
        ledger.errors,
        ledger.keys.len(),
        ledger.ciphertexts.len(),
        ledger.rotations.len(),
        ledger.aliases.len(),
        lost.len(),
        test_start.elapsed()
    );
    assert!(
        lost.is_empty(),
        "seed {seed:016x}: {} acknowledged writes lost or wrong; first ones:\n{}\nfaults:\n{}",
        lost.len(),
        lost.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        faults.join("\n")
    );
    let ops_acked =
        ledger.attempts.iter().filter(|((_, o), _)| *o == Outcome::Acked).map(|(_, n)| n).sum::<usize>();
    assert!(
        ledger.keys.len() >= 10 && ops_acked >= 50,
        "too little traffic to mean anything: {ops_acked} acks"
    );
}
