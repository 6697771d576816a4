//! `kmsctl audit verify <file>`: checks a kmsd audit log's hash chain, offline (no endpoint).

use clap::Subcommand;
use kms_audit::ChainHead;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::json::Json;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an audit log from its first line: prints the records checked and the chain head,
    /// or fails naming the first line where the chain breaks (an edited, deleted, inserted or
    /// reordered record, a cut head or middle, a partly written last line).
    Verify {
        /// The audit log (kmsd's `[audit] path`; `<data_dir>/audit.log` by default).
        file: PathBuf,
        /// A chain head kmsd logged (`audit chain head ... anchor=SEQ:HASH`), kept outside the
        /// node; may be repeated. The log must hold that record, which also catches a cut-off
        /// tail and a rewritten chain.
        #[arg(long, value_parser = parse_anchor)]
        anchor: Vec<ChainHead>,
    },
}

fn parse_anchor(text: &str) -> Result<ChainHead, String> {
    text.parse()
}

pub fn run(command: AuditCommand) -> Result<Json, CliError> {
    match command {
        AuditCommand::Verify { file, anchor } => verify(&file, &anchor),
    }
}

fn verify(path: &Path, anchors: &[ChainHead]) -> Result<Json, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::Other(format!("cannot read the audit log {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let report = kms_audit::verify_anchored(BufReader::new(file), anchors).map_err(unreadable)?;
    match report.broken {
        Some(broken) => Err(CliError::Other(format!(
            "{broken}\n{} record(s) checked intact before it in {}",
            report.records,
            path.display()
        ))),
        None => {
            let records = i64::try_from(report.records).unwrap_or(i64::MAX);
            let mut members =
                vec![("Records".to_string(), Json::Int(records)), ("Intact".to_string(), Json::Bool(true))];
            if let Some(head) = report.head {
                members.push(("Head".to_string(), Json::Str(head.to_string())));
            }
            Ok(Json::Obj(members))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn an_intact_log_reports_its_head_and_a_broken_one_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let config = kms_audit::AuditConfig {
            path: path.clone(),
            queue_capacity: 8,
            on_full: kms_audit::OnFull::FailClosed,
        };
        let log = kms_audit::AuditLog::open(&config).unwrap();
        for _ in 0..3 {
            log.record(kms_audit::AuditEvent::default());
        }
        let head = log.flush().await.unwrap();
        let json = verify(&path, &[]).unwrap();
        assert_eq!(json.get("Records"), Some(&Json::Int(3)));
        assert_eq!(json.get("Head"), Some(&Json::Str(head.to_string())));
        assert!(verify(&path, &[head]).is_ok());

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let err = verify(&path, &[]).unwrap_err().report();
        assert!(err.starts_with("chain breaks at line 2: seq is 2, expected 1"), "{err}");
        assert!(err.contains("1 record(s) checked"), "{err}");
        assert!(verify(&dir.path().join("missing.log"), &[]).unwrap_err().report().contains("cannot read"));
    }
}
