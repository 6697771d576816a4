//! `kmsctl encrypt-file` / `kmsctl decrypt-file`: envelope encryption of files and pipes of any
//! size with kms-client's envelope format (docs/envelope-format.md): one GenerateDataKey per
//! file, AES-256-GCM in authenticated chunks, one Decrypt to read it back.
//!
//! An output file is written under a temporary name next to it and renamed into place only once
//! the whole input has been processed (for decrypt-file: authenticated), so a failure never
//! leaves a partial or unauthenticated file under the requested name.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kms_client::envelope::{
    self, DEFAULT_CHUNK_SIZE, DecryptOptions, EncryptOptions, EncryptionContext, EnvelopeError,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::args::merge_maps;
use crate::cli::{Context, KeyId};
use crate::connection::Connection;
use crate::error::CliError;
use crate::json::Json;
use crate::run::Client;

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 8 << 20;

#[derive(Debug, Args)]
pub struct EncryptFileArgs {
    #[command(flatten)]
    pub key: KeyId,
    #[command(flatten)]
    pub context: Context,
    /// File to encrypt, or - for standard input.
    #[arg(long = "in", value_name = "PATH|-")]
    pub in_path: PathBuf,
    /// Where to write the encrypted file, or - for standard output (not a terminal).
    #[arg(long = "out", value_name = "PATH|-")]
    pub out_path: PathBuf,
    /// Plaintext bytes per authenticated chunk (1 to 16777216); decrypting needs about this
    /// much memory.
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u32,
}

#[derive(Debug, Args)]
pub struct DecryptFileArgs {
    /// Require the file to be encrypted under this key (key ID, ARN, alias name or alias ARN);
    /// KMS refuses any other with IncorrectKeyException.
    #[arg(long)]
    pub key_id: Option<String>,
    /// Require exactly this encryption context (k=v,k2=v2 or JSON; may be repeated); without
    /// it any context is accepted and printed.
    #[command(flatten)]
    pub context: Context,
    /// File to decrypt, or - for standard input.
    #[arg(long = "in", value_name = "PATH|-")]
    pub in_path: PathBuf,
    /// Where to write the plaintext, or - for standard output.
    #[arg(long = "out", value_name = "PATH|-")]
    pub out_path: PathBuf,
}

/// `kmsctl encrypt-file`.
pub async fn encrypt_file(connection: &Connection, args: EncryptFileArgs) -> Result<Json, CliError> {
    envelope::validate_chunk_size(args.chunk_size)
        .map_err(|e| CliError::Usage(format!("--chunk-size: {e}")))?;
    let context = EncryptionContext::from(merge_maps(&args.context.encryption_context));
    let options =
        EncryptOptions::new(args.key.key_id).with_context(context.clone()).with_chunk_size(args.chunk_size);
    if is_stdio(&args.out_path) && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "encrypt-file would write binary ciphertext to the terminal: redirect standard output or pass --out PATH"
                .into(),
        ));
    }
    let files = Files { input: &args.in_path, output: &args.out_path, private_output: false };
    let summary = files
        .stream(connection, "encrypting", encrypt_error, async |client, reader, writer| {
            envelope::encrypt_stream(client, &options, reader, writer).await
        })
        .await?;
    if is_stdio(&args.out_path) {
        return Ok(Json::obj());
    }
    Ok(Json::Obj(vec![
        ("KeyId".into(), Json::Str(summary.key_id)),
        ("EncryptionContext".into(), context_json(&context)),
        ("ChunkSize".into(), Json::Int(i64::from(args.chunk_size))),
        ("PlaintextBytes".into(), int(summary.plaintext_bytes)),
        ("CiphertextBytes".into(), int(summary.message_bytes)),
    ]))
}

/// `kmsctl decrypt-file`.
pub async fn decrypt_file(connection: &Connection, args: DecryptFileArgs) -> Result<Json, CliError> {
    let mut options = DecryptOptions::new();
    if let Some(key_id) = &args.key_id {
        options = options.with_key_id(key_id.clone());
    }
    if !args.context.encryption_context.is_empty() {
        options = options.with_context(EncryptionContext::from(merge_maps(&args.context.encryption_context)));
    }
    // The plaintext file is readable by its owner only, like the key material it came from.
    let files = Files { input: &args.in_path, output: &args.out_path, private_output: true };
    let summary = files
        .stream(connection, "decrypting", decrypt_error, async |client, reader, writer| {
            envelope::decrypt_stream(client, &options, reader, writer).await
        })
        .await?;
    if is_stdio(&args.out_path) {
        return Ok(Json::obj());
    }
    Ok(Json::Obj(vec![
        ("KeyId".into(), Json::Str(summary.key_id)),
        ("EncryptionContext".into(), context_json(&summary.context)),
        ("ChunkSize".into(), Json::Int(i64::from(summary.chunk_size))),
        ("PlaintextBytes".into(), int(summary.plaintext_bytes)),
    ]))
}

