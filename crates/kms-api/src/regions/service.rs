//! The receiving side: kms.region.v1 `RegionReplication`, served on the client API port.
//!
//! A push is admitted only from a node of the region it claims to come from (its certificate's
//! URI SAN is `kms://<source>/node`), for this region, with material wrapped for this region's
//! current replication key. Each entry's material is unwrapped, resealed under this region's
//! root key, and proposed as one `ApplyReplicaUpdate` command; the answer names the last entry
//! committed, so the sender trims exactly what arrived.

use std::sync::Arc;

use kms_core::command::Command;
use kms_core::ids::is_multi_region_key_id;
use kms_core::multi_region::{Outbox, RegionMessage, ReplicaUpdate};
use kms_crypto::{ReplicationKeyPair, WrapBinding};
use kms_proto::region::v1 as pb;
use kms_proto::region::v1::region_replication_server::{RegionReplication, RegionReplicationServer};
use tonic::{Request, Response, Status};

use crate::authn::{Authenticator, node_principal};
use crate::grpc::{MAX_REQUEST_BYTES, authenticate, check_admin, status};
use crate::kms::Kms;

/// The most entries one push may carry (a sender batches below this).
pub const MAX_ENTRIES_PER_PUSH: usize = 64;

/// The service adapter. Cheap to clone.
#[derive(Clone)]
pub struct ReplicationService {
    kms: Kms,
    authn: Arc<Authenticator>,
}

impl ReplicationService {
    pub fn new(kms: Kms, authn: Arc<Authenticator>) -> Self {
        Self { kms, authn }
    }

    /// The tonic service. A push of 64 updates of keys with 27 material versions is ~300 KiB.
    pub fn into_service(self) -> RegionReplicationServer<Self> {
        RegionReplicationServer::new(self).max_decoding_message_size(8 * MAX_REQUEST_BYTES)
    }

