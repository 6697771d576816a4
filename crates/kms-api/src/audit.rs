//! The audit record of every request, written in one place for every front end.
//!
//! Front ends run each operation through [`Kms::audited`], which takes the request's place in the
//! audit queue before the operation runs (a full queue that fails closed refuses the request
//! with the retriable DependencyTimeoutException: AWS defines it as a dependency that did not
//! answer in time, and SDKs retry it) and hands in the record with the outcome when it ends.
//! Requests refused before any operation (authentication, unknown operations, undecodable
//! input) are recorded with [`Kms::audit_refused`].
//!
//! What a record says about a request comes from [`AuditFields`], implemented below for every
//! request and response type from an explicit allow-list: the key named and the encryption
//! context. Plaintext, ciphertext, data keys, key material, messages, MACs and signatures have no
//! way in.

use crate::caller::Caller;
use crate::kms::Kms;
use crate::metrics::Api;
use kms_audit::{AuditEvent, AuditLog};
use kms_core::ids::MAX_KEY_REF_LEN;
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

/// The node's audit log and the node id every record names.
#[derive(Clone, Debug)]
pub(crate) struct Auditor {
    log: AuditLog,
    node: u64,
}

/// Principal of a request refused before it was authenticated.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// Longest operation name or key reference copied from a request into a record (a bound on what
/// a client can make the log hold).
const MAX_NAME_CHARS: usize = 2048;

/// The audit-relevant fields of a request or response. Every method defaults to "none".
pub trait AuditFields {
    /// The key the message names: a key id, key ARN or alias as given, or a resolved ARN.
    fn key(&self) -> Option<&str> {
        None
    }
    /// The encryption context (ReEncrypt: the destination's).
    fn context(&self) -> Option<&HashMap<String, String>> {
        None
    }
    /// ReEncrypt: the key and context of the source ciphertext.
    fn source_key(&self) -> Option<&str> {
        None
    }
    fn source_context(&self) -> Option<&HashMap<String, String>> {
        None
    }
}

impl Kms {
    /// Records every request this service answers in `log`.
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(Auditor { log, node: self.region.node_id() });
        self
    }

    /// The audit log, if one is attached (for metrics and the final flush).
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.as_ref().map(|a| &a.log)
    }

    /// Runs `operation` (`run` applied to `request`) as `caller` and records it, exactly once,
    /// whatever the outcome: `ok`, the AWS exception name, or `cancelled` if the future is
    /// dropped before the operation ends.
    pub async fn audited<Q, R, F>(
        &self,
        api: Api,
        operation: &'static str,
        caller: &Caller,
        request: Q,
        run: impl FnOnce(Q) -> F,
    ) -> KmsResult<R>
    where
        Q: AuditFields,
        R: AuditFields,
        F: Future<Output = KmsResult<R>>,
    {
        let Some(auditor) = &self.audit else { return run(request).await };
        let mut pending =
            auditor.log.begin(self.audit_event(auditor, api, operation, caller)).map_err(|full| {
                KmsError::dependency_timeout(format!("{full}; the request was not run, retry it later"))
            })?;
        let event = pending.event_mut();
        self.note_fields(event, &request);
        event.encryption_context = sorted(request.context()).unwrap_or_default();
        event.source_encryption_context = sorted(request.source_context());
        let result = run(request).await;
        let event = pending.event_mut();
        match &result {
            Ok(response) => {
                event.outcome = "ok".into();
                self.note_fields(event, response);
            }
            Err(err) => event.outcome = err.kind.name().into(),
        }
        result
    }

    /// Records a request that ended before reaching an operation: refused by authentication
    /// (`caller.principal` is then [`UNAUTHENTICATED`]), an unknown or unimplemented operation,
    /// or input that could not be decoded. `outcome` is the AWS error code it was answered with.
    pub fn audit_refused(&self, api: Api, operation: &str, caller: &Caller, outcome: &str) {
        let Some(auditor) = &self.audit else { return };
        let mut event = self.audit_event(auditor, api, operation, caller);
        event.outcome = outcome.to_string();
        auditor.log.record(event);
    }

    fn audit_event(&self, auditor: &Auditor, api: Api, operation: &str, caller: &Caller) -> AuditEvent {
        AuditEvent {
            time: kms_audit::rfc3339_millis(self.now()),
            request_id: caller.request_id.clone(),
            api: api.as_str().into(),
            operation: bounded(operation),
            principal: caller.principal.clone(),
            source: caller.source.map(|s| s.to_string()),
            node: auditor.node,
            region: self.scope.region.clone(),
            ..AuditEvent::default()
        }
    }

    /// Takes the keys `message` names; a response's (resolved) keys replace the request's.
    fn note_fields(&self, event: &mut AuditEvent, message: &impl AuditFields) {
        if let Some(key) = message.key() {
            event.key_arn = Some(self.audit_key(key));
        }
        if let Some(key) = message.source_key() {
            event.source_key_arn = Some(self.audit_key(key));
        }
    }

    /// A key reference as the log shows it: the ARN for a key id of this region, anything else
    /// (aliases, foreign or malformed ARNs, what is too long to be a key id) as given. Two of
    /// these run on every request (the request's key, then the response's ARN), so nothing is
    /// parsed: a bare id is what is neither an ARN nor an alias name.
    fn audit_key(&self, key: &str) -> String {
        if self.scope.is_key_arn(key) {
            key.to_string()
        } else if key.starts_with("arn:") || key.starts_with("alias/") || key.len() > MAX_KEY_REF_LEN {
            bounded(key)
        } else {
            self.key_arn(key)
        }
    }
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_NAME_CHARS).collect()
}