/// The --in and --out of one command.
struct Files<'a> {
    input: &'a Path,
    output: &'a Path,
    /// Create the output file readable by its owner only.
    private_output: bool,
}

impl Files<'_> {
    /// Runs `process` from the input to the output with a progress bar: the output is committed
    /// (renamed into place) only when it succeeds, else discarded, and its error explained by
    /// `explain`.
    async fn stream<S>(
        &self,
        connection: &Connection,
        verb: &str,
        explain: fn(EnvelopeError, &Path, &Path) -> CliError,
        process: impl AsyncFnOnce(
            &Client,
            Counting<Reader>,
            &mut (dyn AsyncWrite + Unpin + Send),
        ) -> Result<S, EnvelopeError>,
    ) -> Result<S, CliError> {
        let (input, length) = open_input(self.input).await?;
        let client = crate::run::connect(connection).await?;
        let mut output = Output::create(self.output, self.private_output).await?;
        let progress = progress_bar(length, verb);
        let reader = Counting { inner: input, bar: progress.clone() };
        let result = process(&client, reader, output.writer()).await;
        finish(progress);
        match result {
            Ok(summary) => {
                output.commit().await?;
                Ok(summary)
            }
            Err(e) => {
                output.discard().await;
                Err(explain(e, self.input, self.output))
            }
        }
    }
}

fn context_json(context: &EncryptionContext) -> Json {
    Json::Obj(context.iter().map(|(k, v)| (k.to_string(), Json::Str(v.to_string()))).collect())
}

fn int(n: u64) -> Json {
    Json::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn shown(path: &Path) -> String {
    if is_stdio(path) { "standard input/output".into() } else { path.display().to_string() }
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// The input and, for a regular file, its length (for the progress bar).
async fn open_input(path: &Path) -> Result<(Reader, Option<u64>), CliError> {
    if is_stdio(path) {
        return Ok((Box::pin(tokio::io::stdin()), None));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CliError::Other(format!("cannot open --in {}: {e}", path.display())))?;
    let length = file.metadata().await.ok().filter(std::fs::Metadata::is_file).map(|m| m.len());
    Ok((Box::pin(file), length))
}

/// Standard output, or a temporary file beside the target that `commit` renames into place.
enum Output {
    Stdout(tokio::io::Stdout),
    File { file: tokio::fs::File, temporary: PathBuf, target: PathBuf },
}

impl Output {
    async fn create(path: &Path, private: bool) -> Result<Self, CliError> {
        if is_stdio(path) {
            return Ok(Self::Stdout(tokio::io::stdout()));
        }
        let temporary = temporary_path(path)?;
        let mut open = tokio::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            open.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let file = open.open(&temporary).await.map_err(|e| {
            CliError::Other(format!(
                "cannot create {} (for --out {}): {e}",
                temporary.display(),
                path.display()
            ))
        })?;
        Ok(Self::File { file, temporary, target: path.to_path_buf() })
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Self::Stdout(stdout) => stdout,
            Self::File { file, .. } => file,
        }
    }

    /// Makes the output durable and, for a file, gives it its requested name.
    async fn commit(self) -> Result<(), CliError> {
        match self {
            Self::Stdout(mut stdout) => stdout
                .flush()
                .await
                .map_err(|e| CliError::Other(format!("cannot write to standard output: {e}"))),
            Self::File { mut file, temporary, target } => {
                let failed = |doing: &str, e: std::io::Error| {
                    let _ = std::fs::remove_file(&temporary);
                    CliError::Other(format!("cannot {doing} {}: {e}", target.display()))
                };
                file.flush().await.map_err(|e| failed("write", e))?;
                file.sync_all().await.map_err(|e| failed("write", e))?;
                drop(file);
                tokio::fs::rename(&temporary, &target)
                    .await
                    .map_err(|e| failed("rename the finished output to", e))
            }
        }
    }

    /// Removes a partial output file (standard output cannot be taken back).
    async fn discard(self) {
        if let Self::File { file, temporary, .. } = self {
            drop(file);
            let _ = tokio::fs::remove_file(&temporary).await;
        }
    }
}

/// `dir/.name.kmsctl-<pid>.partial`: same directory, so the final rename stays on one file system.
fn temporary_path(target: &Path) -> Result<PathBuf, CliError> {
    let name = target
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("--out {} does not name a file", target.display())))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".kmsctl-{}.partial", std::process::id()));
    Ok(target.with_file_name(temporary))
}

