//! The sending side: the leader of a region delivers its outbox to every other region.
//!
//! One task per destination region, so a slow or unreachable region delays only its own
//! updates. Every tick, on the leader only, if the destination has a backlog: read the oldest entries,
//! turn each into the key's *current* shared properties with every material unsealed and
//! rewrapped for the destination's replication key, push them, and trim what the destination
//! committed. Entries stay in the outbox (replicated state) until then, so a leader change or a
//! destination outage only delays them; they go out in order when a leader can reach the
//! destination again. Nothing here is kept across ticks but the destinations' public keys.

use std::time::Duration;

use kms_core::command::Command;
use kms_core::multi_region::{Outbox, OutboxEntry, RegionMessage, ReplicaUpdate};
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use kms_crypto::{WrapBinding, wrap_for_region};
use kms_proto::region::v1 as pb;
use kms_proto::region::v1::region_replication_client::RegionReplicationClient;
use tokio::sync::watch;

use super::service::MAX_ENTRIES_PER_PUSH;
use crate::kms::Kms;

/// How often the leader looks at its outbox.
pub const TICK: Duration = Duration::from_millis(200);
/// How long one push (or public-key fetch) may take before it counts as failed.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a backlog for a region without a configured endpoint is reported.
const UNKNOWN_DESTINATION_WARNING: Duration = Duration::from_secs(60);

/// Runs one delivery task per configured region until `stop` turns true.
pub async fn run(kms: Kms, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for destination in kms.peers.names() {
        let replicator =
            Replicator { kms: kms.clone(), destination: destination.to_string(), public_key: None };
        tasks.push(tokio::spawn(replicator.run(stop.clone())));
    }
    warn_about_unknown_destinations(&kms, stop).await;
    for task in tasks {
        let _ = task.await;
    }
}

/// A region's outbox may owe a region this node has no endpoint for (a replica made from
/// another region, then a promotion here): say so now and then, on the leader.
async fn warn_about_unknown_destinations(kms: &Kms, mut stop: watch::Receiver<bool>) {
    while wait_unless_stopped(UNKNOWN_DESTINATION_WARNING, &mut stop).await {
        if !kms.region().is_leader() {
            continue;
        }
        let Ok(backlog) = Outbox::new(&kms.region().reader()).backlog() else { continue };
        for (destination, pending) in backlog.iter().filter(|(d, _)| !kms.peers.contains(d)) {
            tracing::warn!(
                destination = %destination,
                entries = pending.entries,
                "multi-Region key updates are queued for a region this node has no endpoint for; \
                 add [regions.{destination}] to the configuration"
            );
        }
    }
}

