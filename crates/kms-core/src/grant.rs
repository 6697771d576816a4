//! Grants: a key's delegations of a few operations to one principal, optionally only for
//! requests whose encryption context matches a constraint. Grants only ever allow; they cannot
//! overrule an explicit deny of the key policy.
//!
//! A grant token names the key and the grant (`base64url(0x01 | grant id (32 bytes) | key id)`).
//! It carries no authority of its own: the grant it names is read from the replicated state and
//! checked like any other, so the token only tells a node which grant to wait for.

use crate::error::{KmsError, KmsResult};
use crate::ids::{RegionScope, check_length};
use crate::key::{KeyRecord, UnixMillis};
use crate::policy::{Action, Principal};
use crate::spec::{GrantOperation, KeyFamily, KeyUsage};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// AWS's quota of grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;
/// Pairs per encryption-context constraint, and the longest value (AWS).
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
pub const MAX_CONSTRAINT_VALUE_CHARS: usize = 384;
/// Grant ids are 32 random bytes in lower-case hex.
pub const GRANT_ID_BYTES: usize = 32;

const TOKEN_VERSION: u8 = 1;

/// The encryption-context constraints of a grant. Keys compare case-insensitively, values
/// exactly (AWS's rule for grant constraints).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    /// The request's context must contain these pairs (it may have more).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context_subset: BTreeMap<String, String>,
    /// The request's context must be exactly these pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context_equals: BTreeMap<String, String>,
}

fn same_key(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Whether `context` has the pair `(key, value)`, the key compared case-insensitively.
fn has_pair(context: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    context.iter().any(|(k, v)| v == value && same_key(k, key))
}

fn contains_all(outer: &BTreeMap<String, String>, inner: &BTreeMap<String, String>) -> bool {
    inner.iter().all(|(k, v)| has_pair(outer, k, v))
}

impl GrantConstraints {
    pub fn is_empty(&self) -> bool {
        self.encryption_context_subset.is_empty() && self.encryption_context_equals.is_empty()
    }

    /// AWS's limits on a constraint.
    pub fn validate(&self) -> KmsResult<()> {
        for (name, pairs) in [
            ("EncryptionContextSubset", &self.encryption_context_subset),
            ("EncryptionContextEquals", &self.encryption_context_equals),
        ] {
            if pairs.len() > MAX_CONSTRAINT_PAIRS {
                return Err(KmsError::validation(format!(
                    "Constraints.{name} has {} pairs; at most {MAX_CONSTRAINT_PAIRS} are allowed",
                    pairs.len()
                )));
            }
            if pairs.iter().any(|(k, v)| k.is_empty() || v.chars().count() > MAX_CONSTRAINT_VALUE_CHARS) {
                return Err(KmsError::validation(format!(
                    "Constraints.{name}: keys must not be empty and values may have at most \
                     {MAX_CONSTRAINT_VALUE_CHARS} characters"
                )));
            }
        }
        Ok(())
    }

    /// Whether a request with encryption context `context` satisfies the constraints.
    pub fn allow(&self, context: &BTreeMap<String, String>) -> bool {
        let equals = &self.encryption_context_equals;
        let equals_ok = equals.is_empty() || (context.len() == equals.len() && contains_all(context, equals));
        equals_ok && contains_all(context, &self.encryption_context_subset)
    }

    /// Whether every context these constraints allow is also allowed by `parent`: what a grant
    /// created under a grant's CreateGrant permission must satisfy (AWS: "equally strict or
    /// stricter").
    pub fn at_least_as_strict_as(&self, parent: &GrantConstraints) -> bool {
        let equals_ok = parent.encryption_context_equals.is_empty()
            || (self.encryption_context_equals.len() == parent.encryption_context_equals.len()
                && contains_all(&self.encryption_context_equals, &parent.encryption_context_equals));
        // A context allowed here contains our subset and (if set) equals our equals.
        let mut required = self.encryption_context_subset.clone();
        required.extend(self.encryption_context_equals.iter().map(|(k, v)| (k.clone(), v.clone())));
        equals_ok && contains_all(&required, &parent.encryption_context_subset)
    }
}

/// One grant, as the replicated state keeps it (`g/<key id>/<grant id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: String,
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub creation_date: UnixMillis,
    /// As the caller gave it: a principal name, an ARN or an account.
    pub grantee_principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    /// `arn:<partition>:iam::<account>:root` of the account the grant was created in.
    pub issuing_account: String,
    pub operations: Vec<GrantOperation>,
    #[serde(default, skip_serializing_if = "GrantConstraints::is_empty")]
    pub constraints: GrantConstraints,
}

