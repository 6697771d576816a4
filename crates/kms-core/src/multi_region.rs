//! Multi-Region keys: the properties related keys share across regions, the outbox in which a
//! region keeps what it still owes the others, and how a region applies what another sent.
//!
//! Replication is *state-based*: an update carries the key's complete shared properties
//! (material versions, spec, usage, origin, rotation settings, the primary and replica regions)
//! at one [`MultiRegionConfig::rank`]. A region applies an update only if it outranks what it
//! holds, so a duplicated, replayed or reordered delivery changes nothing, and the last update
//! applied always describes the whole key. Per-region properties (policy, grants, aliases, tags,
//! description, enabled state, deletion) are never in an update.
//!
//! The outbox lives in the region's replicated state, one ordered queue per destination region:
//! the command that changes a shared property also queues the key for every other region, in
//! the same atomic write, so a leader change between the two cannot lose a change. The leader's
//! replicator reads the queue, sends each key's *current* shared properties, and trims what the
//! destination acknowledged.
//!
//! Layout: `o/<destination>/<seq, 20 digits>` → [`OutboxEntry`]; `q/<destination>` → the next
//! sequence number; `i/<source>` → the highest sequence number applied from that source.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{CommandOutput, CommandResult};
use crate::error::{KmsError, KmsResult};
use crate::key::{KeyChange, KeyRecord, MaterialVersion, RotationSchedule, UnixMillis};
use crate::spec::{KeySpec, KeyState, KeyUsage, Origin};
use crate::state::{self, Keys, decode, prefix_end};
use crate::store::{StateRead, StateWrite};

const OUTBOX_PREFIX: &[u8] = b"o/";
const OUTBOX_SEQ_PREFIX: &[u8] = b"q/";
const INBOX_PREFIX: &[u8] = b"i/";

/// The multi-Region facts of an `mrk-` key, the same in every region once replication settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegionConfig {
    pub primary_region: String,
    /// The regions holding a replica, as the primary knows them.
    pub replica_regions: BTreeSet<String>,
    /// Starts at 1 and grows with every change of primary region, so that what an old primary
    /// sends after losing that role is recognisably stale.
    pub epoch: u64,
    /// Grows with every change of the shared properties within an epoch.
    pub version: u64,
}

impl MultiRegionConfig {
    /// A new multi-Region primary key in `region`, without replicas.
    pub fn new_primary(region: &str) -> Self {
        Self { primary_region: region.to_string(), replica_regions: BTreeSet::new(), epoch: 1, version: 1 }
    }

    /// The order in which updates supersede each other: a later epoch wins, then a later version.
    /// The primary's name breaks the tie of two regions promoted by force in the same epoch, so
    /// every region settles on the same one.
    pub fn rank(&self) -> (u64, u64, &str) {
        (self.epoch, self.version, &self.primary_region)
    }

    pub fn is_primary(&self, region: &str) -> bool {
        self.primary_region == region
    }

    /// Every region that holds a related key, except `region`.
    pub fn other_regions(&self, region: &str) -> Vec<String> {
        std::iter::once(&self.primary_region)
            .chain(&self.replica_regions)
            .filter(|r| r.as_str() != region)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// The per-region properties a new replica starts with (ReplicateKey's Policy, Description and
/// Tags: AWS copies none of them from the primary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInit {
    pub description: String,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What one region tells another about a multi-Region key: its shared properties at
/// `config.rank()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaUpdate {
    pub key_id: String,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    #[serde(default, with = "crate::bytes")]
    pub public_key: Vec<u8>,
    pub rotation: RotationSchedule,
    pub config: MultiRegionConfig,
    /// Every material version, oldest first. On the wire between regions `sealed` holds the
    /// material wrapped for the destination region; in the command that applies the update it is
    /// sealed under the receiving region's root key, like all material at rest. Imported
    /// material never travels (AWS: import the same material into each replica).
    pub materials: Vec<MaterialVersion>,
    /// Set when the update creates the replica (ReplicateKey).
    pub init: Option<ReplicaInit>,
    /// ReplicateKey's announcement to the replica's region, before the primary commits: creates
    /// the replica in Creating, without material (the outbox brings it), or fails if the region
    /// already holds the key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub announcement: bool,
}

impl ReplicaUpdate {
    /// The shared properties of `key` as this region holds them; `materials` still sealed under
    /// this region's root key, for the sender to rewrap.
    pub fn of(key: &KeyRecord, init: Option<ReplicaInit>) -> KmsResult<Self> {
        let config = key.multi_region_config.clone().ok_or_else(|| not_multi_region(&key.key_id))?;
        let materials = if key.origin == Origin::External { Vec::new() } else { key.materials.clone() };
        Ok(Self {
            key_id: key.key_id.clone(),
            key_spec: key.key_spec,
            key_usage: key.key_usage,
            origin: key.origin,
            public_key: key.public_key.clone(),
            rotation: key.rotation.clone(),
            config,
            materials,
            init,
            announcement: false,
        })
    }