fn sorted(context: Option<&HashMap<String, String>>) -> Option<BTreeMap<String, String>> {
    context.map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn named(key_id: &str) -> Option<&str> {
    Some(key_id).filter(|k| !k.is_empty())
}

/// Messages whose `key_id: String` names the key.
macro_rules! key_id {
    ($($ty:ident),* $(,)?) => {$(
        impl AuditFields for pb::$ty {
            fn key(&self) -> Option<&str> {
                named(&self.key_id)
            }
        }
    )*};
}

/// Requests with `key_id: String` and an `encryption_context`.
macro_rules! key_id_and_context {
    ($($ty:ident),* $(,)?) => {$(
        impl AuditFields for pb::$ty {
            fn key(&self) -> Option<&str> {
                named(&self.key_id)
            }
            fn context(&self) -> Option<&HashMap<String, String>> {
                Some(&self.encryption_context)
            }
        }
    )*};
}

/// Messages that name no key and carry no context.
macro_rules! no_fields {
    ($($ty:ident),* $(,)?) => {$(
        impl AuditFields for pb::$ty {}
    )*};
}

/// Messages that name a key through other fields.
macro_rules! key_from {
    ($($ty:ident => |$m:ident| $key:expr;)*) => {$(
        impl AuditFields for pb::$ty {
            fn key(&self) -> Option<&str> {
                let $m = self;
                $key
            }
        }
    )*};
}

key_id! {
    DescribeKeyRequest, UpdateKeyDescriptionRequest, EnableKeyRequest, DisableKeyRequest,
    ScheduleKeyDeletionRequest, CancelKeyDeletionRequest, GetKeyLastUsageRequest, SignRequest,
    VerifyRequest, GenerateMacRequest, VerifyMacRequest, GetPublicKeyRequest,
    DeriveSharedSecretRequest, TagResourceRequest, UntagResourceRequest, ListResourceTagsRequest,
    EnableKeyRotationRequest, DisableKeyRotationRequest, GetKeyRotationStatusRequest,
    RotateKeyOnDemandRequest, ListKeyRotationsRequest, GetParametersForImportRequest,
    ImportKeyMaterialRequest, DeleteImportedKeyMaterialRequest,
    ScheduleKeyDeletionResponse, CancelKeyDeletionResponse, GetKeyLastUsageResponse, EncryptResponse,
    DecryptResponse, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse,
    GenerateDataKeyPairResponse, GenerateDataKeyPairWithoutPlaintextResponse, SignResponse,
    VerifyResponse, GenerateMacResponse, VerifyMacResponse, GetPublicKeyResponse,
    DeriveSharedSecretResponse, GetKeyRotationStatusResponse, RotateKeyOnDemandResponse,
    GetParametersForImportResponse, ImportKeyMaterialResponse, DeleteImportedKeyMaterialResponse,
}

key_id_and_context! {
    EncryptRequest, GenerateDataKeyRequest, GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyPairRequest, GenerateDataKeyPairWithoutPlaintextRequest,
}

key_from! {
    ListAliasesRequest => |m| m.key_id.as_deref().and_then(named);
    CreateAliasRequest => |m| named(&m.target_key_id);
    UpdateAliasRequest => |m| named(&m.target_key_id);
    CreateKeyResponse => |m| m.key_metadata.as_ref().and_then(|k| named(&k.arn));
    DescribeKeyResponse => |m| m.key_metadata.as_ref().and_then(|k| named(&k.arn));
}

no_fields! {
    CreateKeyRequest, ListKeysRequest, ListKeysResponse, GenerateRandomRequest,
    GenerateRandomResponse, DeleteAliasRequest, DeleteAliasResponse, ListAliasesResponse,
    CreateAliasResponse, UpdateAliasResponse, UpdateKeyDescriptionResponse, EnableKeyResponse,
    DisableKeyResponse, TagResourceResponse, UntagResourceResponse, ListResourceTagsResponse,
    EnableKeyRotationResponse, DisableKeyRotationResponse, ListKeyRotationsResponse,
    CreateCustomKeyStoreRequest, CreateCustomKeyStoreResponse, DescribeCustomKeyStoresRequest,
    DescribeCustomKeyStoresResponse, UpdateCustomKeyStoreRequest, UpdateCustomKeyStoreResponse,
    DeleteCustomKeyStoreRequest, DeleteCustomKeyStoreResponse, ConnectCustomKeyStoreRequest,
    ConnectCustomKeyStoreResponse, DisconnectCustomKeyStoreRequest, DisconnectCustomKeyStoreResponse,
}

impl AuditFields for pb::DecryptRequest {
    fn key(&self) -> Option<&str> {
        self.key_id.as_deref().and_then(named)
    }
    fn context(&self) -> Option<&HashMap<String, String>> {
        Some(&self.encryption_context)
    }
}

impl AuditFields for pb::ReEncryptRequest {
    fn key(&self) -> Option<&str> {
        named(&self.destination_key_id)
    }
    fn context(&self) -> Option<&HashMap<String, String>> {
        Some(&self.destination_encryption_context)
    }
    fn source_key(&self) -> Option<&str> {
        self.source_key_id.as_deref().and_then(named)
    }
    fn source_context(&self) -> Option<&HashMap<String, String>> {
        Some(&self.source_encryption_context)
    }
}

impl AuditFields for pb::ReEncryptResponse {
    fn key(&self) -> Option<&str> {
        named(&self.key_id)
    }
    fn source_key(&self) -> Option<&str> {
        named(&self.source_key_id)
    }
}

// Grants and key policies. The policy document and grant constraints are not recorded.
key_id! {
    CreateGrantRequest, ListGrantsRequest, RevokeGrantRequest, GetKeyPolicyRequest,
    PutKeyPolicyRequest, ListKeyPoliciesRequest, ReplicateKeyRequest, UpdatePrimaryRegionRequest,
}

key_from! {
    RetireGrantRequest => |m| m.key_id.as_deref().and_then(named);
}

no_fields! {
    CreateGrantResponse, ListGrantsResponse, ListRetirableGrantsRequest, ListRetirableGrantsResponse,
    RetireGrantResponse, RevokeGrantResponse, GetKeyPolicyResponse, PutKeyPolicyResponse,
    ListKeyPoliciesResponse, ReplicateKeyResponse, UpdatePrimaryRegionResponse,
}
