//! CreateKeyWithToken one command at a time, through the state machine's byte interface.

use super::*;
use crate::command::tests::{MapState, TEST_REGION};
use crate::command::{Command, KmsStateMachine, decode_result};
use crate::error::ErrorKind;
use crate::key::MaterialVersion;
use crate::spec::{KeySpec, KeyUsage, Origin};
use crate::store::StateMachineApp as _;

fn run(state: &mut MapState, command: Command) -> CommandResult {
    decode_result(&KmsStateMachine::new(TEST_REGION).apply(&command.encode(), state))
}

fn key(key_id: &str, now: UnixMillis) -> KeyRecord {
    let material = MaterialVersion {
        version: 0,
        material_id: "0".repeat(64),
        sealed: vec![1],
        created: now,
        rotation_type: None,
    };
    KeyRecord {
        materials: vec![material],
        ..KeyRecord::new(
            key_id.into(),
            now,
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            Origin::AwsKms,
        )
    }
}

fn claim(principal: &str, token: &str, fingerprint: &str) -> CreateKeyToken {
    CreateKeyToken { principal: principal.into(), token: token.into(), fingerprint: fingerprint.into() }
}

/// CreateKeyWithToken of a fresh key `key_id` at `now`; answers the key id the state chose.
fn create(state: &mut MapState, key_id: &str, now: UnixMillis, token: CreateKeyToken) -> KmsResult<String> {
    match run(state, Command::CreateKeyWithToken { key: key(key_id, now), token })? {
        CommandOutput::Key(key) => Ok(key.key_id),
        other => panic!("CreateKeyWithToken answered {other:?}"),
    }
}

fn key_count(state: &MapState) -> usize {
    Keys::new(state).keys_where(|_| true).unwrap().len()
}

#[test]
fn a_repeated_token_answers_the_first_key_and_writes_nothing() {
    let mut state = MapState::default();
    assert_eq!(create(&mut state, "k1", 1_000, claim("app", "t-1", "f")).unwrap(), "k1");
    let before = state.0.clone();
    // A retry proposes a new key id and new material; the first key is the answer.
    assert_eq!(create(&mut state, "k2", 2_000, claim("app", "t-1", "f")).unwrap(), "k1");
    assert_eq!(state.0, before, "a replayed CreateKey writes nothing");
    assert_eq!(key_count(&state), 1);
}

#[test]
fn the_same_token_with_other_parameters_is_refused() {
    let mut state = MapState::default();
    create(&mut state, "k1", 1_000, claim("app", "t-1", "f")).unwrap();
    let before = state.0.clone();
    let err = create(&mut state, "k2", 2_000, claim("app", "t-1", "other")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ValidationException);
    assert!(err.message.contains("different parameters") && err.message.contains("k1"), "{}", err.message);
    assert_eq!(state.0, before);
}

#[test]
fn tokens_are_per_principal_and_malformed_ones_are_refused() {
    let mut state = MapState::default();
    create(&mut state, "k1", 1_000, claim("app", "t-1", "f")).unwrap();
    assert_eq!(create(&mut state, "k2", 1_000, claim("spiffe://corp/other", "t-1", "f")).unwrap(), "k2");
    for bad in ["", "has/slash", "spaces are bad", &"x".repeat(MAX_TOKEN_LEN + 1)] {
        let err = create(&mut state, "k3", 1_000, claim("app", bad, "f")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ValidationException, "token {bad:?}");
    }
    assert_eq!(key_count(&state), 2);
}

#[test]
fn a_token_is_forgotten_after_the_retention_window_and_can_be_used_again() {
    let mut state = MapState::default();
    create(&mut state, "k1", 1_000, claim("app", "t-1", "f")).unwrap();
    let last_moment = 1_000 + RETENTION_MILLIS - 1;
    assert_eq!(create(&mut state, "k2", last_moment, claim("app", "t-1", "f")).unwrap(), "k1");
    let expired = 1_000 + RETENTION_MILLIS;
    assert_eq!(create(&mut state, "k2", expired, claim("app", "t-1", "f")).unwrap(), "k2");
    // The old record's index entry went with the reuse; the new record stays until it expires.
    let record = find(&state, &claim("app", "t-1", "f"), expired).unwrap().unwrap();
    assert_eq!((record.key_id.as_str(), record.created), ("k2", expired));
    create(&mut state, "k3", expired + 1, claim("app", "t-2", "f")).unwrap();
    assert!(find(&state, &claim("app", "t-1", "f"), expired + 1).unwrap().is_some());
}

#[test]
fn expired_records_are_deleted_a_bounded_number_at_a_time() {
    let mut state = MapState::default();
    let old = EXPIRED_PER_COMMAND + 5;
    for i in 0..old {
        create(&mut state, &format!("old{i}"), i as u64, claim("app", &format!("old-{i}"), "f")).unwrap();
    }
    let records = |state: &MapState| state.0.keys().filter(|k| k.starts_with(RECORD_PREFIX)).count();
    let entries = |state: &MapState| state.0.keys().filter(|k| k.starts_with(EXPIRY_PREFIX)).count();
    assert_eq!((records(&state), entries(&state)), (old, old));
    let later = RETENTION_MILLIS + old as u64;
    create(&mut state, "new1", later, claim("app", "new-1", "f")).unwrap();
    assert_eq!(records(&state), old - EXPIRED_PER_COMMAND + 1, "at most {EXPIRED_PER_COMMAND} deleted");
    create(&mut state, "new2", later, claim("app", "new-2", "f")).unwrap();
    assert_eq!((records(&state), entries(&state)), (2, 2), "only the live records remain");
    assert_eq!(key_count(&state), old + 2, "expiry forgets tokens, never keys");
}

#[test]
fn the_expiry_index_parses_back_to_its_record() {
    let entry = expiry_key(0x1234, "tok-1", "spiffe://corp/a/b");
    assert_eq!(parse_expiry_key(&entry), Some((0x1234, record_key("tok-1", "spiffe://corp/a/b"))));
    assert_eq!(parse_expiry_key(b"ce/zz"), None);
}
