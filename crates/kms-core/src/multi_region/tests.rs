//! Two regions as two in-memory states, with the outbox carried between them by hand: the
//! rules of multi-Region keys one command at a time. The real transport (HPKE-wrapped material
//! over mutual TLS between kmsd regions) is tested end to end in `tests/tests/multi_region.rs`.

use super::*;
use crate::command::tests::MapState;
use crate::command::{Command, apply};
use crate::error::ErrorKind;
use crate::key::KeyChange;
use crate::spec::RotationType;

const A: &str = "eu-west-1";
const B: &str = "us-east-1";
const C: &str = "ap-south-1";
const MRK: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";

struct Region {
    name: &'static str,
    state: MapState,
}

impl Region {
    fn new(name: &'static str) -> Self {
        Self { name, state: MapState::default() }
    }

    fn run(&mut self, command: Command) -> CommandResult {
        apply(&command, self.name, &mut self.state)
    }

    fn key(&self) -> KeyRecord {
        Keys::new(&self.state).key(MRK).unwrap()
    }

    fn config(&self) -> MultiRegionConfig {
        self.key().multi_region_config.unwrap()
    }

    fn outbox(&self, destination: &str) -> Vec<OutboxEntry> {
        Outbox::new(&self.state).entries(destination, usize::MAX).unwrap()
    }

    /// Delivers everything queued for `to` (the current shared properties of each key, as the
    /// replicator sends them), then trims what was delivered.
    fn deliver(&mut self, to: &mut Region) {
        let entries = self.outbox(to.name);
        for entry in &entries {
            let (source_region, seq) = (self.name.to_string(), entry.seq);
            let command = if entry.replica_deleted {
                Command::ApplyReplicaDeleted { source_region, seq, key_id: entry.key_id.clone(), now: 9 }
            } else {
                let update = ReplicaUpdate::of(&self.key(), entry.init.clone()).unwrap();
                Command::ApplyReplicaUpdate { source_region, seq, update, now: 9 }
            };
            to.run(command).unwrap();
        }
        if let Some(last) = entries.last() {
            self.run(Command::TrimOutbox { destination_region: to.name.into(), through_seq: last.seq })
                .unwrap();
        }
    }

    fn rotate(&mut self, material_id: &str) -> CommandResult {
        let version = self.key().materials.len() as u32;
        let material = material(version, material_id);
        self.run(Command::ChangeKey { key_id: MRK.into(), change: KeyChange::Rotate { material }, now: 5 })
    }
}

fn material(version: u32, material_id: &str) -> MaterialVersion {
    MaterialVersion {
        version,
        material_id: material_id.into(),
        sealed: vec![version as u8; 8],
        created: 1,
        rotation_type: (version > 0).then_some(RotationType::OnDemand),
    }
}

/// Region `name` with a multi-Region primary key.
fn primary(name: &'static str) -> Region {
    let mut region = Region::new(name);
    let key = KeyRecord {
        multi_region: true,
        multi_region_config: Some(MultiRegionConfig::new_primary(name)),
        materials: vec![material(0, "m0")],
        ..KeyRecord::new(MRK.into(), 1, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt, Origin::AwsKms)
    };
    region.run(Command::CreateKey { key }).unwrap();
    region
}

fn replicate(from: &mut Region, to: &mut Region) {
    let init = ReplicaInit { description: format!("replica in {}", to.name), ..ReplicaInit::default() };
    from.run(Command::ReplicateKey { key_id: MRK.into(), replica_region: to.name.into(), init, now: 3 })
        .unwrap();
    from.deliver(to);
}

fn material_ids(key: &KeyRecord) -> Vec<String> {
    key.materials.iter().map(|m| m.material_id.clone()).collect()
}

#[test]
fn a_replica_gets_the_shared_properties_and_its_own_per_region_ones() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    replicate(&mut a, &mut b);
    let replica = b.key();
    assert_eq!(replica.state, KeyState::Enabled);
    assert_eq!(replica.description, "replica in us-east-1");
    assert_eq!(material_ids(&replica), ["m0"]);
    assert_eq!(replica.multi_region_config, a.key().multi_region_config);
    assert_eq!(a.config().replica_regions, BTreeSet::from([B.to_string()]));
    assert!(a.outbox(B).is_empty(), "the delivered entry was trimmed");
    assert_eq!(Outbox::new(&b.state).applied_from(A).unwrap(), 1);
}