/// A progress bar on stderr for large or unsized inputs, only when stderr is a terminal.
fn progress_bar(length: Option<u64>, verb: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || length.is_some_and(|n| n < PROGRESS_THRESHOLD) {
        return None;
    }
    let (bar, template) = match length {
        Some(n) => (
            ProgressBar::new(n),
            "{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => (ProgressBar::no_length(), "{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}"),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    // The templates are constants; a bad one only loses the styling, never the work.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(verb.to_string());
    Some(bar)
}

fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Counts the bytes read into the progress bar.
struct Counting<R> {
    inner: R,
    bar: Option<ProgressBar>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(bar) = &self.bar {
            bar.inc((buf.filled().len() - before) as u64);
        }
        polled
    }
}

fn encrypt_error(e: EnvelopeError, input: &Path, output: &Path) -> CliError {
    match e {
        EnvelopeError::InvalidRequest(problem) => CliError::Usage(problem),
        EnvelopeError::Io { doing, source } => CliError::Other(format!(
            "encrypt-file: {doing} ({} -> {}): {source}",
            shown(input),
            shown(output)
        )),
        other => common_error(other, "encrypt-file"),
    }
}

fn decrypt_error(e: EnvelopeError, input: &Path, output: &Path) -> CliError {
    let after_output = if is_stdio(output) {
        "The plaintext already written to standard output is incomplete or unauthenticated: discard it."
            .to_string()
    } else {
        format!("Nothing was written to {}.", output.display())
    };
    match e {
        EnvelopeError::Io { doing, source } => CliError::Other(format!(
            "decrypt-file: {doing} ({} -> {}): {source}\n{after_output}",
            shown(input),
            shown(output)
        )),
        EnvelopeError::ContextMismatch { .. } => CliError::Other(format!(
            "decrypt-file: {} refused: {e}\n{after_output}\nHint: pass the --encryption-context the file was \
             encrypted with, or leave it out to accept the file's own context (printed on success).",
            shown(input)
        )),
        e if e.is_integrity_failure() => CliError::Other(format!(
            "decrypt-file: {} refused: {e}\n{after_output}\nHint: the file was damaged or tampered with after \
             encryption, or is not a file written by `kmsctl encrypt-file`; do not trust any part of it.",
            shown(input)
        )),
        other => common_error(other, "decrypt-file"),
    }
}

/// KMS failures keep the service's exception name, exit status and hint.
fn common_error(e: EnvelopeError, command: &str) -> CliError {
    match e {
        EnvelopeError::Kms { operation, source } => match source.downcast::<tonic::Status>() {
            Ok(status) => CliError::Service { operation, status: *status },
            Err(source) => CliError::Other(format!("{command}: KMS {operation} failed: {source}")),
        },
        other => CliError::Other(format!("{command}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn flags_parse_with_stdio_and_the_shared_context_flag() {
        let cli = Cli::try_parse_from([
            "kmsctl",
            "--output",
            "text",
            "encrypt-file",
            "--key-id",
            "alias/app",
            "--encryption-context",
            "a=1,b=2",
            "--in",
            "-",
            "--out",
            "x.kmse",
            "--chunk-size",
            "4096",
        ])
        .unwrap();
        let Command::EncryptFile(args) = cli.command else { panic!("expected encrypt-file") };
        assert!(is_stdio(&args.in_path) && !is_stdio(&args.out_path));
        assert_eq!(args.chunk_size, 4096);
        assert_eq!(merge_maps(&args.context.encryption_context).len(), 2);

        let cli = Cli::try_parse_from(["kmsctl", "decrypt-file", "--in", "a", "--out", "-"]).unwrap();
        let Command::DecryptFile(args) = cli.command else { panic!("expected decrypt-file") };
        assert!(args.key_id.is_none() && args.context.encryption_context.is_empty());
        assert!(
            Cli::try_parse_from(["kmsctl", "encrypt-file", "--in", "a", "--out", "b"]).is_err(),
            "no key"
        );
    }

    #[test]
    fn the_temporary_output_sits_beside_the_target() {
        let temporary = temporary_path(Path::new("dir/out.bin")).unwrap();
        assert_eq!(temporary.parent(), Some(Path::new("dir")));
        let name = temporary.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".out.bin.kmsctl-") && name.ends_with(".partial"), "{name}");
        assert!(matches!(temporary_path(Path::new("/")), Err(CliError::Usage(_))));
    }

    #[test]
    fn kms_refusals_keep_the_service_exit_status() {
        let status = tonic::Status::invalid_argument("bad blob");
        let e = EnvelopeError::Kms { operation: "Decrypt", source: Box::new(status) };
        let cli = decrypt_error(e, Path::new("in"), Path::new("out"));
        assert!(matches!(cli, CliError::Service { operation: "Decrypt", .. }));
        let e = decrypt_error(EnvelopeError::Truncated { chunks: 3 }, Path::new("-"), Path::new("-"));
        assert_eq!(e.exit_code(), crate::error::EXIT_OTHER);
        assert!(e.report().contains("discard it"), "{}", e.report());
    }
}
