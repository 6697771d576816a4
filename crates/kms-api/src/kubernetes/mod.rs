//! The Kubernetes KMS v2 plugin: kube-apiserver's `v2.KeyManagementService` (Status, Encrypt,
//! Decrypt; generated from the upstream `k8s.io/kms/apis/v2/api.proto`) onto [`Kms`], backed by
//! one configured symmetric key. kmsd serves it on a unix socket.
//!
//! Design:
//! - Every call runs as the principal [`PRINCIPAL`] through the ordinary `Kms` operations
//!   (Encrypt, Decrypt, CreateKey, CreateAlias), so state checks, usage tracking and metrics
//!   apply exactly as for any client. The request's `uid` becomes the request id when it is a
//!   short printable string, so the KMS's records line up with kube-apiserver's logs.
//! - Kubernetes hands the plugin 32-byte DEK seeds. Encrypt seals them with KMS Encrypt under
//!   the configured key and the fixed encryption context [`ENCRYPTION_CONTEXT`], so the plugin
//!   decrypts only what it encrypted: a ciphertext made through the ordinary API under the same
//!   key does not open here.
//! - `key_id` is `<key ARN>/v<material version>` ([`PluginKeyId`]), read from the header of the
//!   blob Encrypt just produced, so it always names the material that really sealed the seed.
//!   Rotating the key (automatic or RotateKeyOnDemand) adds a version: `key_id` changes, and
//!   kube-apiserver generates a new seed. Decrypt opens ciphertexts of any older `key_id`,
//!   because rotation keeps old material and the blob names its version; it checks that the
//!   blob's key and version are the ones the `key_id` names.
//! - Annotations: the plugin needs none and returns none. Those it is handed on Decrypt are
//!   checked against the upstream rules ([`limits`]) and otherwise ignored.
//! - Limits (kube-apiserver's): ciphertext and `key_id` at most 1 KiB, annotation keys fully
//!   qualified domain names, annotations at most 32 KiB in total. A plaintext whose ciphertext
//!   would not fit 1 KiB (more than ~950 bytes) is refused: KMS Encrypt itself takes up to 4 KiB.
//! - Status: `version` is always `"v2"`; `healthz` is `"ok"` only when an Encrypt and Decrypt
//!   round trip of a small fixed value through the KMS succeeds right now (both run on this
//!   node's applied state, no Raft round trip), otherwise a text saying what failed;
//!   `key_id` is the one that round trip's Encrypt reported (empty when unhealthy).
//! - Without a configured key the plugin uses its AWS managed key `alias/aws/kubernetes`
//!   ([`SERVICE_KEY`]; `Kms::service_key`), created on first use in one replicated step, rotated
//!   yearly, usable only by the principal [`PRINCIPAL`], and not manageable by anyone.
//! - The configured key may be an alias that does not exist yet: on first use the plugin creates
//!   a symmetric encryption key and the alias, and logs it. Two nodes racing to do so both
//!   create a key; the loser's CreateAlias fails, it schedules its own key for deletion and uses
//!   the winner's. Key ids and ARNs that do not exist are never created; they make Status fail.
//! - Errors become gRPC statuses through [`crate::grpc::status`] (code plus the AWS exception
//!   name), their message saying what the plugin was doing. Plaintext never reaches a log or a
//!   message.

pub mod key_id;
pub mod limits;

use crate::caller::Caller;
use crate::kms::Kms;
use crate::metrics::Api;
use key_id::PluginKeyId;
use kms_core::{ErrorKind, KmsError, KmsResult};
use kms_proto::k8s_kms_v2 as k8s;
use kms_proto::k8s_kms_v2::key_management_service_server::{
    KeyManagementService, KeyManagementServiceServer,
};
use kms_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The principal the plugin's KMS calls run as; also its service name.
pub const PRINCIPAL: &str = "kubernetes";