#[test]
fn replicate_key_refusals() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    replicate(&mut a, &mut b);
    let again = |region: &mut Region, to: &str| {
        region
            .run(Command::ReplicateKey {
                key_id: MRK.into(),
                replica_region: to.into(),
                init: ReplicaInit::default(),
                now: 4,
            })
            .unwrap_err()
            .kind
    };
    assert_eq!(again(&mut a, B), ErrorKind::AlreadyExistsException);
    assert_eq!(again(&mut a, A), ErrorKind::AlreadyExistsException);
    assert_eq!(again(&mut b, C), ErrorKind::UnsupportedOperationException, "a replica cannot be replicated");

    let mut single = Region::new(A);
    let key = KeyRecord::new(
        "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        1,
        KeySpec::SymmetricDefault,
        KeyUsage::EncryptDecrypt,
        Origin::AwsKms,
    );
    single.run(Command::CreateKey { key }).unwrap();
    let err = single
        .run(Command::ReplicateKey {
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            replica_region: B.into(),
            init: ReplicaInit::default(),
            now: 4,
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
}

#[test]
fn rotation_reaches_every_replica_and_replicas_cannot_rotate() {
    let (mut a, mut b, mut c) = (primary(A), Region::new(B), Region::new(C));
    replicate(&mut a, &mut b);
    replicate(&mut a, &mut c);
    a.deliver(&mut b); // the news that C joined
    assert_eq!(b.config().replica_regions, BTreeSet::from([B.to_string(), C.to_string()]));

    a.rotate("m1").unwrap();
    a.deliver(&mut b);
    a.deliver(&mut c);
    assert_eq!(material_ids(&b.key()), ["m0", "m1"]);
    assert_eq!(material_ids(&c.key()), ["m0", "m1"]);

    let err = b.rotate("mx").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedOperationException);
    let enable = Command::ChangeKey {
        key_id: MRK.into(),
        change: KeyChange::EnableRotation { period_days: 90 },
        now: 5,
    };
    assert_eq!(b.run(enable).unwrap_err().kind, ErrorKind::UnsupportedOperationException);
    // Per-region properties are each region's own.
    b.run(Command::ChangeKey { key_id: MRK.into(), change: KeyChange::Disable, now: 5 }).unwrap();
    assert_eq!(a.key().state, KeyState::Enabled);
}

#[test]
fn duplicate_and_stale_updates_change_nothing() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    replicate(&mut a, &mut b);
    let old = ReplicaUpdate::of(&a.key(), None).unwrap();
    a.rotate("m1").unwrap();
    let new = ReplicaUpdate::of(&a.key(), None).unwrap();
    let send = |b: &mut Region, seq: u64, update: &ReplicaUpdate| {
        b.run(Command::ApplyReplicaUpdate { source_region: A.into(), seq, update: update.clone(), now: 9 })
            .unwrap();
    };
    send(&mut b, 2, &new);
    b.run(Command::ChangeKey {
        key_id: MRK.into(),
        change: KeyChange::Tag { tags: [("team".to_string(), "b".to_string())].into() },
        now: 9,
    })
    .unwrap();
    let settled = b.key();
    send(&mut b, 2, &new);
    send(&mut b, 1, &old);
    send(&mut b, 7, &old);
    assert_eq!(b.key(), settled);
    assert_eq!(material_ids(&settled), ["m0", "m1"]);
    assert_eq!(settled.tags["team"], "b", "replication never touches tags");
}

#[test]
fn update_primary_region_swaps_roles() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    replicate(&mut a, &mut b);
    a.run(Command::UpdatePrimaryRegion {
        key_id: MRK.into(),
        primary_region: B.into(),
        force: false,
        now: 6,
    })
    .unwrap();
    assert_eq!(a.rotate("m1").unwrap_err().kind, ErrorKind::UnsupportedOperationException);
    a.deliver(&mut b);
    let config = b.config();
    assert_eq!((config.primary_region.as_str(), config.epoch), (B, 2));
    assert_eq!(config.replica_regions, BTreeSet::from([A.to_string()]));
    b.rotate("m1").unwrap();
    b.deliver(&mut a);
    assert_eq!(material_ids(&a.key()), ["m0", "m1"]);
}

#[test]
fn a_forced_promotion_wins_and_keeps_the_old_primarys_divergent_material() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    replicate(&mut a, &mut b);
    // A is cut off: B is promoted by force, and both rotate meanwhile.
    let force = |to: &str| Command::UpdatePrimaryRegion {
        key_id: MRK.into(),
        primary_region: to.into(),
        force: true,
        now: 7,
    };
    assert_eq!(a.run(force(B)).unwrap_err().kind, ErrorKind::ValidationException);
    b.run(force(B)).unwrap();
    a.rotate("from-a").unwrap();
    b.rotate("from-b").unwrap();
    // A's news is stale for B; B's demotes A.
    a.deliver(&mut b);
    assert_eq!(material_ids(&b.key()), ["m0", "from-b"]);
    b.deliver(&mut a);
    let old_primary = a.key();
    assert_eq!(old_primary.multi_region_config.as_ref().unwrap().primary_region, B);
    assert_eq!(material_ids(&old_primary), ["m0", "from-b"]);
    let candidates: Vec<_> = old_primary.decryption_materials(1).map(|m| m.material_id.as_str()).collect();
    assert_eq!(candidates, ["from-b", "from-a"], "what A encrypted while cut off still decrypts in A");
    assert_eq!(a.rotate("again").unwrap_err().kind, ErrorKind::UnsupportedOperationException);
}

