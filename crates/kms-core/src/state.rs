//! How keys and aliases are laid out in the replicated key-value state, and the queries over it.
//! Both the state machine (writes) and the API (reads) go through here, so the layout is defined
//! once.

use crate::error::{KmsError, KmsResult};
use crate::grant::Grant;
use crate::ids::KeyRef;
use crate::key::{ImportParameters, KeyRecord, UnixMillis};
use crate::store::{StateRead, StateWrite};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

const KEY_PREFIX: &[u8] = b"k/";
const ALIAS_PREFIX: &[u8] = b"a/";
/// `p/<key id>/<token id>`: import parameters (GetParametersForImport).
const IMPORT_PREFIX: &[u8] = b"p/";
/// `u/<key id>`: the last successful cryptographic use of a key (GetKeyLastUsage). Kept apart
/// from the key record so that recording a use never rewrites the key's material list.
const USAGE_PREFIX: &[u8] = b"u/";
/// `g/<key id>/<grant id>`: the grants of a key, in grant id order.
const GRANT_PREFIX: &[u8] = b"g/";

/// The last successful cryptographic use of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub key_id: String,
    /// The AWS operation name, e.g. `Encrypt`.
    pub operation: String,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub alias_name: String,
    pub target_key_id: String,
    pub creation_date: UnixMillis,
    pub last_updated_date: UnixMillis,
}

/// One page of a listing. `next_marker` is set when more entries follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

fn key_key(key_id: &str) -> Vec<u8> {
    [KEY_PREFIX, key_id.as_bytes()].concat()
}

fn alias_key(alias_name: &str) -> Vec<u8> {
    [ALIAS_PREFIX, alias_name.as_bytes()].concat()
}

fn usage_key(key_id: &str) -> Vec<u8> {
    [USAGE_PREFIX, key_id.as_bytes()].concat()
}

fn import_prefix(key_id: &str) -> Vec<u8> {
    [IMPORT_PREFIX, key_id.as_bytes(), b"/"].concat()
}

fn import_key(key_id: &str, token_id: &str) -> Vec<u8> {
    [import_prefix(key_id).as_slice(), token_id.as_bytes()].concat()
}

fn grant_prefix(key_id: &str) -> Vec<u8> {
    [GRANT_PREFIX, key_id.as_bytes(), b"/"].concat()
}

fn grant_key(key_id: &str, grant_id: &str) -> Vec<u8> {
    [grant_prefix(key_id).as_slice(), grant_id.as_bytes()].concat()
}

/// The end of a prefix range: the prefix with its last byte incremented.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Key records per page of [`Keys::for_each_key`].
const KEY_PAGE: usize = 512;

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> KmsResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|err| KmsError::internal(format!("stored {what} record is corrupt: {err}")))
}

/// Decodes a key record's stored bytes ([`Keys::key_bytes`]).
pub fn decode_key(bytes: &[u8]) -> KmsResult<KeyRecord> {
    decode("key", bytes)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings, numbers and maps with string keys cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Read-side queries over any state view.
pub struct Keys<'a, S: StateRead + ?Sized> {
    state: &'a S,
}

impl<'a, S: StateRead + ?Sized> Keys<'a, S> {
    pub fn new(state: &'a S) -> Self {
        Self { state }
    }

    pub fn get_key(&self, key_id: &str) -> KmsResult<Option<KeyRecord>> {
        self.state.get(&key_key(key_id))?.map(|bytes| decode_key(&bytes)).transpose()
    }

    pub fn key(&self, key_id: &str) -> KmsResult<KeyRecord> {
        decode_key(&self.key_bytes(key_id)?)
    }

    /// The stored bytes of a key record, undecoded (for callers that cache the decoded record
    /// while these bytes stay the same; [`decode_key`] decodes them).
    pub fn key_bytes(&self, key_id: &str) -> KmsResult<Vec<u8>> {
        self.state
            .get(&key_key(key_id))?
            .ok_or_else(|| KmsError::not_found(format!("Key '{key_id}' does not exist")))
    }

