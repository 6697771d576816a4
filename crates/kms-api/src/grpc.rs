//! The native gRPC front end: kms.v1 `KeyManagementService` onto [`Kms`].
//!
//! Errors leave here in exactly one way ([`status`]): a gRPC code for generic clients, the AWS
//! exception name in the `x-kms-exception` metadata for clients that switch on it, and the
//! human message.

use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::{ErrorKind, KmsError};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_server::{KeyManagementService, KeyManagementServiceServer};
use tonic::{Code, Request, Response, Status};

/// The largest request the API accepts. The biggest legitimate one is a key policy (32 KiB);
/// anything far beyond that is refused before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The gRPC adapter. Cheap to clone.
#[derive(Clone)]
pub struct GrpcApi {
    kms: Kms,
}

impl GrpcApi {
    pub fn new(kms: Kms) -> Self {
        Self { kms }
    }

    /// The tonic service, with the request size limit applied.
    pub fn into_service(self) -> KeyManagementServiceServer<Self> {
        KeyManagementServiceServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES)
    }
}

/// Maps an AWS exception onto a gRPC status. The one place this happens.
pub fn status(err: KmsError) -> Status {
    let code = match err.kind {
        ErrorKind::NotFoundException => Code::NotFound,
        ErrorKind::AlreadyExistsException => Code::AlreadyExists,
        ErrorKind::DisabledException
        | ErrorKind::KMSInvalidStateException
        | ErrorKind::ConflictException
        | ErrorKind::UnsupportedOperationException
        | ErrorKind::DryRunOperationException => Code::FailedPrecondition,
        ErrorKind::LimitExceededException => Code::ResourceExhausted,
        ErrorKind::AccessDeniedException => Code::PermissionDenied,
        ErrorKind::KeyUnavailableException | ErrorKind::DependencyTimeoutException => Code::Unavailable,
        ErrorKind::KMSInternalException => Code::Internal,
        ErrorKind::InvalidCiphertextException
        | ErrorKind::IncorrectKeyException
        | ErrorKind::InvalidKeyUsageException
        | ErrorKind::KMSInvalidSignatureException
        | ErrorKind::KMSInvalidMacException
        | ErrorKind::ValidationException
        | ErrorKind::InvalidAliasNameException
        | ErrorKind::InvalidArnException
        | ErrorKind::InvalidMarkerException
        | ErrorKind::TagException
        | ErrorKind::ExpiredImportTokenException
        | ErrorKind::InvalidImportTokenException
        | ErrorKind::IncorrectKeyMaterialException => Code::InvalidArgument,
    };
    if err.kind.is_server_fault() {
        tracing::warn!(exception = err.kind.name(), message = %err.message, "request failed on the server side");
    }
    with_exception(Status::new(code, err.message), err.kind.name())
}

fn with_exception(mut status: Status, exception: &'static str) -> Status {
    status
        .metadata_mut()
        .insert(kms_proto::EXCEPTION_METADATA_KEY, tonic::metadata::MetadataValue::from_static(exception));
    status
}

/// Operations a later release delivers: a clear answer, never a panic.
fn not_yet(operation: &str) -> Status {
    with_exception(
        Status::unimplemented(format!("{operation} is not implemented by this server yet")),
        ErrorKind::UnsupportedOperationException.name(),
    )
}

/// The authenticated caller. Authentication (mTLS identities) arrives with the security work;
/// until then every call is anonymous, which dev mode restricts to loopback.
fn caller_of<T>(_request: &Request<T>) -> Caller {
    Caller::anonymous()
}

macro_rules! grpc_api {
    (
        implemented { $($op:ident: $name:literal, $req:ident => $resp:ident;)* }
        pending { $($pending:ident: $pname:literal, $preq:ident => $presp:ident;)* }
    ) => {
        #[tonic::async_trait]
        impl KeyManagementService for GrpcApi {
            $(
                async fn $op(&self, request: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    let caller = caller_of(&request);
                    self.kms.$op(&caller, request.into_inner()).await.map(Response::new).map_err(status)
                }
            )*
            $(
                async fn $pending(&self, _request: Request<pb::$preq>) -> Result<Response<pb::$presp>, Status> {
                    Err(not_yet($pname))
                }
            )*
        }
    };
}

crate::operations::kms_operations!(grpc_api);
