//! `cargo dev` and `cargo verify` (aliases in .cargo/config.toml).
//!
//! Both first make sure the system packages the build needs are present: RocksDB's Rust bindings
//! are generated with libclang at build time. This crate has no dependencies so that it builds on
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
        "dev" => ensure_prerequisites().and_then(|()| dev(rest)),
        "verify" => ensure_prerequisites().and_then(|()| verify(rest)),
        "prereqs" => ensure_prerequisites(),
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

/// libclang, for RocksDB's bindgen. Installed with apt-get where it is missing.
fn ensure_prerequisites() -> Result<(), String> {
    if libclang_present() {
        return Ok(());
    }
    eprintln!("xtask: libclang (needed to build RocksDB's bindings) is missing; installing libclang-dev");
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err("libclang is missing and this is not a Debian/Ubuntu system: install libclang \
                    (e.g. `dnf install clang-devel` or `brew install llvm`) and set LIBCLANG_PATH"
            .into());
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
    apt(&["install", "-y", "-qq", "--no-install-recommends", "libclang-dev"])?;
    if libclang_present() { Ok(()) } else { Err("libclang-dev installed but libclang not found".into()) }
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