/// The plugin's AWS managed key, used when no key is configured.
pub const SERVICE_KEY: &str = "alias/aws/kubernetes";

/// The encryption context of every seed the plugin seals. Changing it makes every stored
/// Kubernetes ciphertext undecryptable: it is part of the format.
pub const ENCRYPTION_CONTEXT: (&str, &str) = ("kms-plugin", "kubernetes-kms-v2");

/// The `version` Status reports; kube-apiserver requires it never to change.
pub const API_VERSION: &str = "v2";

/// What the Status round trip encrypts: a fixed, non-secret value.
const STATUS_PROBE: &[u8] = b"kubernetes kms v2 status probe";

/// Longest `uid` adopted as the request id; longer ones get a fresh id (the uid is only a log
/// correlation aid, so nothing is lost).
const MAX_REQUEST_ID: usize = 128;

/// The plugin service. Cheap to clone.
#[derive(Clone)]
pub struct KubernetesPlugin {
    kms: Kms,
    /// The configured backing key: key id, key ARN, alias name or alias ARN.
    key: Arc<str>,
    /// Set once the configured alias is known to exist (created if it was missing).
    alias_ready: Arc<tokio::sync::OnceCell<()>>,
}

impl KubernetesPlugin {
    pub fn new(kms: Kms, key: impl Into<String>) -> Self {
        Self { kms, key: Arc::from(key.into()), alias_ready: Arc::default() }
    }

    /// The tonic service for kube-apiserver.
    pub fn into_server(self) -> KeyManagementServiceServer<Self> {
        // Requests are a seed or a ciphertext plus annotations: refuse anything far beyond.
        KeyManagementServiceServer::new(self).max_decoding_message_size(64 * 1024)
    }

    fn caller(uid: &str) -> Caller {
        let caller = Caller::new(PRINCIPAL);
        if !uid.is_empty() && uid.len() <= MAX_REQUEST_ID && uid.bytes().all(|b| b.is_ascii_graphic()) {
            caller.with_request_id(uid)
        } else {
            caller
        }
    }

    /// Seals `plaintext` under the configured key; returns the blob and its `key_id`. The first
    /// call creates the configured alias if it is missing.
    async fn seal(&self, caller: &Caller, plaintext: Vec<u8>) -> KmsResult<(Vec<u8>, PluginKeyId)> {
        self.alias_ready.get_or_try_init(|| self.create_missing_alias(caller)).await?;
        let request = pb::EncryptRequest {
            key_id: self.key.to_string(),
            plaintext,
            encryption_context: context(),
            ..Default::default()
        };
        let response = self
            .kms
            .audited(Api::Kubernetes, "Encrypt", caller, request, |r| self.kms.encrypt(caller, r))
            .await?;
        let header = kms_crypto::parse_header(&response.ciphertext_blob)
            .map_err(|err| KmsError::internal(format!("KMS Encrypt returned an unreadable blob: {err}")))?;
        let key_id = PluginKeyId { key_arn: response.key_id, material_version: header.material_version };
        Ok((response.ciphertext_blob, key_id))
    }

    /// Opens a blob this plugin sealed under `key_id`.
    async fn open(&self, caller: &Caller, ciphertext: Vec<u8>, key_id: &PluginKeyId) -> KmsResult<Vec<u8>> {
        let header = kms_crypto::parse_header(&ciphertext)
            .map_err(|_| KmsError::invalid_ciphertext("the ciphertext is not a KMS ciphertext blob"))?;
        if header.material_version != key_id.material_version {
            return Err(KmsError::invalid_ciphertext(format!(
                "the ciphertext was sealed with key material version {}, not the version {} its key_id names",
                header.material_version, key_id.material_version
            )));
        }
        let request = pb::DecryptRequest {
            ciphertext_blob: ciphertext,
            encryption_context: context(),
            // The ARN makes KMS refuse a blob of any other key (IncorrectKeyException).
            key_id: Some(key_id.key_arn.clone()),
            ..Default::default()
        };
        let response = self
            .kms
            .audited(Api::Kubernetes, "Decrypt", caller, request, |r| self.kms.decrypt(caller, r))
            .await?;
        Ok(response.plaintext)
    }

