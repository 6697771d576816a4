//! The client's error: which operation failed, how, on which node, after how many attempts, and
//! why the client stopped trying. It never holds a request or a response, so no plaintext can
//! reach a log through it.

use std::fmt;
use std::time::Duration;
use tonic::Code;

/// A failed call.
#[derive(Debug)]
pub struct Error {
    operation: &'static str,
    cause: Cause,
    attempts: u32,
    endpoint: Option<String>,
    stop: Stop,
}

/// What went wrong in the last attempt.
#[derive(Debug)]
pub enum Cause {
    /// The KMS, or the transport on its behalf, answered with this status.
    Status(tonic::Status),
    /// No answer within the attempt's deadline.
    TimedOut(Duration),
    /// Refused by the client before anything was sent: configuration or arguments.
    Config(String),
    /// The server's answer lacks something the call needs.
    Protocol(String),
}

/// Why the client gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The answer is final: asking again would give the same one.
    Final,
    /// The outcome is unknown and the operation is not idempotent, so it was not repeated.
    NotIdempotent,
    /// Every attempt the retry policy allows was made.
    Attempts,
    /// The call's deadline passed.
    Deadline,
    /// Nothing was sent.
    NotSent,
}

impl Error {
    pub(crate) fn new(
        operation: &'static str,
        cause: Cause,
        attempts: u32,
        endpoint: Option<String>,
        stop: Stop,
    ) -> Self {
        Self { operation, cause, attempts, endpoint, stop }
    }

    /// A configuration or argument error found before anything was sent.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new("client setup", Cause::Config(message.into()), 0, None, Stop::NotSent)
    }

    pub(crate) fn protocol(operation: &'static str, message: impl Into<String>) -> Self {
        Self::new(operation, Cause::Protocol(message.into()), 1, None, Stop::Final)
    }

    pub(crate) fn for_operation(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }

    /// The AWS operation name (`Encrypt`), or `client setup`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The AWS exception name the server answered with (`NotFoundException`), if it named one.
    pub fn exception(&self) -> Option<&str> {
        match &self.cause {
            Cause::Status(status) => exception_of(status),
            _ => None,
        }
    }

    /// The gRPC code: the status's, DEADLINE_EXCEEDED for a timeout, INVALID_ARGUMENT for a
    /// configuration error, INTERNAL for an unusable answer.
    pub fn code(&self) -> Code {
        match &self.cause {
            Cause::Status(status) => status.code(),
            Cause::TimedOut(_) => Code::DeadlineExceeded,
            Cause::Config(_) => Code::InvalidArgument,
            Cause::Protocol(_) => Code::Internal,
        }
    }

    pub fn status(&self) -> Option<&tonic::Status> {
        match &self.cause {
            Cause::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Attempts made (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The node of the last attempt.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    pub fn stop(&self) -> Stop {
        self.stop
    }
}

/// The `x-kms-exception` metadata of a status.
pub(crate) fn exception_of(status: &tonic::Status) -> Option<&str> {
    status.metadata().get(kms_proto::EXCEPTION_METADATA_KEY).and_then(|v| v.to_str().ok())
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Status(status) => {
                let name =
                    exception_of(status).map_or_else(|| format!("gRPC {:?}", status.code()), str::to_string);
                write!(f, "{name}: {}", status.message())
            }
            Cause::TimedOut(after) => write!(f, "no answer within {after:?}"),
            Cause::Config(message) => f.write_str(message),
            Cause::Protocol(message) => write!(f, "unusable answer: {message}"),
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Final => "not retried: the answer is final",
            Stop::NotIdempotent => "not retried: the outcome is unknown and the operation is not idempotent",
            Stop::Attempts => "gave up: no attempts left",
            Stop::Deadline => "gave up: the call's deadline passed",
            Stop::NotSent => "nothing sent",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Cause::Config(message) = &self.cause {
            return write!(f, "{}: {message}", self.operation);
        }
        write!(f, "{} failed", self.operation)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " on {endpoint}")?;
        }
        write!(f, ": {} ({} attempt(s); {})", self.cause, self.attempts, self.stop)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Status(status) => Some(status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_failed_where_and_why_it_stopped() {
        let mut status = tonic::Status::not_found("Key 'k' does not exist");
        status.metadata_mut().insert(kms_proto::EXCEPTION_METADATA_KEY, "NotFoundException".parse().unwrap());
        let err = Error::new("Encrypt", Cause::Status(status), 1, Some("http://n1".into()), Stop::Final);
        assert_eq!(
            err.to_string(),
            "Encrypt failed on http://n1: NotFoundException: Key 'k' does not exist \
             (1 attempt(s); not retried: the answer is final)"
        );
        assert_eq!(err.exception(), Some("NotFoundException"));
        let timeout = Error::new("Decrypt", Cause::TimedOut(Duration::from_secs(2)), 3, None, Stop::Deadline);
        assert_eq!(timeout.code(), Code::DeadlineExceeded);
        assert!(timeout.to_string().contains("no answer within 2s"), "{timeout}");
        assert_eq!(Error::config("no regions").to_string(), "client setup: no regions");
    }
}