impl Grant {
    /// Whether this grant lets `principal` perform `action` on its key in a request with
    /// encryption context `context`.
    pub fn allows(
        &self,
        principal: &Principal,
        scope: &RegionScope,
        action: Action,
        context: &BTreeMap<String, String>,
    ) -> bool {
        let Some(operation) = action.grant_operation() else {
            return false;
        };
        self.operations.contains(&operation)
            && principal.is_named_by(&self.grantee_principal, scope)
            && (!action.takes_encryption_context() || self.constraints.allow(context))
    }

    /// RetireGrant by the grant's own parties: its retiring principal, or its grantee when the
    /// grant includes the RetireGrant operation.
    pub fn retirable_by(&self, principal: &Principal, scope: &RegionScope) -> bool {
        self.retiring_principal.as_deref().is_some_and(|retiring| principal.is_named_by(retiring, scope))
            || (self.operations.contains(&GrantOperation::RetireGrant)
                && principal.is_named_by(&self.grantee_principal, scope))
    }

    /// Whether `other` asks for exactly what this grant gives (CreateGrant with a Name it
    /// already used is idempotent only then).
    pub fn same_terms(&self, other: &Grant) -> bool {
        self.key_id == other.key_id
            && self.name == other.name
            && self.grantee_principal == other.grantee_principal
            && self.retiring_principal == other.retiring_principal
            && self.operations == other.operations
            && self.constraints == other.constraints
    }

    pub fn token(&self) -> String {
        grant_token(&self.key_id, &self.grant_id)
    }
}

/// What a grant token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTokenRef {
    pub key_id: String,
    pub grant_id: String,
}

pub fn grant_token(key_id: &str, grant_id: &str) -> String {
    let mut bytes = vec![TOKEN_VERSION];
    bytes.extend(decode_hex(grant_id).unwrap_or_default());
    bytes.extend(key_id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a grant token; anything that is not one of ours is InvalidGrantTokenException.
pub fn parse_grant_token(token: &str) -> KmsResult<GrantTokenRef> {
    let invalid = || KmsError::invalid_grant_token("the grant token is not valid");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let (&version, rest) = bytes.split_first().ok_or_else(invalid)?;
    if version != TOKEN_VERSION || rest.len() <= GRANT_ID_BYTES {
        return Err(invalid());
    }
    let (grant_id, key_id) = rest.split_at(GRANT_ID_BYTES);
    let key_id = std::str::from_utf8(key_id).map_err(|_| invalid())?;
    Ok(GrantTokenRef { key_id: key_id.to_string(), grant_id: base16ct::lower::encode_string(grant_id) })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(text).ok()
}

/// A GrantId field: AWS's length limits, then our form (InvalidGrantIdException otherwise).
pub fn validate_grant_id(grant_id: &str) -> KmsResult<()> {
    check_length("grantId", grant_id, 1, 128)?;
    let ours = grant_id.len() == 2 * GRANT_ID_BYTES
        && grant_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ours {
        return Err(KmsError::invalid_grant_id(format!("'{grant_id}' is not a valid grant id")));
    }
    Ok(())
}

/// A grant Name: 1 to 256 of `[a-zA-Z0-9:/_-]`.
pub fn validate_name(name: &str) -> KmsResult<()> {
    check_length("name", name, 1, 256)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-')) {
        return Err(KmsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    Ok(())
}

/// A GranteePrincipal / RetiringPrincipal: 1 to 256 of `[\w+=,.@:/-]`.
pub fn validate_principal(field: &str, principal: &str) -> KmsResult<()> {
    check_length(field, principal, 1, 256)?;
    let valid = principal.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | ':' | '/' | '-')
    });
    if !valid {
        return Err(KmsError::validation(format!(
            "1 validation error detected: Value '{principal}' at '{field}' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$"
        )));
    }
    Ok(())
}

