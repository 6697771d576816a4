//! CreateKey idempotency tokens: a CreateKey repeated with the same token by the same principal
//! within [`RETENTION_MILLIS`] answers with the key the first one created instead of creating
//! another.
//!
//! The token's record is written by the same replicated command that writes the key
//! ([`crate::command::Command::CreateKeyWithToken`]), so a CreateKey that committed but whose
//! answer was lost (a leader killed, a deadline) and is retried on another node, or on a new
//! leader, finds it: the command applied second sees the first one's record, whatever the order
//! in which they reached the log.
//!
//! State layout:
//! - `ct/<token>/<principal>`: a [`TokenRecord`] (the key it created, the fingerprint of the
//!   request's parameters, when). A token is limited to `[A-Za-z0-9_-]`, so the first `/` after
//!   the prefix ends it and any principal name may follow.
//! - `ce/<created, 16 hex digits>/<token>/<principal>`: empty; the same records in creation order,
//!   so expired ones are found without reading every record. Each CreateKeyWithToken deletes up
//!   to [`EXPIRED_PER_COMMAND`] expired records, so the records of a region are bounded by those
//!   of one retention window plus what was left when CreateKey traffic with tokens stopped.

use crate::command::{CommandOutput, CommandResult};
use crate::error::{KmsError, KmsResult};
use crate::key::{DAY_MILLIS, KeyRecord, UnixMillis};
use crate::state::{self, Keys, decode};
use crate::store::{StateRead, StateWrite};
use serde::{Deserialize, Serialize};

/// How long a token is remembered after the CreateKey that used it: one day, the usual window
/// of AWS idempotency tokens and far longer than any client's retries. A key created with a
/// token cannot have been deleted within it (the shortest deletion window is 7 days).
pub const RETENTION_MILLIS: UnixMillis = DAY_MILLIS;

/// The longest token; a UUID (36 characters) fits with room to spare.
pub const MAX_TOKEN_LEN: usize = 64;

/// Expired records deleted by one CreateKeyWithToken, so no command does unbounded work.
pub const EXPIRED_PER_COMMAND: usize = 32;

const RECORD_PREFIX: &[u8] = b"ct/";
const EXPIRY_PREFIX: &[u8] = b"ce/";

/// What a CreateKey with a token claims, filled in by the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKeyToken {
    /// Tokens are per principal: another caller's identical token is another token.
    pub principal: String,
    pub token: String,
    /// A digest of the request's parameters (everything but the token): the same token with
    /// other parameters is refused rather than answered with a key that does not match them.
    pub fingerprint: String,
}

/// What the state remembers of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub key_id: String,
    pub fingerprint: String,
    pub created: UnixMillis,
}

impl TokenRecord {
    fn is_live(&self, now: UnixMillis) -> bool {
        now < self.created.saturating_add(RETENTION_MILLIS)
    }
}

/// Refuses a token that is empty, too long or has characters outside `[A-Za-z0-9_-]`.
pub fn validate_token(token: &str) -> KmsResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !token.chars().all(allowed) {
        return Err(KmsError::validation(format!(
            "IdempotencyToken must be 1 to {MAX_TOKEN_LEN} characters of A-Z, a-z, 0-9, '-' and '_'"
        )));
    }
    Ok(())
}

fn record_key(token: &str, principal: &str) -> Vec<u8> {
    [RECORD_PREFIX, token.as_bytes(), b"/", principal.as_bytes()].concat()
}

fn expiry_key(created: UnixMillis, token: &str, principal: &str) -> Vec<u8> {
    [
        EXPIRY_PREFIX,
        format!("{created:016x}/").as_bytes(),
        &record_key(token, principal)[RECORD_PREFIX.len()..],
    ]
    .concat()
}

/// The live record of `claim`'s token at `now`, if any. Expired records count as absent even
/// before they are deleted, so the retention window is exact.
pub fn find(
    state: &(impl StateRead + ?Sized),
    claim: &CreateKeyToken,
    now: UnixMillis,
) -> KmsResult<Option<TokenRecord>> {
    Ok(stored(state, &record_key(&claim.token, &claim.principal))?.filter(|r| r.is_live(now)))
}

