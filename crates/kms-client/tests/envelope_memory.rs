//! Peak memory of envelope encryption: 1 GiB is encrypted and decrypted as a stream (generated
//! on the fly, piped from the encryptor to the decryptor, checked byte by byte as it comes
//! out), and the process's peak resident set (VmHWM) must grow by less than 64 MiB.
//!
//! A test binary of its own, with one test, so no other test's allocations count. The data
//! key comes from a stand-in for KMS (this test is about the format's memory, not KMS).
//! A debug build takes about three minutes for it, so there it is ignored; run it with
//! `cargo test --release -p kms-client --test envelope_memory -- --nocapture` (the figures are
//! in BENCHMARKS.md), or in a debug build with `-- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use kms_client::envelope::{self, DecryptOptions, EncryptOptions, EncryptionContext};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const TOTAL: u64 = 1 << 30;
const MAX_GROWTH_KIB: u64 = 64 * 1024;

#[path = "support/one_key.rs"]
mod one_key;
use one_key::OneKey;

/// Length of the repeating pattern: not a multiple of the chunk size, so every chunk holds
/// different bytes and a misplaced one is noticed.
const PERIOD: usize = (1 << 20) + 13;

/// The test stream is `table[i % PERIOD]`; copying and comparing slices of it keeps the test's
/// own cost small next to the cryptography even in a debug build.
fn table() -> Vec<u8> {
    let mut state: u64 = 0x243F_6A88_85A3_08D3;
    (0..PERIOD + (1 << 20))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Yields `remaining` bytes of the stream, without holding them.
struct Generator<'a> {
    table: &'a [u8],
    offset: u64,
    remaining: u64,
}

impl AsyncRead for Generator<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.remaining).min(1 << 20) as usize;
        let start = (self.offset % PERIOD as u64) as usize;
        buf.put_slice(&self.table[start..start + n]);
        self.offset += n as u64;
        self.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Checks what it is given against the stream, keeping only a count.
struct Checker<'a> {
    table: &'a [u8],
    offset: u64,
}

impl AsyncWrite for Checker<'_> {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let n = data.len().min(1 << 20);
        let start = (self.offset % PERIOD as u64) as usize;
        assert!(self.table[start..start + n] == data[..n], "plaintext differs near offset {}", self.offset);
        self.offset += n as u64;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The process's peak resident set size so far, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(debug_assertions, ignore = "about 3 minutes in a debug build; run it with --release")]
async fn a_gibibyte_round_trip_stays_within_bounded_memory() {
    // 2 MiB, allocated (and touched) before the first reading so it is not counted.
    let table: &'static [u8] = Box::leak(table().into_boxed_slice());
    let before = vm_hwm_kib();
    let started = std::time::Instant::now();
    let (to_decryptor, from_encryptor) = tokio::io::duplex(1 << 20);
    let context: EncryptionContext = [("test", "memory")].into_iter().collect();
    let options = EncryptOptions::new("memory").with_context(context.clone());
    let encrypt = tokio::spawn(async move {
        let mut writer = to_decryptor;
        let generator = Generator { table, offset: 0, remaining: TOTAL };
        envelope::encrypt_stream(&OneKey, &options, generator, &mut writer).await
    });
    let mut checker = Checker { table, offset: 0 };
    let decrypted = envelope::decrypt_stream(
        &OneKey,
        &DecryptOptions::new().with_context(context),
        from_encryptor,
        &mut checker,
    )
    .await
    .unwrap();
    let encrypted = encrypt.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    let after = vm_hwm_kib();

    assert_eq!(encrypted.plaintext_bytes, TOTAL);
    assert_eq!(decrypted.plaintext_bytes, TOTAL);
    assert_eq!(checker.offset, TOTAL);
    assert_eq!(decrypted.chunks, TOTAL / 65536 + 1);
    let growth = after.saturating_sub(before);
    println!(
        "1 GiB encrypted and decrypted in {:.1} s; VmHWM {before} KiB before, {after} KiB after: +{growth} KiB",
        elapsed.as_secs_f64(),
    );
    assert!(growth < MAX_GROWTH_KIB, "peak RSS grew by {growth} KiB");
}