/// The grant operations a key of this type supports (AWS: anything else is a ValidationException).
pub fn operations_for(key: &KeyRecord) -> Vec<GrantOperation> {
    use GrantOperation as G;
    let specific: &[GrantOperation] = match (key.key_spec.family(), key.key_usage) {
        (KeyFamily::Symmetric, _) => &[
            G::Encrypt,
            G::Decrypt,
            G::GenerateDataKey,
            G::GenerateDataKeyWithoutPlaintext,
            G::GenerateDataKeyPair,
            G::GenerateDataKeyPairWithoutPlaintext,
            G::ReEncryptFrom,
            G::ReEncryptTo,
        ],
        (KeyFamily::Hmac, _) => &[G::GenerateMac, G::VerifyMac],
        (KeyFamily::Asymmetric, KeyUsage::EncryptDecrypt) => {
            &[G::Encrypt, G::Decrypt, G::ReEncryptFrom, G::ReEncryptTo, G::GetPublicKey]
        }
        (KeyFamily::Asymmetric, KeyUsage::SignVerify) => &[G::Sign, G::Verify, G::GetPublicKey],
        (KeyFamily::Asymmetric, KeyUsage::KeyAgreement) => &[G::DeriveSharedSecret, G::GetPublicKey],
        (KeyFamily::Asymmetric, KeyUsage::GenerateVerifyMac) => &[],
    };
    let mut all = specific.to_vec();
    all.extend([G::CreateGrant, G::RetireGrant, G::DescribeKey]);
    all
}

