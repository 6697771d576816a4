//! `cargo dev` and `cargo verify` (aliases in .cargo/config.toml).
//!
//! Both first make sure the system packages they need are present: RocksDB's Rust bindings are
//! generated with libclang at build time, and the tests run a PKCS#11 token in SoftHSM2. This crate has no dependencies so that it builds on
//! a machine that has nothing but the Rust toolchain.
#![forbid(unsafe_code)]

use std::path::Path;
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
        _ => {
            eprintln!(
                "usage: cargo dev [kmsd dev flags]   run a single-node KMS on loopback\n       \
                 cargo verify [test filter]   build and run every test\n       \
                 cargo xtask prereqs           install missing system packages"
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
/// runs every test of the workspace.
fn verify(args: &[String]) -> Result<(), String> {
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    run(cargo().args(["test", "--workspace"]).args(args))
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
             package manager (e.g. clang-devel and softhsm on Fedora, llvm and softhsm with brew)",
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
