//! The native gRPC front end: kms.v1 `KeyManagementService` onto [`Kms`].
//!
//! Errors leave here in exactly one way ([`status`]): a gRPC code for generic clients, the AWS
//! exception name in the `x-kms-exception` metadata for clients that switch on it, and the
//! human message.

use crate::authn::{Authenticator, AuthnError, Presented};
use crate::caller::Caller;
use crate::kms::Kms;
use crate::metrics::Api;
use kms_core::{ErrorKind, KmsError, KmsResult};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_server::{KeyManagementService, KeyManagementServiceServer};
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

/// The largest request the API accepts. The biggest legitimate one is a key policy (32 KiB);
/// anything far beyond that is refused before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The gRPC adapter. Cheap to clone.
#[derive(Clone)]
pub struct GrpcApi {
    kms: Kms,
    authn: Arc<Authenticator>,
}

impl GrpcApi {
    pub fn new(kms: Kms, authn: Arc<Authenticator>) -> Self {
        Self { kms, authn }
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
        ErrorKind::LimitExceededException | ErrorKind::ThrottlingException => Code::ResourceExhausted,
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
        | ErrorKind::IncorrectKeyMaterialException
        | ErrorKind::MalformedPolicyDocumentException
        | ErrorKind::InvalidGrantTokenException
        | ErrorKind::InvalidGrantIdException => Code::InvalidArgument,
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

/// The principal behind a request, or the gRPC status that refuses it.
pub fn authenticate<T>(authn: &Authenticator, request: &Request<T>) -> Result<String, Status> {
    principal_of(authn, request).map_err(unauthenticated)
}

fn principal_of<T>(authn: &Authenticator, request: &Request<T>) -> Result<String, AuthnError> {
    let certificates = request.peer_certs();
    let authorization = match request.metadata().get("authorization") {
        Some(value) => Some(value.to_str().map_err(|_| AuthnError::MalformedAuthorization)?),
        None => None,
    };
    let presented = Presented { certificates: certificates.as_deref().map(Vec::as_slice), authorization };
    authn.authenticate(presented)
}

fn unauthenticated(err: AuthnError) -> Status {
    with_exception(Status::unauthenticated(err.to_string()), err.exception())
}

/// A tonic interceptor admitting only principals that may change the cluster (see
/// [`Authenticator::may_administer`]); the cluster admin service is served behind it.
pub fn admin_guard(
    authn: Arc<Authenticator>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    move |request: Request<()>| {
        check_admin(&authn, &request)?;
        Ok(request)
    }
}

/// Refuses a request whose principal may not administer the cluster (AccessDeniedException).
pub fn check_admin<T>(authn: &Authenticator, request: &Request<T>) -> Result<(), Status> {
    let principal = authenticate(authn, request)?;
    if authn.may_administer(&principal) {
        Ok(())
    } else {
        Err(with_exception(
            Status::permission_denied(format!("{principal} may not administer this cluster")),
            ErrorKind::AccessDeniedException.name(),
        ))
    }
}

impl GrpcApi {
    /// The caller of `operation`, within its rate limit; a refusal (unauthenticated, or
    /// ThrottlingException) is audited and answered.
    fn caller_of<T>(&self, operation: &str, request: &Request<T>) -> Result<Caller, Status> {
        match principal_of(&self.authn, request) {
            Ok(principal) => {
                let caller = Caller::new(principal).with_source(request.remote_addr());
                self.kms
                    .admit(Api::Grpc, operation, &caller)
                    .map_err(|e| with_request_id(status(e), &caller))?;
                Ok(caller)
            }
            Err(err) => {
                let refused = Caller::new(crate::audit::UNAUTHENTICATED).with_source(request.remote_addr());
                self.kms.audit_refused(Api::Grpc, operation, &refused, err.exception());
                Err(with_request_id(unauthenticated(err), &refused))
            }
        }
    }
}

/// The metadata key of the request id on every kms.v1 answer: the id the audit log records.
pub const REQUEST_ID_METADATA_KEY: &str = "x-kms-request-id";

/// An operation's result as the gRPC answer, carrying the request id either way.
fn answer<T>(caller: &Caller, result: KmsResult<T>) -> Result<Response<T>, Status> {
    match result {
        Ok(message) => {
            let mut response = Response::new(message);
            insert_request_id(response.metadata_mut(), caller);
            Ok(response)
        }
        Err(err) => Err(with_request_id(status(err), caller)),
    }
}

fn with_request_id(mut status: Status, caller: &Caller) -> Status {
    insert_request_id(status.metadata_mut(), caller);
    status
}

fn insert_request_id(metadata: &mut tonic::metadata::MetadataMap, caller: &Caller) {
    // Request ids are UUIDs or ids a front end made; one that is not a valid header value is
    // left out rather than failing the answer.
    if let Ok(mut value) = tonic::metadata::MetadataValue::try_from(caller.request_id.as_str()) {
        // Unique to each answer, so HPACK must not index it: indexed, every response added an
        // entry to the connection's header table (evicting the ones that repeat) and every next
        // response compared its id against all of them, 4 % of a node's CPU under Encrypt load.
        // Marked sensitive, it is sent as a never-indexed literal.
        value.set_sensitive(true);
        metadata.insert(REQUEST_ID_METADATA_KEY, value);
    }
}

macro_rules! grpc_api {
    (
        implemented { $($op:ident: $name:literal, $req:ident => $resp:ident;)* }
    ) => {
        #[tonic::async_trait]
        impl KeyManagementService for GrpcApi {
            $(
                async fn $op(&self, request: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    let caller = self.caller_of($name, &request)?;
                    let request = request.into_inner();
                    let result =
                        self.kms.audited(Api::Grpc, $name, &caller, request, |r| self.kms.$op(&caller, r)).await;
                    answer(&caller, result)
                }
            )*
        }
    };
}

crate::operations::kms_operations!(grpc_api);
