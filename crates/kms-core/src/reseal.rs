//! Root key rotation's write: a key's sealed material replaced by the same material sealed under
//! the new root key.
//!
//! The leader's maintenance loop unseals what an older root key sealed and proposes
//! [`Command::ResealKey`](crate::command::Command::ResealKey) with both the bytes it read and the
//! bytes that replace them. The state machine swaps a value only while it still equals what the
//! proposer read, so a rotation, an import or a replica update that landed in between wins, and
//! the next round re-seals whatever it wrote, if that still needs it. The material itself is the
//! same before and after: nothing a client sees changes.

use serde::{Deserialize, Serialize};

use crate::command::{CommandOutput, CommandResult};
use crate::key::{KeyRecord, MaterialVersion};
use crate::state::{self, Keys};
use crate::store::StateWrite;

/// One sealed value and its replacement.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resealed {
    #[serde(with = "crate::bytes")]
    pub previous: Vec<u8>,
    #[serde(with = "crate::bytes")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for Resealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resealed").field("len", &self.sealed.len()).finish_non_exhaustive()
    }
}

/// Everything of one key that was re-sealed, by material version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReseal {
    /// `(version, value)` for `materials`.
    pub materials: Vec<(u32, Resealed)>,
    /// `(version, value)` for `divergent_materials`.
    pub divergent: Vec<(u32, Resealed)>,
    /// The imported material's fingerprint, recomputed under the new root key.
    pub fingerprint: Option<Resealed>,
}

impl KeyReseal {
    pub fn is_empty(&self) -> bool {
        self.materials.is_empty() && self.divergent.is_empty() && self.fingerprint.is_none()
    }
}

/// Applies `reseal` to `key_id`: each value replaced only where it is still `previous`. A key
/// that no longer exists is nothing to do. Answers how many values were replaced.
pub fn apply(key_id: &str, reseal: &KeyReseal, state: &mut dyn StateWrite) -> CommandResult {
    let Some(mut key) = Keys::new(&*state).get_key(key_id)? else {
        return Ok(CommandOutput::Resealed(0));
    };
    let replaced = swap_all(&mut key, reseal);
    if replaced > 0 {
        state::put_key(state, &key);
    }
    Ok(CommandOutput::Resealed(replaced))
}

fn swap_all(key: &mut KeyRecord, reseal: &KeyReseal) -> u32 {
    let mut replaced = swap_materials(&mut key.materials, &reseal.materials)
        + swap_materials(&mut key.divergent_materials, &reseal.divergent);
    if let (Some(import), Some(fingerprint)) = (key.import.as_mut(), &reseal.fingerprint) {
        replaced += u32::from(swap(&mut import.fingerprint, fingerprint));
    }
    replaced
}

fn swap_materials(materials: &mut [MaterialVersion], resealed: &[(u32, Resealed)]) -> u32 {
    let mut replaced = 0;
    for (version, value) in resealed {
        if let Some(material) = materials.iter_mut().find(|m| m.version == *version) {
            replaced += u32::from(swap(&mut material.sealed, value));
        }
    }
    replaced
}

/// Replaces `current` by `value.sealed` if it is still `value.previous`. Plain equality is fine
/// here: both sides are sealed (or keyed) values, not secrets.
fn swap(current: &mut Vec<u8>, value: &Resealed) -> bool {
    let still_the_same = *current == value.previous;
    if still_the_same {
        current.clone_from(&value.sealed);
    }
    still_the_same
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::command::tests::{MapState, TEST_REGION, new_key};
    use crate::command::{Command, apply as apply_command};
    use crate::spec::KeySpec;

    fn resealed(previous: &[u8], sealed: &[u8]) -> Resealed {
        Resealed { previous: previous.to_vec(), sealed: sealed.to_vec() }
    }

    #[test]
    fn replaces_only_what_is_unchanged() {
        let mut state = MapState::default();
        let mut key = new_key("k1", KeySpec::SymmetricDefault);
        key.materials[0].sealed = b"old-0".to_vec();
        key.materials.push(MaterialVersion {
            version: 1,
            sealed: b"old-1".to_vec(),
            ..key.materials[0].clone()
        });
        apply_command(&Command::CreateKey { key: key.clone() }, TEST_REGION, &mut state).unwrap();

        let reseal = KeyReseal {
            // Version 1 changed since it was read: left alone.
            materials: vec![(0, resealed(b"old-0", b"new-0")), (1, resealed(b"stale", b"new-1"))],
            ..KeyReseal::default()
        };
        let command = Command::ResealKey { key_id: "k1".into(), reseal };
        assert_eq!(apply_command(&command, TEST_REGION, &mut state).unwrap(), CommandOutput::Resealed(1));
        let stored = Keys::new(&state).key("k1").unwrap();
        assert_eq!(stored.materials[0].sealed, b"new-0");
        assert_eq!(stored.materials[1].sealed, b"old-1");
        // Replayed: nothing is still the same, so nothing changes.
        assert_eq!(apply_command(&command, TEST_REGION, &mut state).unwrap(), CommandOutput::Resealed(0));
        // A key that is gone is nothing to do.
        let gone = Command::ResealKey { key_id: "k2".into(), reseal: KeyReseal::default() };
        assert_eq!(apply_command(&gone, TEST_REGION, &mut state).unwrap(), CommandOutput::Resealed(0));
    }
}