fn stored(state: &(impl StateRead + ?Sized), key: &[u8]) -> KmsResult<Option<TokenRecord>> {
    state.get(key)?.map(|bytes| decode("idempotency token", &bytes)).transpose()
}

/// The key a live record answers `claim` with: the same parameters get the key the record
/// names, other parameters an error.
pub fn replay(
    state: &(impl StateRead + ?Sized),
    claim: &CreateKeyToken,
    record: &TokenRecord,
) -> KmsResult<KeyRecord> {
    if record.fingerprint != claim.fingerprint {
        return Err(KmsError::validation(format!(
            "IdempotencyToken {} was already used with different parameters (it created key {}); \
             use a new token for a different CreateKey request",
            claim.token, record.key_id
        )));
    }
    Keys::new(state).get_key(&record.key_id)?.ok_or_else(|| {
        KmsError::not_found(format!(
            "key {} created with IdempotencyToken {} no longer exists",
            record.key_id, claim.token
        ))
    })
}

/// Applies CreateKeyWithToken: the key of a live record for the token, or `create` (the plain
/// CreateKey rules) followed by the token's record, in the same atomic write.
pub(crate) fn create_key_once(
    key: &KeyRecord,
    claim: &CreateKeyToken,
    state: &mut dyn StateWrite,
    create: impl FnOnce(&KeyRecord, &mut dyn StateWrite) -> CommandResult,
) -> CommandResult {
    // The proposer's clock, chosen once and carried in the command like every other `now`.
    let now = key.creation_date;
    validate_token(&claim.token)?;
    if let Some(record) = find(&*state, claim, now)? {
        return Ok(CommandOutput::Key(Box::new(replay(&*state, claim, &record)?)));
    }
    let output = create(key, state)?;
    // Before the new record is written: an expired record of this very token is among those
    // deleted, and the put below must come after that delete.
    expire(now, state)?;
    let record =
        TokenRecord { key_id: key.key_id.clone(), fingerprint: claim.fingerprint.clone(), created: now };
    state.put(&record_key(&claim.token, &claim.principal), &state::encode(&record));
    state.put(&expiry_key(now, &claim.token, &claim.principal), b"");
    Ok(output)
}

/// Deletes up to [`EXPIRED_PER_COMMAND`] index entries that expired by `now`, with their records.
/// A record rewritten since its entry was made (its token was reused after it expired) has a
/// newer entry of its own and stays.
fn expire(now: UnixMillis, state: &mut dyn StateWrite) -> KmsResult<()> {
    let Some(cutoff) = now.checked_sub(RETENTION_MILLIS) else { return Ok(()) };
    // Entries sort by creation time: those created at or before the cutoff have expired.
    let end = [EXPIRY_PREFIX, format!("{:016x}/", cutoff.saturating_add(1)).as_bytes()].concat();
    for (entry, _) in state.scan(EXPIRY_PREFIX, &end, EXPIRED_PER_COMMAND)? {
        state.delete(&entry);
        if let Some((created, record_key)) = parse_expiry_key(&entry)
            && stored(&*state, &record_key)?.is_some_and(|r| r.created == created)
        {
            state.delete(&record_key);
        }
    }
    Ok(())
}

/// `ce/<16 hex digits>/<token>/<principal>` -> (created, `ct/<token>/<principal>`).
fn parse_expiry_key(entry: &[u8]) -> Option<(UnixMillis, Vec<u8>)> {
    let rest = entry.strip_prefix(EXPIRY_PREFIX)?;
    let (hex, rest) = (rest.get(..16)?, rest.get(16..)?.strip_prefix(b"/")?);
    let created = UnixMillis::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    Some((created, [RECORD_PREFIX, rest].concat()))
}

#[cfg(test)]
mod tests;
