//! The typed gRPC client: deadlines on every call, retries of retriable failures only (full
//! jitter exponential backoff), failover across a region's nodes and, for multi-Region keys,
//! across regions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kms_client::client::Error> {
//! use kms_client::client::Client;
//! use kms_proto::v1 as pb;
//! let kms = Client::builder()
//!     .region("eu-west-1", ["kms-eu-1:8300", "kms-eu-2:8300", "kms-eu-3:8300"])
//!     .region("us-east-1", ["kms-us.example:8300"])
//!     .tls_files("ca.crt".as_ref(), Some(("app.crt".as_ref(), "app.key".as_ref())))?
//!     .build()?;
//! let key = kms.create_key(pb::CreateKeyRequest { multi_region: Some(true), ..Default::default() }).await?;
//! let request = pb::EncryptRequest { key_id: key.key_id, plaintext: b"hello".to_vec(), ..Default::default() };
//! let blob = kms.encrypt(request).await?.ciphertext_blob;
//! let plaintext = kms.decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await?.plaintext;
//! // Any RPC, with the same machinery:
//! kms.send(pb::EnableKeyRotationRequest { key_id: "mrk-...".into(), ..Default::default() }).await?;
//! # Ok(()) }
//! ```
//!
//! # Retries
//!
//! A failure is classified by the AWS exception name the server attaches (`x-kms-exception`),
//! else by its gRPC code ([`retry::classify`]):
//!
//! | Failure | Examples | Idempotent operation | Unsafe operation |
//! |---|---|---|---|
//! | not sent | connection refused, TLS handshake failed | retried on the next node | retried on the next node |
//! | throttled | ThrottlingException (refused before it ran) | retried on the same node after backoff | same |
//! | transient, outcome unknown | UNAVAILABLE (DependencyTimeoutException, KeyUnavailableException, a connection broken mid-call), KMSInternalException, DEADLINE_EXCEEDED, the attempt's own timeout | retried on the next node | **not retried** |
//! | final | ValidationException, AccessDeniedException, NotFoundException, DisabledException, KMSInvalidStateException, LimitExceededException, InvalidCiphertextException, UNAUTHENTICATED, ... | not retried | not retried |
//!
//! Operations are idempotent unless listed here (the table in [`operations`] decides):
//! CreateKey *without* an idempotency token ([`Client::create_key`] always adds one, so its
//! CreateKey is idempotent), CreateGrant without a Name, RotateKeyOnDemand (each call rotates
//! again), ScheduleKeyDeletion and CancelKeyDeletion, CreateAlias and DeleteAlias, RetireGrant
//! and RevokeGrant, GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial,
//! ReplicateKey and UpdatePrimaryRegion, and the custom key store writes. Some of those would not
//! change the state twice, but a repeat after a lost answer fails (AlreadyExists,
//! KMSInvalidState) and would hide the first call's success. [`CallOptions::idempotency`]
//! overrides the table for one call.
//!
//! Between rounds over the nodes, and before asking a throttling node again, the client waits a
//! random time in `[0, min(max_backoff, initial_backoff * 2^n)]` ("full jitter"). A call stops at
//! `max_attempts` or at its deadline; each attempt also has its own deadline, sent to the
//! server as `grpc-timeout`.
//!
//! # Nodes and leaders
//!
//! Any node of a region serves any call: followers forward writes to the leader themselves. The
//! server names the leader only as a node id inside a DependencyTimeoutException's message (no
//! metadata, no client address), so there is no hint the client could follow; a node that
//! fails is instead *suspect* for a while and tried after the others ([`nodes`]).
//!
//! # Regions
//!
//! The first region given to the builder is the home region. Calls that name no key go there.
//! Cryptographic calls (and DescribeKey) on a multi-Region key, named by its `mrk-` id, its key
//! ARN, or (Decrypt) by the key id inside the ciphertext blob, go to the home region and, when
//! it cannot answer, to the other configured regions that hold the key (known from
//! MultiRegionConfiguration once the client has seen it), with the key ARN's region rewritten.
//! Management calls on a multi-Region key named by its bare id go to its primary region,
//! learnt from DescribeKey and cached ([`Settings::region_cache_ttl`]); a key ARN keeps the
//! region it names (a replica's description, policy or state belong to the replica). Aliases
//! are never routed across regions: an alias is per region and may name another key there.

mod call;
mod config;
mod data_keys;
mod error;
pub mod nodes;
pub mod operations;
pub mod retry;
mod routing;
mod secret;
mod transport;

pub use call::Stats;
pub use config::{ClientBuilder, Settings};
pub use error::{Cause, Error, Stop};
pub use operations::{Operation, Routing};
pub use retry::{Idempotency, RetryPolicy};
pub use secret::{Decrypted, GeneratedDataKey, Plaintext};

use kms_proto::v1 as pb;
use nodes::RegionNodes;
use routing::{KeyRegions, Plan, Planned, RegionCache};
use std::sync::Arc;
use std::time::Duration;

