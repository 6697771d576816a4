//! Envelope encryption throughput on one core, next to raw AES-256-GCM over the same chunk
//! size: what the format (key schedule, header, per-chunk nonce and AAD, async I/O plumbing)
//! costs on top of the cipher. Run with `cargo bench -p kms-client --bench envelope`; figures in
//! BENCHMARKS.md ("Envelope encryption").
//!
//! The data key comes from a stand-in for KMS answering at once: KMS's round trip (one call
//! per message) is not what this measures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aes_gcm::aead::AeadInOut as _;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kms_client::envelope::{self, DecryptOptions, EncryptOptions, EncryptionContext};

/// Bytes per message.
const MESSAGE: usize = 64 << 20;

#[path = "../tests/support/one_key.rs"]
mod one_key;
use one_key::OneKey;

fn throughput(c: &mut Criterion) {
    // One thread: figures are per core.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let plaintext = vec![0x61u8; MESSAGE];
    let context: EncryptionContext = [("app", "bench")].into_iter().collect();
    let mut group = c.benchmark_group("envelope_64MiB");
    group.throughput(Throughput::Bytes(MESSAGE as u64));
    group.sample_size(10);
    for chunk_size in [16u32 << 10, 64 << 10, 1 << 20] {
        let kib = chunk_size >> 10;
        let options = EncryptOptions::new("bench").with_context(context.clone()).with_chunk_size(chunk_size);
        let message = runtime.block_on(envelope::encrypt(&OneKey, &options, &plaintext)).unwrap();
        group.bench_function(format!("raw_aes256gcm_{kib}KiB_chunks"), |b| {
            let cipher = Aes256Gcm::new(&[0x5A; 32].into());
            let mut buf = plaintext.clone();
            b.iter(|| {
                for (i, chunk) in buf.chunks_mut(chunk_size as usize).enumerate() {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                    black_box(cipher.encrypt_inout_detached(&nonce.into(), b"aad", chunk.into()).unwrap());
                }
            })
        });
        group.bench_function(format!("encrypt_stream_{kib}KiB_chunks"), |b| {
            b.iter(|| {
                runtime
                    .block_on(envelope::encrypt_stream(
                        &OneKey,
                        &options,
                        black_box(&plaintext[..]),
                        tokio::io::sink(),
                    ))
                    .unwrap()
            })
        });
        group.bench_function(format!("decrypt_stream_{kib}KiB_chunks"), |b| {
            b.iter(|| {
                runtime
                    .block_on(envelope::decrypt_stream(
                        &OneKey,
                        &DecryptOptions::new(),
                        black_box(&message[..]),
                        tokio::io::sink(),
                    ))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