    /// Creates a symmetric key and the configured alias for it, unless the configured key is no
    /// alias or the alias exists (another node may have just created it).
    async fn create_missing_alias(&self, caller: &Caller) -> KmsResult<()> {
        let Some(alias) = alias_name(&self.key) else { return Ok(()) };
        if alias == SERVICE_KEY {
            return self.kms.service_key(PRINCIPAL).await.map(|_| ());
        }
        let describe = pb::DescribeKeyRequest { key_id: self.key.to_string(), ..Default::default() };
        match self.kms.describe_key(caller, describe).await {
            Err(err) if err.kind == ErrorKind::NotFoundException => {}
            other => return other.map(|_| ()),
        }
        let create = pb::CreateKeyRequest {
            description: Some(format!("Kubernetes KMS v2 key encryption key ({alias}), created by kmsd")),
            key_usage: pb::KeyUsage::EncryptDecrypt.into(),
            key_spec: pb::KeySpec::SymmetricDefault.into(),
            ..Default::default()
        };
        let metadata = self
            .kms
            .create_key(caller, create)
            .await?
            .key_metadata
            .ok_or_else(|| KmsError::internal("CreateKey answered without KeyMetadata"))?;
        let alias_request =
            pb::CreateAliasRequest { alias_name: alias.to_string(), target_key_id: metadata.key_id.clone() };
        match self.kms.create_alias(caller, alias_request).await {
            Ok(_) => {
                tracing::warn!(
                    alias,
                    key_arn = %metadata.arn,
                    "the Kubernetes KMS plugin's alias did not exist: created a symmetric key for it"
                );
                Ok(())
            }
            Err(err) if err.kind == ErrorKind::AlreadyExistsException => {
                tracing::info!(alias, key_arn = %metadata.arn, "another node created the alias first; scheduling this node's new key for deletion");
                let delete = pb::ScheduleKeyDeletionRequest {
                    key_id: metadata.key_id,
                    pending_window_in_days: Some(7),
                };
                if let Err(err) = self.kms.schedule_key_deletion(caller, delete).await {
                    tracing::warn!(key_arn = %metadata.arn, error = %err, "scheduling the unused key for deletion failed");
                }
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// The Status round trip: the `key_id` in use, or what failed.
    async fn check_health(&self) -> Result<PluginKeyId, String> {
        let caller = Self::caller("");
        let (blob, key_id) = self.seal(&caller, STATUS_PROBE.to_vec()).await.map_err(|err| {
            format!("Encrypt with {} failed: {}: {}", self.key, err.kind.name(), err.message)
        })?;
        let plaintext = self
            .open(&caller, blob, &key_id)
            .await
            .map_err(|err| format!("Decrypt with {key_id} failed: {}: {}", err.kind.name(), err.message))?;
        if plaintext != STATUS_PROBE {
            return Err(format!("Decrypt with {key_id} returned a different value than was encrypted"));
        }
        let len = key_id.to_string().len();
        if len > limits::MAX_KEY_ID {
            return Err(format!(
                "key_id is {len} bytes, more than the {} bytes Kubernetes allows",
                limits::MAX_KEY_ID
            ));
        }
        Ok(key_id)
    }
}

fn context() -> HashMap<String, String> {
    HashMap::from([(ENCRYPTION_CONTEXT.0.to_string(), ENCRYPTION_CONTEXT.1.to_string())])
}

/// The alias name in a configured key reference (`alias/x` or an alias ARN), if it is one.
fn alias_name(key: &str) -> Option<&str> {
    if key.starts_with("alias/") {
        return Some(key);
    }
    key.strip_prefix("arn:").and_then(|rest| rest.find(":alias/").map(|at| &rest[at + 1..]))
}

/// A refusal by the plugin itself: INVALID_ARGUMENT, as a `ValidationException`.
fn invalid(operation: &str, err: impl std::fmt::Display) -> Status {
    crate::grpc::status(KmsError::validation(format!("{operation}: {err}")))
}

/// A KMS failure while doing `doing`, keeping its code and exception name.
fn failed(doing: &str, err: KmsError) -> Status {
    let message = format!("{doing}: {}: {}", err.kind.name(), err.message);
    crate::grpc::status(KmsError::new(err.kind, message))
}

#[tonic::async_trait]
impl KeyManagementService for KubernetesPlugin {
    async fn status(
        &self,
        _request: Request<k8s::StatusRequest>,
    ) -> Result<Response<k8s::StatusResponse>, Status> {
        let (healthz, key_id) = match self.check_health().await {
            Ok(key_id) => ("ok".to_string(), key_id.to_string()),
            Err(reason) => {
                tracing::warn!(reason = %reason, "Kubernetes KMS plugin unhealthy");
                (format!("kms plugin unhealthy: {reason}"), String::new())
            }
        };
        Ok(Response::new(k8s::StatusResponse { version: API_VERSION.to_string(), healthz, key_id }))
    }

    async fn encrypt(
        &self,
        request: Request<k8s::EncryptRequest>,
    ) -> Result<Response<k8s::EncryptResponse>, Status> {
        let request = request.into_inner();
        let caller = Self::caller(&request.uid);
        limits::check_len("plaintext", request.plaintext.len(), limits::MAX_PLAINTEXT)
            .map_err(|err| invalid("Encrypt", err))?;
        let plaintext_len = request.plaintext.len();
        let (ciphertext, key_id) = self
            .seal(&caller, request.plaintext)
            .await
            .map_err(|err| failed(&format!("Encrypt with {}", self.key), err))?;
        limits::check_len("ciphertext", ciphertext.len(), limits::MAX_CIPHERTEXT).map_err(|err| {
            invalid("Encrypt", format!("{err} (sealing a plaintext of {plaintext_len} bytes)"))
        })?;
        let key_id = key_id.to_string();
        limits::check_len("key_id", key_id.len(), limits::MAX_KEY_ID)
            .map_err(|err| invalid("Encrypt", err))?;
        tracing::debug!(uid = %caller.request_id, key_id = %key_id, "Kubernetes KMS plugin Encrypt");
        Ok(Response::new(k8s::EncryptResponse { ciphertext, key_id, annotations: HashMap::new() }))
    }

    async fn decrypt(
        &self,
        request: Request<k8s::DecryptRequest>,
    ) -> Result<Response<k8s::DecryptResponse>, Status> {
        let request = request.into_inner();
        let caller = Self::caller(&request.uid);
        limits::check_len("ciphertext", request.ciphertext.len(), limits::MAX_CIPHERTEXT)
            .map_err(|err| invalid("Decrypt", err))?;
        limits::check_len("key_id", request.key_id.len(), limits::MAX_KEY_ID)
            .map_err(|err| invalid("Decrypt", err))?;
        limits::check_annotations(&request.annotations).map_err(|err| invalid("Decrypt", err))?;
        let key_id = PluginKeyId::parse(&request.key_id).ok_or_else(|| {
            crate::grpc::status(KmsError::validation(format!(
                "Decrypt: key_id '{}' was not issued by this plugin (expected <key ARN>/v<material version>)",
                request.key_id.escape_debug()
            )))
        })?;
        let plaintext = self
            .open(&caller, request.ciphertext, &key_id)
            .await
            .map_err(|err| failed(&format!("Decrypt with {key_id}"), err))?;
        tracing::debug!(uid = %caller.request_id, key_id = %key_id, "Kubernetes KMS plugin Decrypt");
        Ok(Response::new(k8s::DecryptResponse { plaintext }))
    }
}
