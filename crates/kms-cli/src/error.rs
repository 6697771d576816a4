//! Errors as the AWS CLI reports them, with exit statuses:
//! 252 bad usage, 254 the service returned an error, 255 anything else (e.g. no connection).

use kms_proto::EXCEPTION_METADATA_KEY;

/// Exit status for bad command-line usage (as the AWS CLI).
pub const EXIT_USAGE: i32 = 252;
/// Exit status when the service returned an error (as the AWS CLI).
pub const EXIT_SERVICE: i32 = 254;
/// Exit status for other failures, e.g. the endpoint cannot be reached (as the AWS CLI).
pub const EXIT_OTHER: i32 = 255;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments found after clap's parsing.
    Usage(String),
    /// The endpoint could not be reached.
    Connect { endpoint: String, detail: String },
    /// The service answered with an error status.
    Service { operation: &'static str, status: tonic::Status },
    /// A local step failed (writing a file, drawing randomness), or a check found a problem.
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Service { status, .. } if is_transport_failure(status) => EXIT_OTHER,
            CliError::Service { .. } => EXIT_SERVICE,
            CliError::Connect { .. } | CliError::Other(_) => EXIT_OTHER,
        }
    }

    /// The message for stderr, with a hint on what to do next where one helps.
    pub fn report(&self) -> String {
        match self {
            CliError::Usage(msg) => format!("usage error: {msg}\nSee `kmsctl <command> --help`."),
            CliError::Connect { endpoint, detail } => connect_message(endpoint, detail),
            CliError::Other(msg) => msg.clone(),
            CliError::Service { operation, status } => {
                let exception = exception_name(status);
                let mut out = format!(
                    "An error occurred ({exception}) when calling the {operation} operation: {}",
                    status.message()
                );
                if let Some(hint) = hint(&exception, status.code()) {
                    out.push_str("\nHint: ");
                    out.push_str(hint);
                }
                out
            }
        }
    }
}

/// The AWS exception name from the `x-kms-exception` metadata, else the gRPC code's name.
pub fn exception_name(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(EXCEPTION_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{:?}", status.code()), str::to_string)
}

/// A status that tonic produced locally because the transport failed (no AWS exception).
fn is_transport_failure(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.metadata().get(EXCEPTION_METADATA_KEY).is_none()
}

fn connect_message(endpoint: &str, detail: &str) -> String {
    format!(
        "Could not connect to the endpoint URL: \"{endpoint}\" ({detail})\n\
         Hint: is kmsd running? Start one with `cargo dev`, or set --endpoint / KMS_ENDPOINT."
    )
}

fn hint(exception: &str, code: tonic::Code) -> Option<&'static str> {
    Some(match exception {
        "NotFoundException" => {
            "check the key ID, ARN or alias name; `kmsctl list-keys` and `kmsctl list-aliases` show what exists."
        }
        "DisabledException" => "the key is disabled; enable it with `kmsctl enable-key --key-id <id>`.",
        "KMSInvalidStateException" => {
            "the key's state does not allow this operation; see KeyState in `kmsctl describe-key --key-id <id>` \
             (a key pending deletion can be restored with `kmsctl cancel-key-deletion`)."
        }
        "InvalidCiphertextException" => {
            "the ciphertext is damaged, or the encryption context differs from the one used to encrypt."
        }
        "IncorrectKeyException" => {
            "the ciphertext was not encrypted under the given --key-id; try without --key-id."
        }
        "InvalidKeyUsageException" => {
            "the key's KeyUsage or KeySpec does not fit this operation or algorithm; check `kmsctl describe-key`."
        }
        "DryRunOperationException" => "the dry run succeeded: the request would have been accepted.",
        "InvalidMarkerException" => "pass the NextMarker of the previous page unchanged, or drop --marker.",
        _ => match code {
            tonic::Code::Unimplemented => "this kmsd does not implement the operation yet.",
            tonic::Code::Unavailable => {
                "is kmsd running? Start one with `cargo dev`, or set --endpoint / KMS_ENDPOINT."
            }
            tonic::Code::DeadlineExceeded => "the server did not answer in time; retry.",
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_error_uses_exception_metadata() -> Result<(), Box<dyn std::error::Error>> {
        let mut status = tonic::Status::not_found("Key 'arn:x' does not exist");
        status.metadata_mut().insert(EXCEPTION_METADATA_KEY, "NotFoundException".parse()?);
        let err = CliError::Service { operation: "Encrypt", status };
        assert_eq!(err.exit_code(), EXIT_SERVICE);
        let report = err.report();
        assert!(report.starts_with(
            "An error occurred (NotFoundException) when calling the Encrypt operation: Key 'arn:x' does not exist"
        ));
        assert!(report.contains("list-keys"));
        Ok(())
    }

    #[test]
    fn falls_back_to_grpc_code() {
        let err = CliError::Service { operation: "Sign", status: tonic::Status::unimplemented("no") };
        assert_eq!(
            err.report(),
            "An error occurred (Unimplemented) when calling the Sign operation: no\nHint: this kmsd does not implement the operation yet."
        );
        assert_eq!(err.exit_code(), EXIT_SERVICE);
        let down =
            CliError::Service { operation: "Sign", status: tonic::Status::unavailable("tcp connect error") };
        assert_eq!(down.exit_code(), EXIT_OTHER);
        assert!(down.report().contains("cargo dev"));
    }

    #[test]
    fn connect_and_usage() {
        let c = CliError::Connect { endpoint: "http://127.0.0.1:1".into(), detail: "refused".into() };
        assert_eq!(c.exit_code(), EXIT_OTHER);
        assert!(c.report().contains("KMS_ENDPOINT"));
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
    }
}
