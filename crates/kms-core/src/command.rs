//! The replicated commands and the deterministic logic that applies them.
//!
//! A command carries everything random or time-dependent (new key material, already sealed; the
//! proposer's clock), so every replica computes the same result. Each command validates against
//! the state first and writes only if it is accepted, so a rejected command changes nothing.

use crate::error::{KmsError, KmsResult};
use crate::grant::{Grant, MAX_GRANTS_PER_KEY};
use crate::idempotency::{self, CreateKeyToken};
use crate::key::{
    ImportParameters, KeyChange, KeyRecord, MAX_IMPORT_PARAMETERS_PER_KEY, MaterialImport, UnixMillis,
};
use crate::managed::{is_service_alias, service_alias};
use crate::multi_region::{self, ReplicaInit, ReplicaUpdate};
use crate::spec::KeyState;
use crate::state::{self, AliasRecord, KeyUse, Keys};
use crate::store::{StateMachineApp, StateWrite};
use serde::{Deserialize, Serialize};

pub const MAX_ALIASES_PER_KEY: usize = 50;

/// A change to the region's state. The enum grows with the product (grants, policies, replicas);
/// new variants go at the end and old ones never change meaning, since logs outlive binaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateKey {
        key: KeyRecord,
    },
    ChangeKey {
        key_id: String,
        change: KeyChange,
        now: UnixMillis,
    },
    CreateAlias {
        alias_name: String,
        target_key_id: String,
        now: UnixMillis,
    },
    UpdateAlias {
        alias_name: String,
        target_key_id: String,
        now: UnixMillis,
    },
    DeleteAlias {
        alias_name: String,
    },
    /// Deletes every key whose deletion date is at or before `now`, with its aliases and grants.
    PurgeDueKeys {
        now: UnixMillis,
    },
    /// GetParametersForImport: keeps a new wrapping key pair (private half sealed) for an
    /// EXTERNAL key; expired and surplus older parameter sets of that key are dropped.
    PutImportParameters {
        params: ImportParameters,
        now: UnixMillis,
    },
    /// ImportKeyMaterial with the parameters `token_id` names (material unwrapped and sealed by
    /// the proposer).
    ImportKeyMaterial {
        key_id: String,
        token_id: String,
        import: MaterialImport,
        now: UnixMillis,
    },
    /// Deletes imported material whose ValidTo is at or before `now` (the keys go to
    /// PendingImport) and import parameters past their validity.
    ExpireImports {
        now: UnixMillis,
    },
    /// Records the last successful cryptographic use of keys, as observed by one node since its
    /// previous report. A record only ever moves forward in time; keys that no longer exist are
    /// skipped.
    RecordKeyUse {
        uses: Vec<KeyUse>,
    },
    /// CreateGrant (authorized and validated by the proposer). A grant whose Name and terms
    /// equal an existing grant of the key is not added again: the existing one is the answer,
    /// which makes CreateGrant with a Name idempotent, as in AWS.
    CreateGrant {
        grant: Grant,
    },
    /// RetireGrant: deletes a grant its retiring principal or grantee gave up.
    RetireGrant {
        key_id: String,
        grant_id: String,
    },
    /// RevokeGrant: deletes a grant a key administrator withdrew.
    RevokeGrant {
        key_id: String,
        grant_id: String,
    },
    /// Finds or creates the AWS managed key of a service (`key.service`) together with its
    /// alias `alias/aws/<service>`, in one step. When two nodes race, the first command creates
    /// the key and the later one answers with that key: a service never gets two.
    CreateServiceKey {
        key: KeyRecord,
        now: UnixMillis,
    },
    /// ReplicateKey, in the primary's region (`crate::multi_region::replicate_key`).
    ReplicateKey {
        key_id: String,
        replica_region: String,
        init: ReplicaInit,
        now: UnixMillis,
    },
    /// UpdatePrimaryRegion (`crate::multi_region::update_primary_region`).
    UpdatePrimaryRegion {
        key_id: String,
        primary_region: String,
        force: bool,
        now: UnixMillis,
    },
    /// A multi-Region key update another region sent, its material already resealed under this
    /// region's root key by the node that received it.
    ApplyReplicaUpdate {
        source_region: String,
        seq: u64,
        update: ReplicaUpdate,
        now: UnixMillis,
    },
    /// News from another region that its replica of a key was deleted (for the primary).
    ApplyReplicaDeleted {
        source_region: String,
        seq: u64,
        key_id: String,
        now: UnixMillis,
    },
    /// Drops outbox entries a destination region acknowledged.
    TrimOutbox {
        destination_region: String,
        through_seq: u64,
    },
    /// CreateKey with an idempotency token (`crate::idempotency`): the key a live record of the
    /// token names, or a new key together with the token's record.
    CreateKeyWithToken {
        key: KeyRecord,
        token: CreateKeyToken,
    },
    /// Root key rotation: a key's material re-sealed under the active root key, each value
    /// swapped only while unchanged (`crate::reseal`).
    ResealKey {
        key_id: String,
        reseal: crate::reseal::KeyReseal,
    },
}