    pub fn get_alias(&self, alias_name: &str) -> KmsResult<Option<AliasRecord>> {
        self.state.get(&alias_key(alias_name))?.map(|bytes| decode("alias", &bytes)).transpose()
    }

    pub fn alias(&self, alias_name: &str) -> KmsResult<AliasRecord> {
        self.get_alias(alias_name)?
            .ok_or_else(|| KmsError::not_found(format!("Alias '{alias_name}' does not exist")))
    }

    /// The key a reference names, following an alias.
    pub fn resolve(&self, key_ref: &KeyRef) -> KmsResult<KeyRecord> {
        self.key(&self.resolve_id(key_ref)?)
    }

    /// The id of the key a reference names, following an alias (NotFoundException for an
    /// unknown alias; the key itself is not read).
    pub fn resolve_id<'r>(&self, key_ref: &'r KeyRef) -> KmsResult<Cow<'r, str>> {
        Ok(match key_ref {
            KeyRef::Id(key_id) => Cow::Borrowed(key_id.as_str()),
            KeyRef::Alias(alias_name) => Cow::Owned(self.alias(alias_name)?.target_key_id),
        })
    }

    pub fn list_keys(&self, marker: Option<&str>, limit: usize) -> KmsResult<Page<KeyRecord>> {
        self.page("key", KEY_PREFIX, marker, limit)
    }

    pub fn list_aliases(&self, marker: Option<&str>, limit: usize) -> KmsResult<Page<AliasRecord>> {
        self.page("alias", ALIAS_PREFIX, marker, limit)
    }

    /// Every alias that points at `key_id` (at most 50 per key by AWS's quota).
    pub fn aliases_of(&self, key_id: &str) -> KmsResult<Vec<AliasRecord>> {
        let all = self.scan_all::<AliasRecord>("alias", ALIAS_PREFIX)?;
        Ok(all.into_iter().filter(|a| a.target_key_id == key_id).collect())
    }

    /// The import parameters a token names, if the state still has them.
    pub fn import_parameters(&self, key_id: &str, token_id: &str) -> KmsResult<Option<ImportParameters>> {
        self.state
            .get(&import_key(key_id, token_id))?
            .map(|bytes| decode("import parameters", &bytes))
            .transpose()
    }

    /// Every parameter set of one key (at most a handful).
    pub fn import_parameters_of(&self, key_id: &str) -> KmsResult<Vec<ImportParameters>> {
        self.scan_all("import parameters", &import_prefix(key_id))
    }

    /// Every parameter set of the region, for expiry.
    pub fn all_import_parameters(&self) -> KmsResult<Vec<ImportParameters>> {
        self.scan_all("import parameters", IMPORT_PREFIX)
    }

    pub fn grant(&self, key_id: &str, grant_id: &str) -> KmsResult<Option<Grant>> {
        self.state.get(&grant_key(key_id, grant_id))?.map(|bytes| decode("grant", &bytes)).transpose()
    }

    /// Every grant of one key (at most 50,000 by AWS's quota).
    pub fn grants_of(&self, key_id: &str) -> KmsResult<Vec<Grant>> {
        self.scan_all("grant", &grant_prefix(key_id))
    }

    /// Every grant of the region, in key and grant id order (ListRetirableGrants).
    pub fn all_grants(&self) -> KmsResult<Vec<Grant>> {
        self.scan_all("grant", GRANT_PREFIX)
    }

    pub fn last_use(&self, key_id: &str) -> KmsResult<Option<KeyUse>> {
        self.state.get(&usage_key(key_id))?.map(|bytes| decode("key use", &bytes)).transpose()
    }

    /// Visits every key record in key id order, reading [`KEY_PAGE`] records at a time, so
    /// memory stays bounded by one page (and what `visit` keeps) whatever the number of keys.
    pub fn for_each_key(&self, mut visit: impl FnMut(KeyRecord)) -> KmsResult<()> {
        let end = prefix_end(KEY_PREFIX);
        let mut start = KEY_PREFIX.to_vec();
        loop {
            let entries = self.state.scan(&start, &end, KEY_PAGE)?;
            let Some((last, _)) = entries.last() else { return Ok(()) };
            // The smallest key after `last`: where the next page starts.
            start = [last.as_slice(), &[0]].concat();
            for (_, value) in &entries {
                visit(decode_key(value)?);
            }
            if entries.len() < KEY_PAGE {
                return Ok(());
            }
        }
    }

    /// The key records for which `keep` holds, read a page at a time ([`Self::for_each_key`]).
    pub fn keys_where(&self, keep: impl Fn(&KeyRecord) -> bool) -> KmsResult<Vec<KeyRecord>> {
        let mut kept = Vec::new();
        self.for_each_key(|key| {
            if keep(&key) {
                kept.push(key);
            }
        })?;
        Ok(kept)
    }

    fn scan_all<T: for<'de> Deserialize<'de>>(&self, what: &str, prefix: &[u8]) -> KmsResult<Vec<T>> {
        let entries = self.state.scan(prefix, &prefix_end(prefix), usize::MAX)?;
        entries.iter().map(|(_, value)| decode(what, value)).collect()
    }

    /// Markers are the stored name of the first entry of the next page, so paging is stable
    /// while entries are added or removed.
    fn page<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        prefix: &[u8],
        marker: Option<&str>,
        limit: usize,
    ) -> KmsResult<Page<T>> {
        let start = match marker {
            Some(marker) => {
                if marker.is_empty() || marker.len() > 1024 || marker.contains('\0') {
                    return Err(KmsError::invalid_marker(format!(
                        "marker '{marker}' is not a marker this service returned"
                    )));
                }
                [prefix, marker.as_bytes()].concat()
            }
            None => prefix.to_vec(),
        };
        let mut entries = self.state.scan(&start, &prefix_end(prefix), limit.saturating_add(1))?;
        let next_marker = if entries.len() > limit {
            let (next, _) = entries.remove(limit);
            entries.truncate(limit);
            Some(String::from_utf8_lossy(&next[prefix.len()..]).into_owned())
        } else {
            None
        };
        let items = entries.iter().map(|(_, value)| decode(what, value)).collect::<KmsResult<_>>()?;
        Ok(Page { items, next_marker })
    }
}