/// The operations and constraints of a new grant must suit its key.
pub fn check_grant_terms(
    key: &KeyRecord,
    operations: &[GrantOperation],
    constraints: &GrantConstraints,
) -> KmsResult<()> {
    if operations.is_empty() {
        return Err(KmsError::validation("Operations must list at least one grant operation"));
    }
    let supported = operations_for(key);
    if let Some(op) = operations.iter().find(|op| !supported.contains(op)) {
        return Err(KmsError::validation(format!(
            "grant operation {op} is not valid for key {} ({}, {})",
            key.key_id, key.key_spec, key.key_usage
        )));
    }
    constraints.validate()?;
    if !constraints.is_empty() && key.key_spec.family() != KeyFamily::Symmetric {
        return Err(KmsError::validation(format!(
            "encryption context constraints are only valid on symmetric encryption keys; key {} is {}",
            key.key_id, key.key_spec
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorKind;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn scope() -> RegionScope {
        RegionScope::new("dev-1", "111122223333")
    }

    fn grant(operations: Vec<GrantOperation>, constraints: GrantConstraints) -> Grant {
        Grant {
            grant_id: "ab".repeat(32),
            key_id: "k1".into(),
            name: None,
            creation_date: 0,
            grantee_principal: "bob".into(),
            retiring_principal: Some("arn:aws:iam::111122223333:user/carol".into()),
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations,
            constraints,
        }
    }

    #[test]
    fn constraints_match_keys_ignoring_case_and_values_exactly() {
        let subset =
            GrantConstraints { encryption_context_subset: map(&[("Dept", "IT")]), ..Default::default() };
        assert!(subset.allow(&map(&[("dept", "IT"), ("app", "x")])));
        assert!(!subset.allow(&map(&[("dept", "it")])));
        assert!(!subset.allow(&map(&[])));
        let equals =
            GrantConstraints { encryption_context_equals: map(&[("dept", "IT")]), ..Default::default() };
        assert!(equals.allow(&map(&[("DEPT", "IT")])));
        assert!(!equals.allow(&map(&[("dept", "IT"), ("app", "x")])));
        assert!(GrantConstraints::default().allow(&map(&[("any", "thing")])));
    }

    #[test]
    fn child_constraints_must_be_as_strict() {
        let none = GrantConstraints::default();
        let subset = GrantConstraints { encryption_context_subset: map(&[("a", "1")]), ..Default::default() };
        let wider = GrantConstraints {
            encryption_context_subset: map(&[("a", "1"), ("b", "2")]),
            ..Default::default()
        };
        let equals = GrantConstraints {
            encryption_context_equals: map(&[("a", "1"), ("b", "2")]),
            ..Default::default()
        };
        assert!(subset.at_least_as_strict_as(&none));
        assert!(!none.at_least_as_strict_as(&subset));
        assert!(wider.at_least_as_strict_as(&subset));
        assert!(equals.at_least_as_strict_as(&subset));
        assert!(!wider.at_least_as_strict_as(&equals));
        assert!(equals.at_least_as_strict_as(&equals));
    }

    #[test]
    fn grants_allow_their_operations_to_their_grantee_under_their_constraints() {
        let s = scope();
        let bob = Principal::from_name("bob", &s);
        let alice = Principal::from_name("alice", &s);
        let constraints =
            GrantConstraints { encryption_context_subset: map(&[("tenant", "42")]), ..Default::default() };
        let g = grant(vec![GrantOperation::Decrypt, GrantOperation::DescribeKey], constraints);
        let tenant = map(&[("tenant", "42")]);
        assert!(g.allows(&bob, &s, Action::Decrypt, &tenant));
        assert!(!g.allows(&bob, &s, Action::Decrypt, &map(&[("tenant", "43")])));
        assert!(
            g.allows(&bob, &s, Action::DescribeKey, &map(&[])),
            "constraints do not apply to DescribeKey"
        );
        assert!(!g.allows(&bob, &s, Action::Encrypt, &tenant));
        assert!(!g.allows(&alice, &s, Action::Decrypt, &tenant));
        assert!(!g.allows(&bob, &s, Action::PutKeyPolicy, &tenant), "grants never allow policy changes");
        let carol = Principal::from_name("carol", &s);
        assert!(g.retirable_by(&carol, &s));
        assert!(!g.retirable_by(&bob, &s), "the grantee needs the RetireGrant operation");
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let token = grant_token("1234abcd-12ab-34cd-56ef-1234567890ab", &"0f".repeat(32));
        let parsed = parse_grant_token(&token).unwrap();
        assert_eq!(parsed.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(parsed.grant_id, "0f".repeat(32));
        for bad in ["", "!!!", "AQ", &URL_SAFE_NO_PAD.encode([2u8; 40]), &URL_SAFE_NO_PAD.encode([1u8; 33])] {
            assert_eq!(
                parse_grant_token(bad).unwrap_err().kind,
                ErrorKind::InvalidGrantTokenException,
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_names_and_principals() {
        assert!(validate_grant_id(&"a1".repeat(32)).is_ok());
        assert_eq!(validate_grant_id("nope").unwrap_err().kind, ErrorKind::InvalidGrantIdException);
        assert_eq!(validate_grant_id("").unwrap_err().kind, ErrorKind::ValidationException);
        assert!(validate_name("app/reader-1:x_y").is_ok());
        assert!(validate_name("a b").is_err());
        assert!(validate_principal("granteePrincipal", "spiffe://cluster/ns/a/sa/b").is_ok());
        assert!(validate_principal("granteePrincipal", "a b").is_err());
    }
}