    /// Refuses a caller that is not a node of `source` (any authenticated caller may read the
    /// public key). Without TLS and tokens (dev, loopback) every caller is anonymous and admitted.
    fn admit<T>(&self, request: &Request<T>, source: Option<&str>) -> Result<(), Status> {
        let principal = authenticate(&self.authn, request)?;
        match source {
            Some(source) if !self.authn.allows_anonymous() && principal != node_principal(source) => {
                Err(Status::permission_denied(format!(
                    "only the nodes of region {source} may deliver its updates, not {principal}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The command that applies an entry's message here, material resealed under this region's
    /// root key.
    fn command(
        &self,
        source: &str,
        pair: &ReplicationKeyPair,
        seq: u64,
        body: &[u8],
    ) -> Result<Command, Status> {
        let message: RegionMessage = serde_json::from_slice(body)
            .map_err(|e| Status::invalid_argument(format!("undecodable region message: {e}")))?;
        let (source_region, now) = (source.to_string(), self.kms.now());
        Ok(match message {
            RegionMessage::Update(update) => Command::ApplyReplicaUpdate {
                source_region,
                seq,
                update: self.reseal(source, pair, *update)?,
                now,
            },
            RegionMessage::ReplicaDeleted { key_id } => {
                Command::ApplyReplicaDeleted { source_region, seq, key_id, now }
            }
        })
    }

    /// `update` with its material resealed under this region's root key.
    fn reseal(
        &self,
        source: &str,
        pair: &ReplicationKeyPair,
        mut update: ReplicaUpdate,
    ) -> Result<ReplicaUpdate, Status> {
        if !is_multi_region_key_id(&update.key_id) {
            return Err(Status::invalid_argument(format!("{} is not a multi-Region key id", update.key_id)));
        }
        let region = &self.kms.scope.region;
        for (index, material) in update.materials.iter_mut().enumerate() {
            if material.version as usize != index {
                return Err(Status::invalid_argument("material versions of an update must be 0, 1, 2, ..."));
            }
            let binding = WrapBinding {
                source_region: source,
                destination_region: region,
                key_id: &update.key_id,
                material_version: material.version,
            };
            let secret = pair.unwrap(&binding, &material.sealed).map_err(|_| {
                Status::invalid_argument(format!(
                    "material version {} of {} does not open with this region's replication key",
                    material.version, update.key_id
                ))
            })?;
            material.sealed = kms_crypto::seal(
                self.kms.root_keys.active(),
                &update.key_id,
                material.version,
                secret.expose(),
            )
            .map_err(|e| status(kms_core::KmsError::internal(format!("sealing replicated material: {e}"))))?;
        }
        Ok(update)
    }
}

#[tonic::async_trait]
impl RegionReplication for ReplicationService {
    async fn get_replication_key(
        &self,
        request: Request<pb::GetReplicationKeyRequest>,
    ) -> Result<Response<pb::GetReplicationKeyResponse>, Status> {
        self.admit(&request, None)?;
        Ok(Response::new(pb::GetReplicationKeyResponse {
            region: self.kms.scope.region.clone(),
            public_key: self.kms.replication_public_key(),
        }))
    }

    async fn get_replication_status(
        &self,
        request: Request<pb::GetReplicationStatusRequest>,
    ) -> Result<Response<pb::GetReplicationStatusResponse>, Status> {
        check_admin(&self.authn, &request)?;
        let reader = self.kms.region().reader();
        let outbox = Outbox::new(&reader);
        let now = self.kms.now();
        let destinations = self
            .kms
            .peers
            .names()
            .map(|region| {
                let pending = outbox.backlog_of(region)?;
                let delivery = self.kms.deliveries.get(region);
                Ok(pb::Destination {
                    region: region.to_string(),
                    outbox_entries: pending.entries,
                    lag_ms: pending.lag_ms(now),
                    last_push_unix_ms: delivery.last_success_ms,
                    last_error: delivery.last_error,
                })
            })
            .collect::<kms_core::KmsResult<Vec<_>>>()
            .map_err(status)?;
        let sources = self
            .kms
            .peers
            .names()
            .map(|region| {
                Ok(pb::Source { region: region.to_string(), applied_through: outbox.applied_from(region)? })
            })
            .collect::<kms_core::KmsResult<Vec<_>>>()
            .map_err(status)?;
        Ok(Response::new(pb::GetReplicationStatusResponse {
            region: self.kms.scope.region.clone(),
            destinations,
            sources,
        }))
    }

    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        let source = request.get_ref().source_region.clone();
        self.admit(&request, Some(&source))?;
        let push = request.into_inner();
        let region = &self.kms.scope.region;
        if push.destination_region != *region {
            return Err(Status::failed_precondition(format!(
                "this is region {region}, not {}: check [regions.{}] endpoint in {source}'s configuration",
                push.destination_region, push.destination_region
            )));
        }
        if source == *region || !self.kms.peers.contains(&source) {
            return Err(Status::permission_denied(format!(
                "region {source} is not another region of this deployment; add it under [regions.{source}]"
            )));
        }
        // Any of this node's pairs: during a root key rotation the sender may have fetched the
        // new active key from a node that already has it, or still hold the previous one.
        let Some(pair) = self.kms.replication_keys.iter().find(|pair| pair.public_key() == push.wrapped_for)
        else {
            return Err(Status::failed_precondition(
                "the material is wrapped for another replication key of this region; fetch it again",
            ));
        };
        if push.entries.len() > MAX_ENTRIES_PER_PUSH {
            return Err(Status::invalid_argument(format!("at most {MAX_ENTRIES_PER_PUSH} entries per push")));
        }
        let mut applied_through = 0;
        for entry in push.entries {
            let command = self.command(&source, pair, entry.seq, &entry.update)?;
            self.kms.propose(command).await.map_err(status)?;
            applied_through = entry.seq;
        }
        Ok(Response::new(pb::PushResponse { applied_through }))
    }
}