/// Write-side helpers used while a command is applied.
pub fn put_key(state: &mut dyn StateWrite, key: &KeyRecord) {
    state.put(&key_key(&key.key_id), &encode(key));
}

pub fn put_last_use(state: &mut dyn StateWrite, key_use: &KeyUse) {
    state.put(&usage_key(&key_use.key_id), &encode(key_use));
}

/// Deletes a key record together with what only exists for it (its last-use record).
pub fn delete_key(state: &mut dyn StateWrite, key_id: &str) {
    state.delete(&usage_key(key_id));
    state.delete(&key_key(key_id));
}

pub fn put_alias(state: &mut dyn StateWrite, alias: &AliasRecord) {
    state.put(&alias_key(&alias.alias_name), &encode(alias));
}

pub fn delete_alias(state: &mut dyn StateWrite, alias_name: &str) {
    state.delete(&alias_key(alias_name));
}

pub fn put_grant(state: &mut dyn StateWrite, grant: &Grant) {
    state.put(&grant_key(&grant.key_id, &grant.grant_id), &encode(grant));
}

pub fn delete_grant(state: &mut dyn StateWrite, key_id: &str, grant_id: &str) {
    state.delete(&grant_key(key_id, grant_id));
}

pub fn put_import_parameters(state: &mut dyn StateWrite, params: &ImportParameters) {
    state.put(&import_key(&params.key_id, &params.token_id), &encode(params));
}

pub fn delete_import_parameters(state: &mut dyn StateWrite, key_id: &str, token_id: &str) {
    state.delete(&import_key(key_id, token_id));
}