/// What an accepted command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    Key(Box<KeyRecord>),
    Alias(AliasRecord),
    Purged(Vec<String>),
    Done,
    /// Keys whose imported material expired.
    Expired(Vec<String>),
    Grant(Box<Grant>),
    /// How many sealed values a ResealKey replaced.
    Resealed(u32),
}

pub type CommandResult = KmsResult<CommandOutput>;

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        // Commands are plain data (strings, numbers, maps with string keys): cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> KmsResult<Self> {
        serde_json::from_slice(bytes)
            .map_err(|err| KmsError::internal(format!("undecodable replicated command: {err}")))
    }
}

pub fn encode_result(result: &CommandResult) -> Vec<u8> {
    serde_json::to_vec(result).unwrap_or_default()
}

pub fn decode_result(bytes: &[u8]) -> CommandResult {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|err| Err(KmsError::internal(format!("undecodable command response: {err}"))))
}

/// The KMS state machine of one region, plugged into the replication layer. It knows the
/// region's name (the same on every node of the region) because multi-Region keys behave by
/// whether this region is their primary.
#[derive(Debug)]
pub struct KmsStateMachine {
    region: String,
}

impl KmsStateMachine {
    pub fn new(region: impl Into<String>) -> Self {
        Self { region: region.into() }
    }
}

impl StateMachineApp for KmsStateMachine {
    fn apply(&self, command: &[u8], state: &mut dyn StateWrite) -> Vec<u8> {
        let result = Command::decode(command).and_then(|command| apply(&command, &self.region, state));
        encode_result(&result)
    }
}

/// Applies `command` in `region`.
pub fn apply(command: &Command, region: &str, state: &mut dyn StateWrite) -> CommandResult {
    match command {
        Command::CreateKey { key } => create_key(key, state),
        Command::ChangeKey { key_id, change, now } => {
            let mut key = Keys::new(&*state).key(key_id)?;
            multi_region::check_change(region, &key, change)?;
            key.apply_change(change, *now)?;
            multi_region::note_change(region, &mut key, change, *now, state)?;
            state::put_key(state, &key);
            Ok(CommandOutput::Key(Box::new(key)))
        }
        Command::CreateAlias { alias_name, target_key_id, now } => {
            create_alias(alias_name, target_key_id, *now, state)
        }
        Command::UpdateAlias { alias_name, target_key_id, now } => {
            update_alias(alias_name, target_key_id, *now, state)
        }
        Command::DeleteAlias { alias_name } => {
            if is_service_alias(alias_name) {
                return Err(KmsError::invalid_alias_name(format!(
                    "alias {alias_name} belongs to an AWS managed key and cannot be deleted"
                )));
            }
            Keys::new(&*state).alias(alias_name)?;
            state::delete_alias(state, alias_name);
            Ok(CommandOutput::Done)
        }
        Command::PurgeDueKeys { now } => purge_due_keys(region, *now, state),
        Command::PutImportParameters { params, now } => put_import_parameters(params, *now, state),
        Command::ImportKeyMaterial { key_id, token_id, import, now } => {
            import_key_material(key_id, token_id, import, *now, state)
        }
        Command::ExpireImports { now } => expire_imports(*now, state),
        Command::RecordKeyUse { uses } => record_key_use(uses, state),
        Command::CreateGrant { grant } => create_grant(grant, state),
        Command::RetireGrant { key_id, grant_id } | Command::RevokeGrant { key_id, grant_id } => {
            delete_grant(key_id, grant_id, state)
        }
        Command::CreateServiceKey { key, now } => create_service_key(key, *now, state),
        Command::ReplicateKey { key_id, replica_region, init, now } => {
            multi_region::replicate_key(region, key_id, replica_region, init, *now, state)
        }
        Command::UpdatePrimaryRegion { key_id, primary_region, force, now } => {
            multi_region::update_primary_region(region, key_id, primary_region, *force, *now, state)
        }
        Command::ApplyReplicaUpdate { source_region, seq, update, now } => {
            multi_region::apply_update(region, source_region, *seq, update, *now, state)
        }
        Command::ApplyReplicaDeleted { source_region, seq, key_id, now } => {
            multi_region::apply_replica_deleted(region, source_region, *seq, key_id, *now, state)
        }
        Command::TrimOutbox { destination_region, through_seq } => {
            multi_region::trim_outbox(destination_region, *through_seq, state)
        }
        Command::CreateKeyWithToken { key, token } => {
            idempotency::create_key_once(key, token, state, create_key)
        }
        Command::ResealKey { key_id, reseal } => crate::reseal::apply(key_id, reseal, state),
    }
}