#[test]
fn backlog_counts_entries_per_destination() {
    let (mut a, mut b, mut c) = (primary(A), Region::new(B), Region::new(C));
    replicate(&mut a, &mut b);
    replicate(&mut a, &mut c);
    a.rotate("m1").unwrap();
    a.rotate("m2").unwrap();
    let backlog = Outbox::new(&a.state).backlog().unwrap();
    assert_eq!(backlog[B].entries, 3, "C joined, then two rotations");
    assert_eq!(backlog[C].entries, 2);
    assert_eq!(backlog[B].oldest_queued, Some(3));
    a.run(Command::TrimOutbox { destination_region: B.into(), through_seq: 3 }).unwrap();
    assert_eq!(a.outbox(B).iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
}

#[test]
fn versions_only_a_demoted_primary_made_are_set_aside() {
    let (mut a, mut b, mut c) = (primary(A), Region::new(B), Region::new(C));
    replicate(&mut a, &mut b);
    replicate(&mut a, &mut c);
    a.deliver(&mut b); // B learns that C holds a replica
    // A's last rotation reaches C but not B; then B is promoted by force.
    a.rotate("only-in-a-and-c").unwrap();
    a.deliver(&mut c);
    b.run(Command::UpdatePrimaryRegion { key_id: MRK.into(), primary_region: B.into(), force: true, now: 8 })
        .unwrap();
    b.deliver(&mut c);
    let replica = c.key();
    assert_eq!(material_ids(&replica), material_ids(&b.key()), "C holds what the new primary holds");
    let aside: Vec<_> = replica.decryption_materials(1).map(|m| m.material_id.as_str()).collect();
    assert_eq!(aside, ["only-in-a-and-c"], "and can still decrypt what A encrypted under it");
}

#[test]
fn a_primary_with_replicas_waits_for_their_deletion() {
    let (mut a, mut b, mut c) = (primary(A), Region::new(B), Region::new(C));
    replicate(&mut a, &mut b);
    replicate(&mut a, &mut c);
    let schedule = Command::ChangeKey {
        key_id: MRK.into(),
        change: KeyChange::ScheduleDeletion { window_days: 7 },
        now: 10,
    };
    a.run(schedule.clone()).unwrap();
    let waiting = a.key();
    assert_eq!(
        (waiting.state, waiting.deletion_date, waiting.pending_window_days),
        (KeyState::PendingReplicaDeletion, None, Some(7))
    );

    let purge_after_window = |region: &mut Region| {
        region.run(schedule.clone()).unwrap();
        assert_eq!(region.key().state, KeyState::PendingDeletion, "a replica counts down at once");
        region.run(Command::PurgeDueKeys { now: 10 + 8 * crate::key::DAY_MILLIS }).unwrap();
        assert!(Keys::new(&region.state).get_key(MRK).unwrap().is_none());
    };
    purge_after_window(&mut b);
    b.deliver(&mut a);
    assert_eq!(a.config().replica_regions, BTreeSet::from([C.to_string()]));
    assert_eq!(a.key().state, KeyState::PendingReplicaDeletion, "C still holds a replica");
    a.deliver(&mut c);
    assert_eq!(c.config().replica_regions, BTreeSet::from([C.to_string()]), "C learns B is gone");

    purge_after_window(&mut c);
    c.deliver(&mut a);
    let counting = a.key();
    assert_eq!(counting.state, KeyState::PendingDeletion);
    assert_eq!(counting.deletion_date, Some(9 + 7 * crate::key::DAY_MILLIS), "the window starts now");
    assert!(counting.multi_region_config.unwrap().replica_regions.is_empty());
}

#[test]
fn an_announced_replica_is_creating_until_its_material_arrives() {
    let (mut a, mut b) = (primary(A), Region::new(B));
    let init = ReplicaInit { description: "announced".into(), ..ReplicaInit::default() };
    let announce = |b: &mut Region, a: &Region| {
        let update = ReplicaUpdate::of(&a.key(), Some(init.clone())).unwrap().into_announcement(B);
        b.run(Command::ApplyReplicaUpdate { source_region: A.into(), seq: 0, update, now: 2 })
    };
    announce(&mut b, &a).unwrap();
    let creating = b.key();
    assert_eq!((creating.state, creating.materials.len()), (KeyState::Creating, 0));
    assert_eq!(creating.description, "announced");
    announce(&mut b, &a).unwrap(); // a retried ReplicateKey announces again
    a.run(Command::ReplicateKey { key_id: MRK.into(), replica_region: B.into(), init: init.clone(), now: 3 })
        .unwrap();
    a.deliver(&mut b);
    assert_eq!(b.key().state, KeyState::Enabled);
    assert_eq!(material_ids(&b.key()), ["m0"]);
    assert_eq!(announce(&mut b, &a).unwrap_err().kind, ErrorKind::AlreadyExistsException);
}