/// Waits `period`; false as soon as `stop` turns true instead.
async fn wait_unless_stopped(period: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Delivers this region's outbox to one destination.
struct Replicator {
    kms: Kms,
    destination: String,
    /// The destination's replication public key, fetched on first use and again when refused.
    public_key: Option<Vec<u8>>,
}

impl Replicator {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while wait_unless_stopped(TICK, &mut stop).await {
            self.tick().await;
        }
    }

    async fn tick(&mut self) {
        if !self.kms.region().is_leader() {
            return;
        }
        let destination = self.destination.clone();
        let pending = match Outbox::new(&self.kms.region().reader()).backlog_of(&destination) {
            Ok(pending) => pending,
            Err(err) => {
                tracing::warn!(error = %err, "reading the replication outbox failed; will retry");
                return;
            }
        };
        let metrics = crate::metrics::installed();
        if let Some(metrics) = metrics {
            metrics.observe_outbox(
                &destination,
                pending.entries,
                pending.lag_ms(self.kms.now()) as f64 / 1000.0,
            );
        }
        if pending.entries == 0 {
            return;
        }
        let result = self.deliver(&destination).await;
        self.kms.deliveries.record(&destination, self.kms.now(), &result);
        if let Some(metrics) = metrics {
            metrics.record_push(&destination, result.is_ok().then(|| self.kms.now() as f64 / 1000.0));
        }
        if let Err(err) = result {
            tracing::warn!(destination = %destination, error = %err, "replicating multi-Region keys failed; will retry");
        }
    }

    /// One batch of `destination`'s backlog: pushed, then trimmed.
    async fn deliver(&mut self, destination: &str) -> Result<(), String> {
        let entries = Outbox::new(&self.kms.region().reader())
            .entries(destination, MAX_ENTRIES_PER_PUSH)
            .map_err(|e| e.to_string())?;
        let Some(last) = entries.last().map(|e| e.seq) else { return Ok(()) };
        let channel = self.kms.peers.channel(destination).ok_or("no endpoint configured")?;
        let mut client = RegionReplicationClient::new(channel);
        let public_key = self.public_key(&mut client, destination).await?;
        let mut pushed = Vec::with_capacity(entries.len());
        for entry in coalesce(entries) {
            if let Some(update) =
                self.update_for(destination, &public_key, &entry).map_err(|e| e.to_string())?
            {
                pushed.push(pb::Entry { seq: entry.seq, update });
            }
        }
        let sent_through = pushed.last().map(|e| e.seq);
        if sent_through.is_some() {
            let request = pb::PushRequest {
                source_region: self.kms.scope.region.clone(),
                destination_region: destination.to_string(),
                wrapped_for: public_key,
                entries: pushed,
            };
            let answer = tokio::time::timeout(PUSH_TIMEOUT, client.push(request))
                .await
                .map_err(|_| format!("no answer within {PUSH_TIMEOUT:?}"))?;
            let applied = match answer {
                Ok(response) => response.into_inner().applied_through,
                Err(status) => {
                    if status.code() == tonic::Code::FailedPrecondition {
                        self.public_key = None;
                    }
                    return Err(format!("{}: {}", status.code(), status.message()));
                }
            };
            if Some(applied) != sent_through {
                return Err(format!("{destination} committed through {applied}, not {sent_through:?}"));
            }
        }
        // Entries of keys deleted here meanwhile had nothing to send; they are trimmed as well.
        let trim = Command::TrimOutbox { destination_region: destination.to_string(), through_seq: last };
        self.kms.propose(trim).await.map_err(|e| format!("trimming the outbox: {e}"))?;
        Ok(())
    }

    async fn public_key(
        &mut self,
        client: &mut RegionReplicationClient<tonic::transport::Channel>,
        destination: &str,
    ) -> Result<Vec<u8>, String> {
        if let Some(key) = &self.public_key {
            return Ok(key.clone());
        }
        let key = fetch_public_key(client, destination).await?;
        self.public_key = Some(key.clone());
        Ok(key)
    }

    /// The JSON body for `entry`: the news of a deleted replica, or the key's current shared
    /// properties with its material wrapped for `destination` (`None` when the key no longer
    /// exists here).
    fn update_for(
        &self,
        destination: &str,
        public_key: &[u8],
        entry: &OutboxEntry,
    ) -> KmsResult<Option<Vec<u8>>> {
        if entry.replica_deleted {
            return encode(&RegionMessage::ReplicaDeleted { key_id: entry.key_id.clone() }).map(Some);
        }
        let Some(key) = Keys::new(&self.kms.region().reader()).get_key(&entry.key_id)? else {
            return Ok(None);
        };
        let mut update = ReplicaUpdate::of(&key, entry.init.clone())?;
        for material in &mut update.materials {
            let secret = self.kms.unseal(&key, material)?;
            let binding = WrapBinding {
                source_region: &self.kms.scope.region,
                destination_region: destination,
                key_id: &key.key_id,
                material_version: material.version,
            };
            material.sealed = wrap_for_region(public_key, &binding, secret.expose())
                .map_err(|e| KmsError::internal(format!("wrapping material for {destination}: {e}")))?;
        }
        encode(&RegionMessage::Update(Box::new(update))).map(Some)
    }
}