fn create_key(key: &KeyRecord, state: &mut dyn StateWrite) -> CommandResult {
    if key.is_aws_managed() {
        // Only CreateServiceKey makes them, with their alias.
        return Err(KmsError::internal(format!("CreateKey cannot create AWS managed key {}", key.key_id)));
    }
    if Keys::new(&*state).get_key(&key.key_id)?.is_some() {
        // Key ids are random UUIDs; a collision means a replayed proposal, never a new key.
        return Err(KmsError::already_exists(format!("key {} already exists", key.key_id)));
    }
    state::put_key(state, key);
    Ok(CommandOutput::Key(Box::new(key.clone())))
}

fn alias_target(keys: &Keys<'_, dyn StateWrite + '_>, target_key_id: &str) -> KmsResult<KeyRecord> {
    let key = keys.key(target_key_id)?;
    key.check_alias_target("an alias")?;
    if key.state == KeyState::PendingDeletion {
        return Err(KmsError::invalid_state(format!("{} is pending deletion.", key.key_id)));
    }
    Ok(key)
}

fn create_alias(
    alias_name: &str,
    target_key_id: &str,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let keys = Keys::new(&*state);
    if keys.get_alias(alias_name)?.is_some() {
        return Err(KmsError::already_exists(format!("An alias with the name {alias_name} already exists")));
    }
    alias_target(&keys, target_key_id)?;
    check_alias_quota(&keys, target_key_id)?;
    let alias = AliasRecord {
        alias_name: alias_name.to_string(),
        target_key_id: target_key_id.to_string(),
        creation_date: now,
        last_updated_date: now,
    };
    state::put_alias(state, &alias);
    Ok(CommandOutput::Alias(alias))
}

fn update_alias(
    alias_name: &str,
    target_key_id: &str,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let keys = Keys::new(&*state);
    let mut alias = keys.alias(alias_name)?;
    let new_target = alias_target(&keys, target_key_id)?;
    // The current target may already be gone (deleted keys take their aliases, but be lenient).
    if let Some(current) = keys.get_key(&alias.target_key_id)? {
        let same_kind = current.key_spec.family() == new_target.key_spec.family()
            && current.key_usage == new_target.key_usage;
        if !same_kind {
            return Err(KmsError::validation(format!(
                "alias {alias_name} points at a {} key with usage {}; it can only be moved to a key \
                 of the same type and usage, not {} / {}",
                current.key_spec, current.key_usage, new_target.key_spec, new_target.key_usage
            )));
        }
    }
    if alias.target_key_id != target_key_id {
        check_alias_quota(&keys, target_key_id)?;
    }
    alias.target_key_id = target_key_id.to_string();
    alias.last_updated_date = now;
    state::put_alias(state, &alias);
    Ok(CommandOutput::Alias(alias))
}

fn create_service_key(key: &KeyRecord, now: UnixMillis, state: &mut dyn StateWrite) -> CommandResult {
    let service = key.service.as_deref().filter(|_| key.is_aws_managed()).ok_or_else(|| {
        KmsError::internal(format!(
            "CreateServiceKey needs an AWS managed key of a service, not {}",
            key.key_id
        ))
    })?;
    let alias_name = service_alias(service);
    let keys = Keys::new(&*state);
    if let Some(alias) = keys.get_alias(&alias_name)? {
        // Created first by another proposer (or earlier): that key is the service's key.
        return Ok(CommandOutput::Key(Box::new(keys.key(&alias.target_key_id)?)));
    }
    if keys.get_key(&key.key_id)?.is_some() {
        return Err(KmsError::already_exists(format!("key {} already exists", key.key_id)));
    }
    let alias = AliasRecord {
        alias_name,
        target_key_id: key.key_id.clone(),
        creation_date: now,
        last_updated_date: now,
    };
    state::put_key(state, key);
    state::put_alias(state, &alias);
    Ok(CommandOutput::Key(Box::new(key.clone())))
}

fn check_alias_quota(keys: &Keys<'_, dyn StateWrite + '_>, key_id: &str) -> KmsResult<()> {
    if keys.aliases_of(key_id)?.len() >= MAX_ALIASES_PER_KEY {
        return Err(KmsError::limit_exceeded(format!(
            "key {key_id} already has {MAX_ALIASES_PER_KEY} aliases, the most allowed"
        )));
    }
    Ok(())
}

fn record_key_use(uses: &[KeyUse], state: &mut dyn StateWrite) -> CommandResult {
    let keys = Keys::new(&*state);
    let mut newer = Vec::new();
    for key_use in uses {
        let exists = keys.get_key(&key_use.key_id)?.is_some();
        let is_newer = keys.last_use(&key_use.key_id)?.is_none_or(|last| last.at < key_use.at);
        if exists && is_newer {
            newer.push(key_use.clone());
        }
    }
    for key_use in &newer {
        state::put_last_use(state, key_use);
    }
    Ok(CommandOutput::Done)
}

