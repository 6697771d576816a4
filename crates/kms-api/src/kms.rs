//! `Kms`: the one service layer every front end adapts onto. It holds the region (replicated
//! state), the root key that seals key material, and the ARN scope. Operations live in `ops/`,
//! one module per family; this module has what they share.

use crate::derived_cache::DerivedCache;
use crate::usage::UsageTracker;
use crate::{convert, engine};
use kms_core::command::{Command, CommandOutput, decode_result};
use kms_core::ids::{KeyRef, RegionScope};
use kms_core::key::{KeyRecord, MaterialVersion, UnixMillis};
use kms_core::spec::{KeySpec, RotationType};
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use kms_crypto::{RootKeyRing, SecretBytes};
use kms_proto::v1 as pb;
use kms_replication::{Region, ReplicationError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Decoded key records kept at most (a few KB each); past it the cache starts over.
const MAX_CACHED_KEYS: usize = 4096;

/// Wall-clock time as the KMS sees it. Commands carry the proposer's reading, so replicas agree.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixMillis;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// The KMS service of one node.
#[derive(Clone)]
pub struct Kms {
    pub(crate) region: Region,
    /// The root keys: the active one seals, every one unseals (root key rotation).
    pub(crate) root_keys: Arc<RootKeyRing>,
    pub(crate) scope: RegionScope,
    clock: Arc<dyn Clock>,
    usage: Arc<UsageTracker>,
    /// Where every request is recorded ([`Kms::with_audit`]); none in tests that do not audit.
    pub(crate) audit: Option<crate::audit::Auditor>,
    /// Per-principal request rate limits ([`Kms::with_throttle`]); none means unlimited.
    pub(crate) throttle: Option<Arc<crate::throttle::Throttle>>,
    /// Parsed key policies (`authz.rs`).
    pub(crate) policies: Arc<crate::authz::PolicyCache>,
    /// Unsealed material of recently used key versions (`unsealed.rs`).
    pub(crate) materials: Arc<crate::unsealed::MaterialCache>,
    /// Decoded key records, each used only while its stored bytes are the ones it came from: a
    /// read of a record whose bytes did not change does not decode them again.
    keys: Arc<DerivedCache<String, KeyRecord>>,
    /// The key each reference resolved to, each used only while the applied state is at the
    /// version it was read at ([`Region::state_version`]): while nothing is written, a
    /// cryptographic request reads nothing from RocksDB, not even its key's record.
    resolved: Arc<DerivedCache<KeyRef, KeyRecord, u64>>,
    /// Principals registered as integrated services ([`Kms::with_services`]).
    pub(crate) services: Arc<std::collections::BTreeSet<String>>,
    /// The other regions of the deployment ([`Kms::with_peer_regions`]).
    pub(crate) peers: Arc<crate::regions::PeerRegions>,
    /// This region's replication key pairs, derived from the root keys, the active one first:
    /// other regions wrap for the active one, and wraps for a previous one are still accepted
    /// while a root key rotation rolls through the region.
    pub(crate) replication_keys: Arc<Vec<kms_crypto::ReplicationKeyPair>>,
    /// What this node's replicator last saw of each destination region.
    pub(crate) deliveries: Arc<crate::regions::DeliveryLog>,
}

impl Kms {
    pub fn new(region: Region, root_keys: impl Into<RootKeyRing>, scope: RegionScope) -> Self {
        Self::with_clock(region, root_keys, scope, Arc::new(SystemClock))
    }

    /// A service whose notion of "now" comes from `clock` (tests move time forward with it).
    pub fn with_clock(
        region: Region,
        root_keys: impl Into<RootKeyRing>,
        scope: RegionScope,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let root_keys: RootKeyRing = root_keys.into();
        Self {
            region,
            replication_keys: Arc::new(
                root_keys.keys().map(kms_crypto::ReplicationKeyPair::derive).collect(),
            ),
            root_keys: Arc::new(root_keys),
            scope,
            clock,
            usage: Arc::default(),
            audit: None,
            throttle: None,
            policies: Arc::default(),
            materials: Arc::new(crate::unsealed::MaterialCache::new(crate::unsealed::MAX_CACHED_MATERIALS)),
            keys: Arc::new(DerivedCache::new(MAX_CACHED_KEYS)),
            resolved: Arc::new(DerivedCache::new(MAX_CACHED_KEYS)),
            services: Arc::default(),
            peers: Arc::default(),
            deliveries: Arc::default(),
        }
    }

    /// The service, knowing the other regions of its deployment (multi-Region keys).
    pub fn with_peer_regions(mut self, peers: crate::regions::PeerRegions) -> Self {
        self.peers = Arc::new(peers);
        self
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub(crate) fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    /// Replicates `command` and returns what the state machine made of it.
    pub(crate) async fn propose(&self, command: Command) -> KmsResult<CommandOutput> {
        let response = self.region.propose(command.encode()).await.map_err(replication_error)?;
        decode_result(&response)
    }

    pub(crate) async fn propose_key(&self, command: Command) -> KmsResult<KeyRecord> {
        match self.propose(command).await? {
            CommandOutput::Key(key) => Ok(*key),
            other => Err(KmsError::internal(format!("state machine answered {other:?} to a key command"))),
        }
    }

    /// Reads a key by a caller's reference. A miss first waits for this node to catch up with the
    /// leader, so a key created a moment ago through another node is found.
    pub(crate) async fn key(&self, key_id: &str, allow_alias: bool) -> KmsResult<Arc<KeyRecord>> {
        let key_ref = self.scope.parse_key_ref(key_id, allow_alias)?;
        self.resolve(&key_ref).await
    }

    /// The key a reference names, following an alias. A key this node does not have yet is
    /// looked for again after a read barrier (it may have been created through another node).
    pub(crate) async fn resolve(&self, key_ref: &KeyRef) -> KmsResult<Arc<KeyRecord>> {
        match self.read_key(key_ref) {
            Err(err) if err.kind == kms_core::ErrorKind::NotFoundException => {
                self.region.sync_reads().await.map_err(replication_error)?;
                self.read_key(key_ref)
            }
            other => other,
        }
    }

    fn read_key(&self, key_ref: &KeyRef) -> KmsResult<Arc<KeyRecord>> {
        // Taken before the read: what is then read is at least as new as the version it is kept
        // under, so it stays right for as long as the version does.
        let version = self.region.state_version();
        self.resolved.get_or_derive(key_ref, &version, || self.read_key_from_state(key_ref))
    }

    fn read_key_from_state(&self, key_ref: &KeyRef) -> KmsResult<Arc<KeyRecord>> {
        let reader = self.region.reader();
        let keys = Keys::new(&reader);
        let key_id = keys.resolve_id(key_ref)?;
        let bytes = keys.key_bytes(&key_id)?;
        self.keys.get_or_derive(key_id.as_ref(), &bytes, || kms_core::state::decode_key(&bytes))
    }

    /// Notes a successful cryptographic use of `key` for GetKeyLastUsage.
    pub(crate) fn record_use(&self, key: &KeyRecord, operation: &str) {
        self.usage.record(&key.key_id, operation, self.now());
    }

    /// Replicates the uses this node noted since the last call (every node does this).
    pub async fn flush_key_use(&self) {
        let uses = self.usage.take();
        if uses.is_empty() {
            return;
        }
        if let Err(err) = self.propose(Command::RecordKeyUse { uses: uses.clone() }).await {
            tracing::warn!(error = %err, "replicating key last-use records failed; will retry");
            self.usage.restore(uses);
        }
    }

    pub(crate) fn pending_use(&self, key_id: &str) -> Option<kms_core::state::KeyUse> {
        self.usage.pending(key_id)
    }

    pub(crate) fn key_arn(&self, key_id: &str) -> String {
        self.scope.key_arn(key_id)
    }

    pub(crate) fn metadata(&self, key: &KeyRecord) -> pb::KeyMetadata {
        convert::key_metadata(key, &self.scope)
    }

    /// New material for a key of `spec`, sealed for version `version` of `key_id`, and the DER
    /// public key for asymmetric specs (empty otherwise).
    pub(crate) async fn new_material(
        &self,
        key_id: &str,
        spec: KeySpec,
        version: u32,
        rotation_type: Option<RotationType>,
    ) -> KmsResult<(MaterialVersion, Vec<u8>)> {
        let (material, public_key) = engine::generate_material(spec).await?;
        let sealed = kms_crypto::seal(self.root_keys.active(), key_id, version, material.expose())
            .map_err(crypto_error)?;
        let material_id = kms_crypto::random_bytes(32).map_err(crypto_error)?;
        let material = MaterialVersion {
            version,
            material_id: base16ct::lower::encode_string(material_id.expose()),
            sealed,
            created: self.now(),
            rotation_type,
        };
        Ok((material, public_key))
    }

    /// The public key other regions wrap material for: the active root key's pair, first in
    /// `replication_keys` (built in the ring's order, so never empty).
    pub(crate) fn replication_public_key(&self) -> Vec<u8> {
        self.replication_keys.first().map(kms_crypto::ReplicationKeyPair::public_key).unwrap_or_default()
    }

    /// The plaintext material of one version, for the duration of one operation.
    pub(crate) fn unseal(&self, key: &KeyRecord, material: &MaterialVersion) -> KmsResult<SecretBytes> {
        kms_crypto::unseal(&self.root_keys, &key.key_id, material.version, &material.sealed)
            .map_err(crypto_error)
    }
}

/// Replication failures are the service's fault. Transient ones (no leader, no quorum, a peer
/// unreachable, a deadline) are `DependencyTimeoutException`, which the gRPC front end answers
/// as UNAVAILABLE: the caller should retry, possibly on another node. A timed-out write has an
/// unknown outcome (it may still commit).
pub(crate) fn replication_error(err: ReplicationError) -> KmsError {
    if err.is_retryable() {
        let hint = match &err {
            ReplicationError::NotLeader { leader_id: Some(leader), .. } => {
                format!(" (the region's leader is node {leader})")
            }
            _ => String::new(),
        };
        KmsError::dependency_timeout(format!("the region cannot serve this now, retry: {err}{hint}"))
    } else {
        KmsError::internal(err.to_string())
    }
}

pub(crate) fn crypto_error(err: kms_crypto::CryptoError) -> KmsError {
    match err {
        kms_crypto::CryptoError::InvalidCiphertext => KmsError::invalid_ciphertext(err.to_string()),
        kms_crypto::CryptoError::InvalidInput(_) => KmsError::validation(err.to_string()),
        kms_crypto::CryptoError::Internal(_) => KmsError::internal(err.to_string()),
    }
}