/// One entry per key and kind, at the position of its last entry: an update carries the key's
/// whole current state, so earlier entries of the same key in a batch would only unseal and
/// rewrap the same material again (a backlog after an outage is mostly such repeats). A new
/// replica's initial properties move to the surviving entry, so the replica is still created.
fn coalesce(entries: Vec<OutboxEntry>) -> Vec<OutboxEntry> {
    let mut kept: Vec<OutboxEntry> = Vec::with_capacity(entries.len());
    for mut entry in entries {
        let earlier =
            kept.iter().position(|k| k.key_id == entry.key_id && k.replica_deleted == entry.replica_deleted);
        if let Some(index) = earlier {
            entry.init = entry.init.or(kept.remove(index).init);
        }
        kept.push(entry);
    }
    kept
}

/// `destination`'s replication public key, checking that the endpoint is that region's.
pub(crate) async fn fetch_public_key(
    client: &mut RegionReplicationClient<tonic::transport::Channel>,
    destination: &str,
) -> Result<Vec<u8>, String> {
    let answer =
        tokio::time::timeout(PUSH_TIMEOUT, client.get_replication_key(pb::GetReplicationKeyRequest {}))
            .await
            .map_err(|_| format!("no answer within {PUSH_TIMEOUT:?}"))?
            .map_err(|status| format!("{}: {}", status.code(), status.message()))?
            .into_inner();
    if answer.region != destination {
        return Err(format!(
            "the endpoint configured for region {destination} belongs to region {}",
            answer.region
        ));
    }
    Ok(answer.public_key)
}

/// Tells `destination` at once that a replica of `update.key_id` is on its way: it creates the
/// replica in Creating (or answers AlreadyExists), before ReplicateKey commits here. The
/// announcement carries no material; the outbox delivers it.
pub(crate) async fn announce_replica(kms: &Kms, destination: &str, update: ReplicaUpdate) -> KmsResult<()> {
    let unreachable = |why: String| {
        KmsError::dependency_timeout(format!(
            "region {destination} did not take the new replica ({why}); retry when it is reachable"
        ))
    };
    let channel =
        kms.peers.channel(destination).ok_or_else(|| unreachable("no endpoint configured".into()))?;
    let mut client = RegionReplicationClient::new(channel);
    let public_key = fetch_public_key(&mut client, destination).await.map_err(unreachable)?;
    let request = pb::PushRequest {
        source_region: kms.scope.region.clone(),
        destination_region: destination.to_string(),
        wrapped_for: public_key,
        entries: vec![pb::Entry { seq: 0, update: encode(&RegionMessage::Update(Box::new(update)))? }],
    };
    match tokio::time::timeout(PUSH_TIMEOUT, client.push(request)).await {
        Err(_) => Err(unreachable(format!("no answer within {PUSH_TIMEOUT:?}"))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) if status.code() == tonic::Code::AlreadyExists => {
            Err(KmsError::already_exists(format!("{destination}: {}", status.message())))
        }
        Ok(Err(status)) => Err(unreachable(format!("{}: {}", status.code(), status.message()))),
    }
}

fn encode(message: &RegionMessage) -> KmsResult<Vec<u8>> {
    serde_json::to_vec(message).map_err(|e| KmsError::internal(format!("encoding a region message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_core::multi_region::ReplicaInit;

    fn entry(seq: u64, key_id: &str, init: bool, replica_deleted: bool) -> OutboxEntry {
        let init = init.then(|| ReplicaInit { description: format!("from {seq}"), ..ReplicaInit::default() });
        OutboxEntry { seq, key_id: key_id.into(), init, replica_deleted, queued: seq }
    }

    #[test]
    fn coalesce_keeps_the_last_entry_of_each_key_with_its_initial_properties() {
        let kept = coalesce(vec![
            entry(1, "k1", true, false),
            entry(2, "k2", false, false),
            entry(3, "k1", false, false),
            entry(4, "k1", false, true),
            entry(5, "k2", false, false),
        ]);
        let view: Vec<(u64, &str, Option<&str>, bool)> = kept
            .iter()
            .map(|e| {
                (e.seq, e.key_id.as_str(), e.init.as_ref().map(|i| i.description.as_str()), e.replica_deleted)
            })
            .collect();
        assert_eq!(view, [(3, "k1", Some("from 1"), false), (4, "k1", None, true), (5, "k2", None, false)]);
    }
}