fn create_grant(grant: &Grant, state: &mut dyn StateWrite) -> CommandResult {
    let keys = Keys::new(&*state);
    // The key-state rules of CreateGrant are those of the cryptographic operations.
    keys.key(&grant.key_id)?.check_usable()?;
    let existing = keys.grants_of(&grant.key_id)?;
    if grant.name.is_some()
        && let Some(same) = existing.iter().find(|g| g.same_terms(grant))
    {
        return Ok(CommandOutput::Grant(Box::new(same.clone())));
    }
    if existing.iter().any(|g| g.grant_id == grant.grant_id) {
        // Grant ids are random; a collision means a replayed proposal, never a new grant.
        return Err(KmsError::already_exists(format!("grant {} already exists", grant.grant_id)));
    }
    if existing.len() >= MAX_GRANTS_PER_KEY {
        return Err(KmsError::limit_exceeded(format!(
            "key {} already has {MAX_GRANTS_PER_KEY} grants, the most allowed",
            grant.key_id
        )));
    }
    state::put_grant(state, grant);
    Ok(CommandOutput::Grant(Box::new(grant.clone())))
}

fn delete_grant(key_id: &str, grant_id: &str, state: &mut dyn StateWrite) -> CommandResult {
    if Keys::new(&*state).grant(key_id, grant_id)?.is_none() {
        return Err(KmsError::not_found(format!("Grant ID {grant_id} of key {key_id} does not exist")));
    }
    state::delete_grant(state, key_id, grant_id);
    Ok(CommandOutput::Done)
}

fn purge_due_keys(region: &str, now: UnixMillis, state: &mut dyn StateWrite) -> CommandResult {
    let keys = Keys::new(&*state);
    let due = keys.keys_where(|k| k.is_due_for_deletion(now))?;
    let mut purged = Vec::new();
    let mut doomed_aliases = Vec::new();
    for key in &due {
        doomed_aliases.extend(keys.aliases_of(&key.key_id)?.into_iter().map(|a| a.alias_name));
        purged.push(key.key_id.clone());
    }
    let mut doomed_parameters = Vec::new();
    let mut doomed_grants = Vec::new();
    for key_id in &purged {
        doomed_parameters.extend(keys.import_parameters_of(key_id)?);
        doomed_grants.extend(keys.grants_of(key_id)?);
    }
    multi_region::note_purged_replicas(region, &due, now, state)?;
    for key_id in &purged {
        state::delete_key(state, key_id);
    }
    for params in &doomed_parameters {
        state::delete_import_parameters(state, &params.key_id, &params.token_id);
    }
    for alias_name in &doomed_aliases {
        state::delete_alias(state, alias_name);
    }
    for grant in &doomed_grants {
        state::delete_grant(state, &grant.key_id, &grant.grant_id);
    }
    Ok(CommandOutput::Purged(purged))
}

fn put_import_parameters(
    params: &ImportParameters,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let keys = Keys::new(&*state);
    keys.key(&params.key_id)?.check_importable("GetParametersForImport")?;
    if params.valid_to <= now {
        return Err(KmsError::validation("import parameters must be valid for some time"));
    }
    let (expired, mut live): (Vec<_>, Vec<_>) =
        keys.import_parameters_of(&params.key_id)?.into_iter().partition(|p| p.valid_to <= now);
    live.sort_by(|a, b| (a.created, &a.token_id).cmp(&(b.created, &b.token_id)));
    let surplus = (live.len() + 1).saturating_sub(MAX_IMPORT_PARAMETERS_PER_KEY);
    for old in expired.iter().chain(live.iter().take(surplus)) {
        state::delete_import_parameters(state, &old.key_id, &old.token_id);
    }
    state::put_import_parameters(state, params);
    Ok(CommandOutput::Done)
}

fn import_key_material(
    key_id: &str,
    token_id: &str,
    import: &MaterialImport,
    now: UnixMillis,
    state: &mut dyn StateWrite,
) -> CommandResult {
    let keys = Keys::new(&*state);
    let mut key = keys.key(key_id)?;
    key.check_importable("ImportKeyMaterial")?;
    let params = keys.import_parameters(key_id, token_id)?.ok_or_else(|| {
        KmsError::invalid_import_token(format!("the import token is not valid for key {key_id}"))
    })?;
    if params.valid_to <= now {
        return Err(KmsError::expired_import_token(format!(
            "the import token for key {key_id} has expired; call GetParametersForImport again"
        )));
    }
    key.import_material(import, now)?;
    state::put_key(state, &key);
    Ok(CommandOutput::Key(Box::new(key)))
}

fn expire_imports(now: UnixMillis, state: &mut dyn StateWrite) -> CommandResult {
    let keys = Keys::new(&*state);
    let mut expired = keys.keys_where(|k| k.is_material_expired(now))?;
    for key in &mut expired {
        key.expire_material(now);
    }
    let stale: Vec<_> = keys.all_import_parameters()?.into_iter().filter(|p| p.valid_to <= now).collect();
    for key in &expired {
        state::put_key(state, key);
    }
    for params in &stale {
        state::delete_import_parameters(state, &params.key_id, &params.token_id);
    }
    Ok(CommandOutput::Expired(expired.into_iter().map(|k| k.key_id).collect()))
}

