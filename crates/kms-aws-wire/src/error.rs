//! Errors as AWS JSON 1.1 answers them: `{"__type": "<Code>", "message": "..."}` with an HTTP
//! status. Client mistakes are 4xx (mostly 400, as AWS KMS really answers); the three server
//! faults are 500 (KMSInternal, KeyUnavailable) and 503 (DependencyTimeout), the codes SDKs retry.

use kms_core::{ErrorKind, KmsError};
use serde_json::json;

/// One failed request, ready to be written to the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// Malformed JSON, or a member of the wrong JSON type.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::ValidationException.name(), message)
    }

    /// An `X-Amz-Target` that names no KMS operation.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(400, "UnknownOperationException", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "ValidationException", format!("The request body is larger than {limit} bytes"))
    }

    pub fn missing_authentication() -> Self {
        Self::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: the request must be signed with AWS Signature Version 4",
        )
    }

    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new(400, "IncompleteSignatureException", message)
    }

    pub fn unrecognized_client() -> Self {
        Self::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidSignatureException", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, ErrorKind::KMSInternalException.name(), message)
    }

    pub fn is_server_fault(&self) -> bool {
        self.status >= 500
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        json!({ "__type": self.code, "message": self.message }).to_string().into_bytes()
    }
}

impl From<KmsError> for AwsError {
    fn from(err: KmsError) -> Self {
        let status = match err.kind {
            ErrorKind::DependencyTimeoutException => 503,
            kind if kind.is_server_fault() => 500,
            _ => 400,
        };
        Self { status, code: err.kind.name(), message: err.message }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn statuses_follow_the_reference() {
        assert_eq!(AwsError::from(KmsError::not_found("x")).status, 400);
        assert_eq!(AwsError::from(KmsError::disabled("x")).status, 400);
        assert_eq!(AwsError::from(KmsError::internal("x")).status, 500);
        assert_eq!(AwsError::from(KmsError::dependency_timeout("x")).status, 503);
        assert_eq!(AwsError::from(KmsError::new(ErrorKind::KeyUnavailableException, "x")).status, 500);
        let body: serde_json::Value =
            serde_json::from_slice(&AwsError::unrecognized_client().body()).unwrap();
        assert_eq!(body["__type"], "UnrecognizedClientException");
        assert_eq!(body["message"], "The security token included in the request is invalid.");
    }
}