/// A KMS client. Cheap to clone; clones share connections, node health and what the client
/// learnt about multi-Region keys.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The home region first.
    regions: Vec<RegionNodes>,
    settings: Settings,
    key_regions: RegionCache,
    counters: call::Counters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let regions: Vec<(&str, Vec<&str>)> = self
            .inner
            .regions
            .iter()
            .map(|r| (r.name.as_str(), r.nodes.iter().map(|n| n.url.as_str()).collect()))
            .collect();
        f.debug_struct("Client").field("regions", &regions).field("settings", &self.inner.settings).finish()
    }
}

/// Per-call overrides of the client's settings.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    idempotency: Option<Idempotency>,
    region: Option<String>,
}

impl CallOptions {
    /// The deadline of this call, retries included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the operation's idempotency (e.g. for a request the caller knows is safe).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// Sends the call to this configured region only, whatever the routing rules say (e.g. a
    /// forced UpdatePrimaryRegion in a replica's region while the primary's is down).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    fn from_parts(regions: Vec<RegionNodes>, settings: Settings) -> Self {
        let key_regions = RegionCache::new(settings.region_cache_ttl);
        Self { inner: Arc::new(Inner { regions, settings, key_regions, counters: Default::default() }) }
    }

    /// What this client (and its clones) did so far: calls, attempts and the retries by cause.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// The name of the home region.
    pub fn home_region(&self) -> &str {
        &self.inner.regions[0].name
    }

    /// Sends any kms.v1 request with retries, failover and routing as its [`Operation`] says.
    pub async fn send<O: Operation>(&self, request: O) -> Result<O::Response, Error> {
        self.send_with(request, &CallOptions::default()).await
    }

    /// [`send`](Self::send) with per-call options.
    pub async fn send_with<O: Operation>(
        &self,
        request: O,
        options: &CallOptions,
    ) -> Result<O::Response, Error> {
        let key = routing_key(&request);
        let plan = self.plan::<O>(key.as_deref(), options).await?;
        let idempotency = options.idempotency.unwrap_or_else(|| request.idempotency());
        let timeout = options.timeout.unwrap_or(self.inner.settings.timeout);
        let response = self.run_call(&request, &plan, idempotency, timeout).await?;
        self.learn::<O>(key.as_deref(), &response);
        Ok(response)
    }

    /// Where a call of `O` naming `key` goes; for a management call on a multi-Region key whose
    /// regions are unknown, a DescribeKey first.
    async fn plan<O: Operation>(&self, key: Option<&str>, options: &CallOptions) -> Result<Plan, Error> {
        let names: Vec<String> = self.inner.regions.iter().map(|r| r.name.clone()).collect();
        if let Some(region) = &options.region {
            if !names.contains(region) {
                let message = format!("region {region:?} is not configured (configured: {names:?})");
                return Err(Error::config(message).for_operation(O::NAME));
            }
            return Ok(Plan { regions: vec![region.clone()], failover: false });
        }
        let known = key.and_then(routing::cache_key).and_then(|id| self.inner.key_regions.get(&id));
        match routing::plan(O::ROUTING, key, &names, known.as_ref()) {
            Planned::Ready(plan) => Ok(plan),
            Planned::NeedsRegions(key_id) => {
                let known = self.key_regions(&key_id).await.map_err(|e| e.for_operation(O::NAME))?;
                match routing::plan(O::ROUTING, key, &names, Some(&known)) {
                    Planned::Ready(plan) => Ok(plan),
                    Planned::NeedsRegions(_) => Ok(Plan { regions: vec![names[0].clone()], failover: false }),
                }
            }
        }
    }

    /// The primary and replica regions of a multi-Region key, from DescribeKey (which fails
    /// over like a cryptographic call). Not through [`send`](Self::send): planning a call must
    /// not plan another.
    async fn key_regions(&self, key_id: &str) -> Result<KeyRegions, Error> {
        let names: Vec<String> = self.inner.regions.iter().map(|r| r.name.clone()).collect();
        let request = pb::DescribeKeyRequest { key_id: key_id.to_string(), ..Default::default() };
        let Planned::Ready(plan) = routing::plan(Routing::Crypto, Some(key_id), &names, None) else {
            return Err(Error::config("cryptographic routing always has a plan"));
        };
        let timeout = self.inner.settings.timeout;
        let response = self.run_call(&request, &plan, Idempotency::Idempotent, timeout).await?;
        let metadata = response.key_metadata.unwrap_or_default();
        self.inner.key_regions.learn(&metadata);
        KeyRegions::from_metadata(&metadata).map(|(_, regions)| regions).ok_or_else(|| {
            Error::protocol("DescribeKey", format!("{key_id} has no MultiRegionConfiguration"))
        })
    }

    /// Keeps what a response tells about a key's regions; forgets them after a call that
    /// changed them.
    fn learn<O: Operation>(&self, key: Option<&str>, response: &O::Response) {
        if let Some(metadata) = O::key_metadata(response) {
            self.inner.key_regions.learn(metadata);
        }
        if O::ROUTING == Routing::PrimaryChangingRegions
            && let Some(key_id) = key.and_then(routing::cache_key)
        {
            self.inner.key_regions.forget(&key_id);
        }
    }

    /// The primary region of a multi-Region key (`mrk-` id or key ARN), as the client knows it
    /// or learns it now.
    pub async fn primary_region(&self, key_id: &str) -> Result<String, Error> {
        let id = routing::cache_key(key_id)
            .ok_or_else(|| Error::config(format!("{key_id} is not a multi-Region key id or ARN")))?;
        match self.inner.key_regions.get(&id) {
            Some(known) => Ok(known.primary),
            None => Ok(self.key_regions(&id).await?.primary),
        }
    }

    /// CreateKey, safe to retry: a fresh idempotency token (a v4 UUID) is added unless the
    /// request has one, and reused by every retry, so a CreateKey whose answer was lost never
    /// creates a second key. Returns the new key's metadata.
    pub async fn create_key(&self, mut request: pb::CreateKeyRequest) -> Result<pb::KeyMetadata, Error> {
        request.idempotency_token.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
        let response = self.send(request).await?;
        response.key_metadata.ok_or_else(|| missing("CreateKey", "KeyMetadata"))
    }

    /// DescribeKey by key id, key ARN, alias name or alias ARN.
    pub async fn describe_key(&self, key_id: &str) -> Result<pb::KeyMetadata, Error> {
        let request = pb::DescribeKeyRequest { key_id: key_id.to_string(), ..Default::default() };
        let response = self.send(request).await?;
        response.key_metadata.ok_or_else(|| missing("DescribeKey", "KeyMetadata"))
    }

    /// One page of ListKeys.
    pub async fn list_keys(&self, request: pb::ListKeysRequest) -> Result<pb::ListKeysResponse, Error> {
        self.send(request).await
    }

    /// Every key of the home region, page by page.
    pub async fn list_all_keys(&self) -> Result<Vec<pb::KeyListEntry>, Error> {
        let mut keys = Vec::new();
        let mut marker = None;
        loop {
            let page = self.list_keys(pb::ListKeysRequest { limit: Some(1000), marker }).await?;
            keys.extend(page.keys);
            if !page.truncated {
                return Ok(keys);
            }
            marker = Some(page.next_marker);
        }
    }

    pub async fn encrypt(&self, request: pb::EncryptRequest) -> Result<pb::EncryptResponse, Error> {
        self.send(request).await
    }

    /// Decrypt; the plaintext comes back wrapped so that it is wiped on drop and never printed.
    pub async fn decrypt(&self, request: pb::DecryptRequest) -> Result<Decrypted, Error> {
        self.send(request).await.map(Decrypted::from)
    }

    pub async fn re_encrypt(&self, request: pb::ReEncryptRequest) -> Result<pb::ReEncryptResponse, Error> {
        self.send(request).await
    }

    /// GenerateDataKey; the plaintext data key comes back wrapped like Decrypt's plaintext.
    pub async fn generate_data_key(
        &self,
        request: pb::GenerateDataKeyRequest,
    ) -> Result<GeneratedDataKey, Error> {
        self.send(request).await.map(GeneratedDataKey::from)
    }

    pub async fn generate_data_key_without_plaintext(
        &self,
        request: pb::GenerateDataKeyWithoutPlaintextRequest,
    ) -> Result<pb::GenerateDataKeyWithoutPlaintextResponse, Error> {
        self.send(request).await
    }

    pub async fn sign(&self, request: pb::SignRequest) -> Result<pb::SignResponse, Error> {
        self.send(request).await
    }

    /// Verify; an invalid signature is an error (`KMSInvalidSignatureException`), as in AWS.
    pub async fn verify(&self, request: pb::VerifyRequest) -> Result<pb::VerifyResponse, Error> {
        self.send(request).await
    }

    pub async fn generate_mac(
        &self,
        request: pb::GenerateMacRequest,
    ) -> Result<pb::GenerateMacResponse, Error> {
        self.send(request).await
    }

    /// VerifyMac; a wrong MAC is an error (`KMSInvalidMacException`), as in AWS.
    pub async fn verify_mac(&self, request: pb::VerifyMacRequest) -> Result<pb::VerifyMacResponse, Error> {
        self.send(request).await
    }
}

/// The key a request is routed by: its first key field, else the key id in its ciphertext blob.
fn routing_key<O: Operation>(request: &O) -> Option<String> {
    let mut probe = request.clone();
    let named = probe.key_fields().into_iter().find(|field| !field.is_empty()).map(|field| field.clone());
    named.or_else(|| request.blob_key_id())
}

fn missing(operation: &'static str, field: &str) -> Error {
    Error::protocol(operation, format!("no {field}"))
}