    /// This update as ReplicateKey's announcement of a replica in `replica_region` (see
    /// `announcement`): without material, ranked with the primary's current version, so the
    /// outbox's update, one version later, completes the replica.
    pub fn into_announcement(mut self, replica_region: &str) -> Self {
        self.materials.clear();
        self.config.replica_regions.insert(replica_region.to_string());
        self.announcement = true;
        self
    }
}

/// One key a destination region is owed: its current shared properties, and for a new replica
/// its initial per-region properties; or, sent to the primary's region, the news that this
/// region's replica was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub key_id: String,
    pub init: Option<ReplicaInit>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replica_deleted: bool,
    /// When the change was made (the proposer's clock): replication lag is measured from here.
    pub queued: UnixMillis,
}

impl OutboxEntry {
    fn owed(key_id: &str, init: Option<ReplicaInit>, replica_deleted: bool, now: UnixMillis) -> Self {
        Self { seq: 0, key_id: key_id.to_string(), init, replica_deleted, queued: now }
    }
}

/// What one region sends another about a key (the body of a pushed entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionMessage {
    Update(Box<ReplicaUpdate>),
    /// The sending region's replica of `key_id` was deleted; sent to the primary's region.
    ReplicaDeleted {
        key_id: String,
    },
}

/// What the outbox holds for one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub entries: u64,
    /// When the oldest entry was queued.
    pub oldest_queued: Option<UnixMillis>,
}

impl OutboxBacklog {
    /// How long the oldest entry has waited at `now` (0 when nothing waits): the replication lag.
    pub fn lag_ms(&self, now: UnixMillis) -> u64 {
        self.oldest_queued.map_or(0, |queued| now.saturating_sub(queued))
    }
}

fn not_multi_region(key_id: &str) -> KmsError {
    KmsError::unsupported(format!("{key_id} is not a multi-Region key"))
}

fn not_primary(key: &KeyRecord, config: &MultiRegionConfig, operation: &str) -> KmsError {
    KmsError::unsupported(format!(
        "{operation} is allowed only on the primary key of a multi-Region key; {} is a replica whose \
         primary is in {}",
        key.key_id, config.primary_region
    ))
}

fn outbox_prefix(destination: &str) -> Vec<u8> {
    [OUTBOX_PREFIX, destination.as_bytes(), b"/"].concat()
}

fn outbox_key(destination: &str, seq: u64) -> Vec<u8> {
    [outbox_prefix(destination), format!("{seq:020}").into_bytes()].concat()
}

fn prefixed(prefix: &[u8], name: &str) -> Vec<u8> {
    [prefix, name.as_bytes()].concat()
}

