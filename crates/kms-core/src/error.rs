//! The one error type of the KMS. Its kinds are AWS KMS's exception names, so every front end
//! (gRPC, AWS JSON, Kubernetes plugin, CLI) reports the same name for the same failure.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An AWS KMS exception name. `name()` is the exact string clients switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    NotFoundException,
    DisabledException,
    KMSInvalidStateException,
    InvalidCiphertextException,
    IncorrectKeyException,
    InvalidKeyUsageException,
    KMSInvalidSignatureException,
    KMSInvalidMacException,
    ValidationException,
    AlreadyExistsException,
    InvalidAliasNameException,
    InvalidArnException,
    InvalidMarkerException,
    LimitExceededException,
    TagException,
    UnsupportedOperationException,
    ConflictException,
    DryRunOperationException,
    AccessDeniedException,
    KeyUnavailableException,
    DependencyTimeoutException,
    KMSInternalException,
    ExpiredImportTokenException,
    InvalidImportTokenException,
    IncorrectKeyMaterialException,
    MalformedPolicyDocumentException,
    InvalidGrantTokenException,
    InvalidGrantIdException,
    /// A caller exceeded its request rate (a front-end refusal; AWS answers it with HTTP 400).
    ThrottlingException,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::NotFoundException => "NotFoundException",
            Self::DisabledException => "DisabledException",
            Self::KMSInvalidStateException => "KMSInvalidStateException",
            Self::InvalidCiphertextException => "InvalidCiphertextException",
            Self::IncorrectKeyException => "IncorrectKeyException",
            Self::InvalidKeyUsageException => "InvalidKeyUsageException",
            Self::KMSInvalidSignatureException => "KMSInvalidSignatureException",
            Self::KMSInvalidMacException => "KMSInvalidMacException",
            Self::ValidationException => "ValidationException",
            Self::AlreadyExistsException => "AlreadyExistsException",
            Self::InvalidAliasNameException => "InvalidAliasNameException",
            Self::InvalidArnException => "InvalidArnException",
            Self::InvalidMarkerException => "InvalidMarkerException",
            Self::LimitExceededException => "LimitExceededException",
            Self::TagException => "TagException",
            Self::UnsupportedOperationException => "UnsupportedOperationException",
            Self::ConflictException => "ConflictException",
            Self::DryRunOperationException => "DryRunOperationException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::KeyUnavailableException => "KeyUnavailableException",
            Self::DependencyTimeoutException => "DependencyTimeoutException",
            Self::KMSInternalException => "KMSInternalException",
            Self::ExpiredImportTokenException => "ExpiredImportTokenException",
            Self::InvalidImportTokenException => "InvalidImportTokenException",
            Self::IncorrectKeyMaterialException => "IncorrectKeyMaterialException",
            Self::MalformedPolicyDocumentException => "MalformedPolicyDocumentException",
            Self::InvalidGrantTokenException => "InvalidGrantTokenException",
            Self::InvalidGrantIdException => "InvalidGrantIdException",
            Self::ThrottlingException => "ThrottlingException",
        }
    }

    /// Server faults are retryable and are the service's fault, not the caller's.
    pub fn is_server_fault(self) -> bool {
        matches!(
            self,
            Self::KeyUnavailableException | Self::DependencyTimeoutException | Self::KMSInternalException
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed KMS operation: the AWS exception and a message for humans.
///
/// Messages name keys, aliases and limits, never plaintext, key material or ciphertext bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct KmsError {
    pub kind: ErrorKind,
    pub message: String,
}

pub type KmsResult<T> = Result<T, KmsError>;

macro_rules! constructors {
    ($($fn_name:ident => $kind:ident),* $(,)?) => {
        impl KmsError {
            $(
                pub fn $fn_name(message: impl Into<String>) -> Self {
                    Self::new(ErrorKind::$kind, message)
                }
            )*
        }
    };
}

impl KmsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

constructors! {
    not_found => NotFoundException,
    disabled => DisabledException,
    invalid_state => KMSInvalidStateException,
    invalid_ciphertext => InvalidCiphertextException,
    incorrect_key => IncorrectKeyException,
    invalid_key_usage => InvalidKeyUsageException,
    invalid_signature => KMSInvalidSignatureException,
    invalid_mac => KMSInvalidMacException,
    validation => ValidationException,
    already_exists => AlreadyExistsException,
    invalid_alias_name => InvalidAliasNameException,
    invalid_arn => InvalidArnException,
    invalid_marker => InvalidMarkerException,
    limit_exceeded => LimitExceededException,
    tag => TagException,
    unsupported => UnsupportedOperationException,
    conflict => ConflictException,
    access_denied => AccessDeniedException,
    key_unavailable => KeyUnavailableException,
    dependency_timeout => DependencyTimeoutException,
    internal => KMSInternalException,
    expired_import_token => ExpiredImportTokenException,
    invalid_import_token => InvalidImportTokenException,
    incorrect_key_material => IncorrectKeyMaterialException,
    malformed_policy => MalformedPolicyDocumentException,
    invalid_grant_token => InvalidGrantTokenException,
    invalid_grant_id => InvalidGrantIdException,
    throttling => ThrottlingException,
}

impl From<crate::store::StoreError> for KmsError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(err.to_string())
    }
}