#[cfg(test)]
pub(crate) mod tests {
    //! The real store is RocksDB behind Raft (tested in kms-replication and end to end); here a
    //! map stands in so the rules can be checked one command at a time.
    use super::*;
    use crate::error::ErrorKind;
    use crate::key::{DAY_MILLIS, MaterialVersion};
    use crate::spec::{KeySpec, KeyUsage, Origin};
    use crate::store::{StateRead, StoreError};
    use std::collections::BTreeMap;

    /// The region the commands of these tests are applied in.
    pub(crate) const TEST_REGION: &str = "us-east-1";

    #[derive(Default)]
    pub(crate) struct MapState(pub(crate) BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateRead for MapState {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.get(key).cloned())
        }
        fn scan(
            &self,
            start: &[u8],
            end: &[u8],
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
            Ok(self
                .0
                .range(start.to_vec()..end.to_vec())
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
    }

    impl StateWrite for MapState {
        fn put(&mut self, key: &[u8], value: &[u8]) {
            self.0.insert(key.to_vec(), value.to_vec());
        }
        fn delete(&mut self, key: &[u8]) {
            self.0.remove(key);
        }
    }

    pub(crate) fn new_key(key_id: &str, spec: KeySpec) -> KeyRecord {
        let usage = spec.resolve_usage(None).unwrap_or(KeyUsage::GenerateVerifyMac);
        let material = MaterialVersion {
            version: 0,
            material_id: "0".repeat(64),
            sealed: vec![1, 2, 3],
            created: 0,
            rotation_type: None,
        };
        KeyRecord {
            materials: vec![material],
            ..KeyRecord::new(key_id.into(), 0, spec, usage, Origin::AwsKms)
        }
    }

    fn run(state: &mut MapState, command: Command) -> CommandResult {
        // Through the byte interface, as the replication layer calls it.
        decode_result(&KmsStateMachine::new(TEST_REGION).apply(&command.encode(), state))
    }

    fn alias(name: &str, target: &str) -> Command {
        Command::CreateAlias { alias_name: name.into(), target_key_id: target.into(), now: 5 }
    }

    #[test]
    fn aliases_resolve_and_are_unique() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, alias("alias/app", "k1")).unwrap();
        let err = run(&mut state, alias("alias/app", "k1")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::AlreadyExistsException);
        let err = run(&mut state, alias("alias/other", "missing")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFoundException);
        let keys = Keys::new(&state);
        let key = keys.resolve(&crate::ids::KeyRef::Alias("alias/app".into())).unwrap();
        assert_eq!(key.key_id, "k1");
    }

    #[test]
    fn update_alias_keeps_key_type_and_usage() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("sym", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, Command::CreateKey { key: new_key("sym2", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, Command::CreateKey { key: new_key("mac", KeySpec::Hmac256) }).unwrap();
        run(&mut state, alias("alias/app", "sym")).unwrap();
        let to_mac =
            Command::UpdateAlias { alias_name: "alias/app".into(), target_key_id: "mac".into(), now: 6 };
        assert_eq!(run(&mut state, to_mac).unwrap_err().kind, ErrorKind::ValidationException);
        let to_sym2 =
            Command::UpdateAlias { alias_name: "alias/app".into(), target_key_id: "sym2".into(), now: 6 };
        run(&mut state, to_sym2).unwrap();
        assert_eq!(Keys::new(&state).alias("alias/app").unwrap().target_key_id, "sym2");
    }

    #[test]
    fn due_keys_are_purged_with_their_aliases() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, Command::CreateKey { key: new_key("k2", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, alias("alias/doomed", "k1")).unwrap();
        let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
        run(&mut state, Command::ChangeKey { key_id: "k1".into(), change: schedule, now: 0 }).unwrap();
        let early = run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS - 1 }).unwrap();
        assert_eq!(early, CommandOutput::Purged(vec![]));
        let purged = run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS }).unwrap();
        assert_eq!(purged, CommandOutput::Purged(vec!["k1".into()]));
        let keys = Keys::new(&state);
        assert_eq!(keys.key("k1").unwrap_err().kind, ErrorKind::NotFoundException);
        assert!(keys.get_alias("alias/doomed").unwrap().is_none());
        assert!(keys.get_key("k2").unwrap().is_some());
    }

    #[test]
    fn keys_are_read_a_page_at_a_time_and_each_is_seen_once() {
        // Ids of different lengths ("k1", "k10", "k100"...) put keys that are prefixes of others
        // on both sides of page boundaries; every 97th key is due for deletion.
        let mut state = MapState::default();
        let ids: Vec<String> = (0..1300).map(|i| format!("k{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            run(&mut state, Command::CreateKey { key: new_key(id, KeySpec::SymmetricDefault) }).unwrap();
            if i % 97 == 0 {
                let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
                run(&mut state, Command::ChangeKey { key_id: id.clone(), change: schedule, now: 0 }).unwrap();
            }
        }
        let mut seen = Vec::new();
        Keys::new(&state).for_each_key(|key| seen.push(key.key_id)).unwrap();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected);

        let due: Vec<String> = ids.iter().step_by(97).cloned().collect();
        let Ok(CommandOutput::Purged(mut purged)) =
            run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS })
        else {
            panic!("PurgeDueKeys did not purge")
        };
        purged.sort();
        let mut due_sorted = due.clone();
        due_sorted.sort();
        assert_eq!(purged, due_sorted);
        assert_eq!(Keys::new(&state).keys_where(|_| true).unwrap().len(), ids.len() - due.len());
    }

    #[test]
    fn key_use_only_moves_forward_and_goes_with_the_key() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::SymmetricDefault) }).unwrap();
        let key_use = |operation: &str, at| KeyUse { key_id: "k1".into(), operation: operation.into(), at };
        let ghost = KeyUse { key_id: "gone".into(), operation: "Encrypt".into(), at: 9 };
        run(&mut state, Command::RecordKeyUse { uses: vec![key_use("Decrypt", 20), ghost] }).unwrap();
        run(&mut state, Command::RecordKeyUse { uses: vec![key_use("Encrypt", 10)] }).unwrap();
        let keys = Keys::new(&state);
        assert_eq!(keys.last_use("k1").unwrap(), Some(key_use("Decrypt", 20)), "an older report loses");
        assert_eq!(keys.last_use("gone").unwrap(), None, "no record for a key that does not exist");
        let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
        run(&mut state, Command::ChangeKey { key_id: "k1".into(), change: schedule, now: 0 }).unwrap();
        run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS }).unwrap();
        assert_eq!(Keys::new(&state).last_use("k1").unwrap(), None);
        assert!(
            state.0.is_empty(),
            "nothing of a deleted key remains: {:?}",
            state.0.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn listing_pages_with_markers() {
        let mut state = MapState::default();
        for i in 0..5 {
            run(&mut state, Command::CreateKey { key: new_key(&format!("k{i}"), KeySpec::SymmetricDefault) })
                .unwrap();
        }
        let keys = Keys::new(&state);
        let first = keys.list_keys(None, 2).unwrap();
        assert_eq!(first.items.len(), 2);
        let second = keys.list_keys(first.next_marker.as_deref(), 2).unwrap();
        let third = keys.list_keys(second.next_marker.as_deref(), 2).unwrap();
        assert_eq!(third.items.len(), 1);
        assert_eq!(third.next_marker, None);
        let ids: Vec<_> =
            [first, second, third].iter().flat_map(|p| p.items.iter().map(|k| k.key_id.clone())).collect();
        assert_eq!(ids, ["k0", "k1", "k2", "k3", "k4"]);
    }

    fn params(key_id: &str, token: u8, created: UnixMillis) -> ImportParameters {
        ImportParameters {
            key_id: key_id.into(),
            token_id: format!("{token:032x}"),
            wrapping_algorithm: crate::spec::WrappingAlgorithm::RsaesOaepSha256,
            wrapping_key_spec: crate::spec::WrappingKeySpec::Rsa2048,
            sealed_private_key: vec![1, 2, 3],
            created,
            valid_to: created + DAY_MILLIS,
        }
    }

    fn external_key(key_id: &str) -> KeyRecord {
        KeyRecord {
            origin: Origin::External,
            state: KeyState::PendingImport,
            materials: vec![],
            ..new_key(key_id, KeySpec::SymmetricDefault)
        }
    }

    fn import_command(key_id: &str, token: u8, fingerprint: u8, now: UnixMillis) -> Command {
        Command::ImportKeyMaterial {
            key_id: key_id.into(),
            token_id: format!("{token:032x}"),
            import: MaterialImport {
                material: MaterialVersion {
                    version: 0,
                    material_id: "a".repeat(64),
                    sealed: vec![9; 8],
                    created: now,
                    rotation_type: None,
                },
                fingerprint: vec![fingerprint; 32],
                valid_to: Some(now + DAY_MILLIS),
            },
            now,
        }
    }

    #[test]
    fn import_tokens_are_checked_against_the_state() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: external_key("x") }).unwrap();
        run(&mut state, Command::CreateKey { key: new_key("generated", KeySpec::SymmetricDefault) }).unwrap();
        let err = run(&mut state, Command::PutImportParameters { params: params("generated", 1, 0), now: 0 });
        assert_eq!(err.unwrap_err().kind, ErrorKind::UnsupportedOperationException);
        run(&mut state, Command::PutImportParameters { params: params("x", 1, 0), now: 0 }).unwrap();

        let unknown = run(&mut state, import_command("x", 2, 7, 10)).unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::InvalidImportTokenException);
        let expired = run(&mut state, import_command("x", 1, 7, DAY_MILLIS)).unwrap_err();
        assert_eq!(expired.kind, ErrorKind::ExpiredImportTokenException);
        let CommandOutput::Key(key) = run(&mut state, import_command("x", 1, 7, 10)).unwrap() else {
            panic!("a key")
        };
        assert_eq!(key.state, KeyState::Enabled);
        let different = run(&mut state, import_command("x", 1, 8, 11)).unwrap_err();
        assert_eq!(different.kind, ErrorKind::IncorrectKeyMaterialException);

        // Expiry: the material (ValidTo = 10 + 1 day) and the parameters (valid to 1 day) go.
        let early = run(&mut state, Command::ExpireImports { now: DAY_MILLIS - 1 }).unwrap();
        assert_eq!(early, CommandOutput::Expired(vec![]));
        assert_eq!(Keys::new(&state).import_parameters_of("x").unwrap().len(), 1);
        let gone = run(&mut state, Command::ExpireImports { now: DAY_MILLIS + 10 }).unwrap();
        assert_eq!(gone, CommandOutput::Expired(vec!["x".into()]));
        let keys = Keys::new(&state);
        assert_eq!(keys.key("x").unwrap().state, KeyState::PendingImport);
        assert!(keys.import_parameters_of("x").unwrap().is_empty());
    }

    #[test]
    fn import_parameters_are_capped_and_purged_with_their_key() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: external_key("x") }).unwrap();
        run(&mut state, Command::CreateKey { key: external_key("y") }).unwrap();
        for token in 0..12u8 {
            let now = u64::from(token);
            run(&mut state, Command::PutImportParameters { params: params("x", token, now), now }).unwrap();
        }
        run(&mut state, Command::PutImportParameters { params: params("y", 100, 0), now: 0 }).unwrap();
        let kept: Vec<_> =
            Keys::new(&state).import_parameters_of("x").unwrap().into_iter().map(|p| p.token_id).collect();
        let expected: Vec<_> = (2..12u8).map(|t| format!("{t:032x}")).collect();
        assert_eq!(kept, expected, "the newest {MAX_IMPORT_PARAMETERS_PER_KEY} remain");
        let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
        run(&mut state, Command::ChangeKey { key_id: "x".into(), change: schedule, now: 0 }).unwrap();
        let err = run(&mut state, Command::PutImportParameters { params: params("x", 50, 1), now: 1 });
        assert_eq!(err.unwrap_err().kind, ErrorKind::KMSInvalidStateException);
        run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS }).unwrap();
        assert!(Keys::new(&state).import_parameters_of("x").unwrap().is_empty());
        assert_eq!(Keys::new(&state).all_import_parameters().unwrap().len(), 1, "y's stay");
    }

    #[test]
    fn rejected_commands_write_nothing() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::Hmac256) }).unwrap();
        let before = state.0.clone();
        let change = KeyChange::EnableRotation { period_days: 365 };
        let err = run(&mut state, Command::ChangeKey { key_id: "k1".into(), change, now: 0 }).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
        assert!(run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::Hmac256) }).is_err());
        assert!(run(&mut state, Command::DeleteAlias { alias_name: "alias/none".into() }).is_err());
        assert_eq!(state.0, before);
        let garbage = decode_result(&KmsStateMachine::new(TEST_REGION).apply(b"not json", &mut state));
        assert_eq!(garbage.unwrap_err().kind, ErrorKind::KMSInternalException);
        assert_eq!(state.0, before);
    }

    fn grant(key_id: &str, grant_id: u8, name: Option<&str>) -> Grant {
        Grant {
            grant_id: format!("{grant_id:064x}"),
            key_id: key_id.into(),
            name: name.map(str::to_string),
            creation_date: 0,
            grantee_principal: "bob".into(),
            retiring_principal: None,
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations: vec![crate::spec::GrantOperation::Encrypt],
            constraints: Default::default(),
        }
    }

    #[test]
    fn grants_are_created_once_by_name_retired_and_purged_with_their_key() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::SymmetricDefault) }).unwrap();
        run(&mut state, Command::CreateKey { key: new_key("k2", KeySpec::SymmetricDefault) }).unwrap();
        let missing = run(&mut state, Command::CreateGrant { grant: grant("none", 1, None) }).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFoundException);
        run(&mut state, Command::CreateGrant { grant: grant("k1", 1, Some("app")) }).unwrap();
        let again = run(&mut state, Command::CreateGrant { grant: grant("k1", 2, Some("app")) }).unwrap();
        assert_eq!(again, CommandOutput::Grant(Box::new(grant("k1", 1, Some("app")))), "same name and terms");
        run(&mut state, Command::CreateGrant { grant: grant("k1", 3, None) }).unwrap();
        run(&mut state, Command::CreateGrant { grant: grant("k2", 4, None) }).unwrap();
        assert_eq!(Keys::new(&state).grants_of("k1").unwrap().len(), 2);

        let retire = Command::RetireGrant { key_id: "k1".into(), grant_id: format!("{:064x}", 3) };
        run(&mut state, retire.clone()).unwrap();
        assert_eq!(run(&mut state, retire).unwrap_err().kind, ErrorKind::NotFoundException);
        let revoke = Command::RevokeGrant { key_id: "k2".into(), grant_id: format!("{:064x}", 4) };
        run(&mut state, revoke).unwrap();
        assert!(Keys::new(&state).grants_of("k2").unwrap().is_empty());

        // A disabled key takes no new grants; a deleted key takes its grants with it.
        run(&mut state, Command::ChangeKey { key_id: "k2".into(), change: KeyChange::Disable, now: 0 })
            .unwrap();
        let disabled = run(&mut state, Command::CreateGrant { grant: grant("k2", 5, None) }).unwrap_err();
        assert_eq!(disabled.kind, ErrorKind::DisabledException);
        let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
        run(&mut state, Command::ChangeKey { key_id: "k1".into(), change: schedule, now: 0 }).unwrap();
        run(&mut state, Command::PurgeDueKeys { now: 7 * DAY_MILLIS }).unwrap();
        assert!(Keys::new(&state).all_grants().unwrap().is_empty());
    }

    fn service_key(key_id: &str) -> KeyRecord {
        KeyRecord {
            key_manager: crate::spec::KeyManager::Aws,
            service: Some("kubernetes".into()),
            ..new_key(key_id, KeySpec::SymmetricDefault)
        }
    }

    #[test]
    fn a_service_key_is_created_once_with_its_alias_and_kept_out_of_reach() {
        let mut state = MapState::default();
        let first = run(&mut state, Command::CreateServiceKey { key: service_key("s1"), now: 1 }).unwrap();
        assert_eq!(first, CommandOutput::Key(Box::new(service_key("s1"))));
        // A racing proposer's key loses: the answer is the first key, and nothing is written.
        let before = state.0.clone();
        let second = run(&mut state, Command::CreateServiceKey { key: service_key("s2"), now: 2 }).unwrap();
        assert_eq!(second, first);
        assert_eq!(state.0, before);
        let keys = Keys::new(&state);
        assert_eq!(keys.alias("alias/aws/kubernetes").unwrap().target_key_id, "s1");
        assert_eq!(keys.key("s2").unwrap_err().kind, ErrorKind::NotFoundException);

        // Customer keys cannot come through it, AWS managed keys not through CreateKey.
        let customer = new_key("c1", KeySpec::SymmetricDefault);
        assert!(run(&mut state, Command::CreateServiceKey { key: customer.clone(), now: 3 }).is_err());
        assert!(run(&mut state, Command::CreateKey { key: service_key("s3") }).is_err());
        // No alias may point at a service key, and its own alias stays.
        run(&mut state, Command::CreateKey { key: customer }).unwrap();
        let err = run(&mut state, alias("alias/mine", "s1")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::KMSInvalidStateException);
        run(&mut state, alias("alias/mine", "c1")).unwrap();
        let to_service =
            Command::UpdateAlias { alias_name: "alias/mine".into(), target_key_id: "s1".into(), now: 4 };
        assert_eq!(run(&mut state, to_service).unwrap_err().kind, ErrorKind::KMSInvalidStateException);
        let delete = Command::DeleteAlias { alias_name: "alias/aws/kubernetes".into() };
        assert_eq!(run(&mut state, delete).unwrap_err().kind, ErrorKind::InvalidAliasNameException);
        let disable = Command::ChangeKey { key_id: "s1".into(), change: KeyChange::Disable, now: 5 };
        assert_eq!(run(&mut state, disable).unwrap_err().kind, ErrorKind::KMSInvalidStateException);
    }

    #[test]
    fn key_policies_are_stored_in_every_state_and_old_records_load_without_one() {
        let mut state = MapState::default();
        run(&mut state, Command::CreateKey { key: new_key("k1", KeySpec::SymmetricDefault) }).unwrap();
        let schedule = KeyChange::ScheduleDeletion { window_days: 7 };
        run(&mut state, Command::ChangeKey { key_id: "k1".into(), change: schedule, now: 0 }).unwrap();
        let put = KeyChange::PutPolicy { policy: "{}".into() };
        run(&mut state, Command::ChangeKey { key_id: "k1".into(), change: put, now: 0 }).unwrap();
        assert_eq!(Keys::new(&state).key("k1").unwrap().policy.as_deref(), Some("{}"));

        let mut old = serde_json::to_value(new_key("k2", KeySpec::SymmetricDefault)).unwrap();
        old.as_object_mut().unwrap().remove("policy");
        let loaded: KeyRecord = serde_json::from_value(old).unwrap();
        assert_eq!(loaded.policy, None);
    }
}