fn read_u64(state: &(impl StateRead + ?Sized), key: &[u8]) -> KmsResult<u64> {
    Ok(state
        .get(key)?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Read-side queries over the outbox and inbox.
pub struct Outbox<'a, S: StateRead + ?Sized> {
    state: &'a S,
}

impl<'a, S: StateRead + ?Sized> Outbox<'a, S> {
    pub fn new(state: &'a S) -> Self {
        Self { state }
    }

    /// The first `limit` entries owed to `destination`, in order.
    pub fn entries(&self, destination: &str, limit: usize) -> KmsResult<Vec<OutboxEntry>> {
        let prefix = outbox_prefix(destination);
        let entries = self.state.scan(&prefix, &prefix_end(&prefix), limit)?;
        entries.iter().map(|(_, value)| decode("outbox entry", value)).collect()
    }

    /// What `destination` is owed. Two reads, whatever the backlog: entries are numbered
    /// consecutively and trimmed only from the front, so they run from the oldest entry's number
    /// to the last number given out.
    pub fn backlog_of(&self, destination: &str) -> KmsResult<OutboxBacklog> {
        let Some(oldest) = self.entries(destination, 1)?.pop() else { return Ok(OutboxBacklog::default()) };
        let last = read_u64(self.state, &prefixed(OUTBOX_SEQ_PREFIX, destination))?;
        Ok(OutboxBacklog { entries: last.saturating_sub(oldest.seq) + 1, oldest_queued: Some(oldest.queued) })
    }

    /// The backlog of every destination that has one.
    pub fn backlog(&self) -> KmsResult<BTreeMap<String, OutboxBacklog>> {
        let counters = self.state.scan(OUTBOX_SEQ_PREFIX, &prefix_end(OUTBOX_SEQ_PREFIX), usize::MAX)?;
        let mut backlog = BTreeMap::new();
        for (key, _) in counters {
            let destination = String::from_utf8_lossy(&key[OUTBOX_SEQ_PREFIX.len()..]).into_owned();
            let pending = self.backlog_of(&destination)?;
            if pending.entries > 0 {
                backlog.insert(destination, pending);
            }
        }
        Ok(backlog)
    }

    /// The highest sequence number applied from `source` (0 before the first).
    pub fn applied_from(&self, source: &str) -> KmsResult<u64> {
        read_u64(self.state, &prefixed(INBOX_PREFIX, source))
    }
}

/// Queues `entries` for `destination`, numbering them. Call once per destination per command:
/// reads during `apply` do not see this command's own writes, so a second call would reuse
/// the same numbers.
fn enqueue(state: &mut dyn StateWrite, destination: &str, entries: Vec<OutboxEntry>) -> KmsResult<()> {
    let seq_key = prefixed(OUTBOX_SEQ_PREFIX, destination);
    let mut seq = read_u64(&*state, &seq_key)?;
    for mut entry in entries {
        seq += 1;
        entry.seq = seq;
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| KmsError::internal(format!("encode outbox entry: {e}")))?;
        state.put(&outbox_key(destination, seq), &bytes);
    }
    state.put(&seq_key, &seq.to_be_bytes());
    Ok(())
}

/// Makes `config` the key's and queues the key for every other region that holds it, with
/// `new_replica`'s initial properties for that region only.
fn publish(
    region: &str,
    key: &mut KeyRecord,
    config: MultiRegionConfig,
    new_replica: Option<(&str, ReplicaInit)>,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> KmsResult<()> {
    for destination in config.other_regions(region) {
        let init = new_replica.as_ref().filter(|(r, _)| *r == destination).map(|(_, init)| init.clone());
        enqueue(state, &destination, vec![OutboxEntry::owed(&key.key_id, init, false, now)])?;
    }
    key.multi_region_config = Some(config);
    Ok(())
}

/// Notes that `source`'s outbox entry `seq` was applied here (reported by GetReplicationStatus).
fn note_applied(source: &str, seq: u64, state: &mut dyn StateWrite) -> KmsResult<()> {
    let inbox_key = prefixed(INBOX_PREFIX, source);
    if seq > read_u64(&*state, &inbox_key)? {
        state.put(&inbox_key, &seq.to_be_bytes());
    }
    Ok(())
}

/// Refuses a change of a shared property anywhere but in the primary region.
pub fn check_change(region: &str, key: &KeyRecord, change: &KeyChange) -> KmsResult<()> {
    match &key.multi_region_config {
        Some(config) if change.is_shared() && !config.is_primary(region) => {
            Err(not_primary(key, config, change.operation()))
        }
        _ => Ok(()),
    }
}

/// After a change of a primary key: a shared property's change is a new version, queued for
/// every replica; a deletion scheduled while replicas exist waits for them, without a date
/// (PendingReplicaDeletion).
pub fn note_change(
    region: &str,
    key: &mut KeyRecord,
    change: &KeyChange,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> KmsResult<()> {
    let Some(mut config) = key.multi_region_config.clone().filter(|c| c.is_primary(region)) else {
        return Ok(());
    };
    if matches!(change, KeyChange::ScheduleDeletion { .. }) && !config.replica_regions.is_empty() {
        key.state = KeyState::PendingReplicaDeletion;
        key.deletion_date = None;
        return Ok(());
    }
    if !change.is_shared() {
        return Ok(());
    }
    config.version += 1;
    publish(region, key, config, None, now, state)
}

/// Whether `key` may be replicated from `region` to `replica_region` now: a usable primary here,
/// without a related key there.
pub fn check_replicable(region: &str, key: &KeyRecord, replica_region: &str) -> KmsResult<()> {
    let config = key.multi_region_config.as_ref().ok_or_else(|| not_multi_region(&key.key_id))?;
    if !config.is_primary(region) {
        return Err(not_primary(key, config, "ReplicateKey"));
    }
    key.check_usable()?;
    if replica_region == region || config.replica_regions.contains(replica_region) {
        return Err(KmsError::already_exists(format!(
            "multi-Region key {} already has a related key in {replica_region}",
            key.key_id
        )));
    }
    Ok(())
}

/// ReplicateKey, applied in the primary's region: the replica region joins the key's regions
/// and is queued the key with the replica's own initial properties; the other replicas are
/// queued the new replica list.
pub fn replicate_key(
    region: &str,
    key_id: &str,
    replica_region: &str,
    init: &ReplicaInit,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let mut key = Keys::new(&*state).key(key_id)?;
    check_replicable(region, &key, replica_region)?;
    let mut config = key.multi_region_config.clone().ok_or_else(|| not_multi_region(key_id))?;
    config.replica_regions.insert(replica_region.to_string());
    config.version += 1;
    publish(region, &mut key, config, Some((replica_region, init.clone())), now, state)?;
    state::put_key(state, &key);
    Ok(CommandOutput::Key(Box::new(key)))
}

/// UpdatePrimaryRegion. Without `force`, applied in the current primary's region: `new_primary`
/// (a replica) becomes the primary and this region a replica. With `force` (disaster recovery,
/// the primary region unreachable), applied in `new_primary` itself, which takes the role. Both
/// start a new epoch and queue it for every other region; an old primary that comes back
/// receives the new epoch and becomes a replica.
pub fn update_primary_region(
    region: &str,
    key_id: &str,
    new_primary: &str,
    force: bool,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let mut key = Keys::new(&*state).key(key_id)?;
    let mut config = key.multi_region_config.clone().ok_or_else(|| not_multi_region(key_id))?;
    key.check_usable()?;
    if config.is_primary(new_primary) {
        return Ok(CommandOutput::Key(Box::new(key)));
    }
    if !config.replica_regions.contains(new_primary) {
        return Err(KmsError::validation(format!(
            "{new_primary} holds no replica of multi-Region key {key_id}; replicate the key there first"
        )));
    }
    if force {
        if new_primary != region {
            return Err(KmsError::validation(format!(
                "a forced UpdatePrimaryRegion promotes the replica it is sent to: send it to {new_primary}, \
                 not to {region}"
            )));
        }
    } else if !config.is_primary(region) {
        return Err(not_primary(&key, &config, "UpdatePrimaryRegion"));
    }
    let old_primary = std::mem::replace(&mut config.primary_region, new_primary.to_string());
    config.replica_regions.remove(new_primary);
    config.replica_regions.insert(old_primary);
    config.epoch += 1;
    config.version = 1;
    publish(region, &mut key, config, None, now, state)?;
    state::put_key(state, &key);
    Ok(CommandOutput::Key(Box::new(key)))
}

/// Applies an update `source` sent (its outbox entry `seq`), in the receiving `region`.
///
/// Creates the replica when the update carries its initial properties and the key is new here;
/// otherwise takes the shared properties if they outrank the local ones, and ignores them if not
/// (a duplicate, or news from a primary that has since lost its role). Material versions the
/// local copy lacks are added; a local version that differs from the update's (made by a primary
/// cut off from a forced promotion) is kept aside in `divergent_materials`, so what it encrypted
/// still decrypts in this region.
pub fn apply_update(
    region: &str,
    source: &str,
    seq: u64,
    update: &ReplicaUpdate,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    note_applied(source, seq, state)?;
    let existing = Keys::new(&*state).get_key(&update.key_id)?;
    let key = match existing {
        None => match &update.init {
            Some(init) if update.config.replica_regions.contains(region) => replica_record(update, init, now),
            // A replica deleted here, or news of a key this region never held: nothing to do.
            _ => return Ok(CommandOutput::Done),
        },
        // A replica announced before but never completed (the primary's command failed after
        // the announcement): announced again, afresh.
        Some(key) if update.announcement && key.state == KeyState::Creating => match &update.init {
            Some(init) => replica_record(update, init, now),
            None => return Ok(CommandOutput::Done),
        },
        Some(key) if update.announcement => {
            return Err(KmsError::already_exists(format!(
                "{region} already holds {} (state {}); a region holds one related key at most",
                key.key_id, key.state
            )));
        }
        Some(mut key) => {
            let current = key.multi_region_config.as_ref().ok_or_else(|| not_multi_region(&key.key_id))?;
            if update.config.rank() <= current.rank() {
                return Ok(CommandOutput::Done);
            }
            take_shared(&mut key, update);
            if key.state == KeyState::Creating {
                key.state =
                    if key.materials.is_empty() { KeyState::PendingImport } else { KeyState::Enabled };
            }
            key
        }
    };
    state::put_key(state, &key);
    Ok(CommandOutput::Key(Box::new(key)))
}

/// The replica a region makes of `update` with its initial per-region properties `init`.
pub fn replica_record(update: &ReplicaUpdate, init: &ReplicaInit, now: UnixMillis) -> KeyRecord {
    let mut key = KeyRecord {
        multi_region: true,
        description: init.description.clone(),
        policy: init.policy.clone(),
        tags: init.tags.clone(),
        ..KeyRecord::new(update.key_id.clone(), now, update.key_spec, update.key_usage, update.origin)
    };
    take_shared(&mut key, update);
    if update.announcement {
        key.state = KeyState::Creating;
    } else if key.materials.is_empty() {
        // Imported material does not travel: the replica waits for the same import.
        key.state = KeyState::PendingImport;
    }
    key
}

fn take_shared(key: &mut KeyRecord, update: &ReplicaUpdate) {
    for incoming in &update.materials {
        match key.material(incoming.version) {
            Some(local) if local.material_id == incoming.material_id => {}
            Some(_) => {
                let local = key.materials[incoming.version as usize].clone();
                key.divergent_materials.push(local);
                key.materials[incoming.version as usize] = incoming.clone();
            }
            None if incoming.version as usize == key.materials.len() => key.materials.push(incoming.clone()),
            // A gap cannot happen with complete updates; refuse to guess rather than misnumber.
            None => break,
        }
    }
    // Versions beyond the update's were made by a primary that has since lost the role (this
    // region, or one whose news reached here first): aside with the other divergent ones.
    // Imported material never travels, so an EXTERNAL key's update says nothing about it.
    if update.origin != Origin::External {
        while key.materials.len() > update.materials.len() {
            if let Some(extra) = key.materials.pop() {
                key.divergent_materials.push(extra);
            }
        }
    }
    key.public_key = update.public_key.clone();
    key.rotation = update.rotation.clone();
    key.multi_region_config = Some(update.config.clone());
}

/// News from `source` that its replica of `key_id` was deleted, applied in the primary's region:
/// the region leaves the key's replicas (a new version, queued for the remaining replicas), and
/// a primary waiting in PendingReplicaDeletion for its last replica starts its own deletion
/// window.
pub fn apply_replica_deleted(
    region: &str,
    source: &str,
    seq: u64,
    key_id: &str,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    note_applied(source, seq, state)?;
    let Some(mut key) = Keys::new(&*state).get_key(key_id)? else { return Ok(CommandOutput::Done) };
    let Some(mut config) = key.multi_region_config.clone().filter(|c| c.is_primary(region)) else {
        // Not the primary here (any more): the news is the current primary's business.
        return Ok(CommandOutput::Done);
    };
    if !config.replica_regions.remove(source) {
        return Ok(CommandOutput::Done);
    }
    config.version += 1;
    if key.state == KeyState::PendingReplicaDeletion && config.replica_regions.is_empty() {
        let window = key.pending_window_days.unwrap_or(crate::key::DEFAULT_PENDING_WINDOW_DAYS);
        key.state = KeyState::PendingDeletion;
        key.deletion_date = Some(now + u64::from(window) * crate::key::DAY_MILLIS);
    }
    publish(region, &mut key, config, None, now, state)?;
    state::put_key(state, &key);
    Ok(CommandOutput::Key(Box::new(key)))
}

/// Queues, for each primary's region, the news that this region's replicas `purged` were
/// deleted (PurgeDueKeys).
pub fn note_purged_replicas(
    region: &str,
    purged: &[KeyRecord],
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> KmsResult<()> {
    let mut by_primary: BTreeMap<&str, Vec<OutboxEntry>> = BTreeMap::new();
    for key in purged {
        if let Some(config) = key.multi_region_config.as_ref().filter(|c| !c.is_primary(region)) {
            by_primary.entry(config.primary_region.as_str()).or_default().push(OutboxEntry::owed(
                &key.key_id,
                None,
                true,
                now,
            ));
        }
    }
    for (primary, entries) in by_primary {
        enqueue(state, primary, entries)?;
    }
    Ok(())
}

/// TrimOutbox: drops the entries `destination` acknowledged, up to and including `through`.
pub fn trim_outbox(destination: &str, through: u64, state: &mut dyn StateWrite) -> CommandResult {
    let prefix = outbox_prefix(destination);
    let done = state.scan(&prefix, &outbox_key(destination, through.saturating_add(1)), usize::MAX)?;
    for (key, _) in done {
        state.delete(&key);
    }
    Ok(CommandOutput::Done)
}

#[cfg(test)]
mod tests;
