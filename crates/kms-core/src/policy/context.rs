//! The request context: the condition keys of one request and their values.
//!
//! Condition key names are case-insensitive (AWS), so they are stored lower-cased. Every key holds
//! a list of values: one for single-valued keys, any number for the multivalued ones
//! (`kms:EncryptionContextKeys`, `kms:GrantOperations`, `aws:TagKeys`). A key with no values is
//! absent, like a key the request does not have or one this service does not know.

use std::collections::BTreeMap;

/// Condition keys this service fills in.
pub mod keys {
    pub const CALLER_ACCOUNT: &str = "kms:CallerAccount";
    pub const ENCRYPTION_CONTEXT_PREFIX: &str = "kms:EncryptionContext:";
    pub const ENCRYPTION_CONTEXT_KEYS: &str = "kms:EncryptionContextKeys";
    pub const REQUEST_ALIAS: &str = "kms:RequestAlias";
    pub const GRANT_OPERATIONS: &str = "kms:GrantOperations";
    pub const GRANTEE_PRINCIPAL: &str = "kms:GranteePrincipal";
    pub const RETIRING_PRINCIPAL: &str = "kms:RetiringPrincipal";
    pub const GRANT_IS_FOR_AWS_RESOURCE: &str = "kms:GrantIsForAWSResource";
    pub const BYPASS_LOCKOUT_CHECK: &str = "kms:BypassPolicyLockoutSafetyCheck";
    pub const KEY_SPEC: &str = "kms:KeySpec";
    pub const KEY_USAGE: &str = "kms:KeyUsage";
    pub const KEY_ORIGIN: &str = "kms:KeyOrigin";
    pub const KEY_MANAGER: &str = "kms:KeyManager";
    pub const MULTI_REGION: &str = "kms:MultiRegion";
    pub const ENCRYPTION_ALGORITHM: &str = "kms:EncryptionAlgorithm";
    pub const SIGNING_ALGORITHM: &str = "kms:SigningAlgorithm";
    pub const MAC_ALGORITHM: &str = "kms:MacAlgorithm";
    pub const MESSAGE_TYPE: &str = "kms:MessageType";
    pub const KEY_AGREEMENT_ALGORITHM: &str = "kms:KeyAgreementAlgorithm";
    pub const DATA_KEY_PAIR_SPEC: &str = "kms:DataKeyPairSpec";
    pub const WRAPPING_ALGORITHM: &str = "kms:WrappingAlgorithm";
    pub const WRAPPING_KEY_SPEC: &str = "kms:WrappingKeySpec";
    pub const EXPIRATION_MODEL: &str = "kms:ExpirationModel";
    pub const PENDING_WINDOW_DAYS: &str = "kms:ScheduleKeyDeletionPendingWindowInDays";
    pub const ROTATION_PERIOD_DAYS: &str = "kms:RotationPeriodInDays";
    pub const PRINCIPAL_ARN: &str = "aws:PrincipalArn";
    pub const PRINCIPAL_ACCOUNT: &str = "aws:PrincipalAccount";
    pub const SOURCE_IP: &str = "aws:SourceIp";
    pub const CURRENT_TIME: &str = "aws:CurrentTime";
    pub const EPOCH_TIME: &str = "aws:EpochTime";
    pub const RESOURCE_TAG_PREFIX: &str = "aws:ResourceTag/";
    pub const REQUEST_TAG_PREFIX: &str = "aws:RequestTag/";
    pub const TAG_KEYS: &str = "aws:TagKeys";
}

/// The condition keys of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    values: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value to `key` (a second call makes the key multivalued).
    pub fn add(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.values.entry(key.to_ascii_lowercase()).or_default().push(value.into());
        self
    }

    /// Adds every value of `values` to `key`.
    pub fn add_all<V: Into<String>>(&mut self, key: &str, values: impl IntoIterator<Item = V>) -> &mut Self {
        for value in values {
            self.add(key, value);
        }
        self
    }

    /// `kms:EncryptionContext:<key>` for every pair, and `kms:EncryptionContextKeys`.
    pub fn add_encryption_context<'a>(
        &mut self,
        context: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        for (key, value) in context {
            self.add(&format!("{}{key}", keys::ENCRYPTION_CONTEXT_PREFIX), value.as_str());
            self.add(keys::ENCRYPTION_CONTEXT_KEYS, key.as_str());
        }
        self
    }

    /// The values of a key; `None` when the request has none.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        let values = self.values.get(&key.to_ascii_lowercase())?;
        (!values.is_empty()).then_some(values.as_slice())
    }

    /// Removes `key`, e.g. to re-evaluate a request under a changed value.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.values.remove(&key.to_ascii_lowercase());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_multivalued() {
        let mut ctx = RequestContext::new();
        let pairs = [("Dept".to_string(), "IT".to_string()), ("app".to_string(), "x".to_string())];
        ctx.add_encryption_context(pairs.iter().map(|(k, v)| (k, v)));
        assert_eq!(ctx.get("KMS:encryptioncontext:dept"), Some(&["IT".to_string()][..]));
        assert_eq!(ctx.get("kms:EncryptionContextKeys").map(<[String]>::len), Some(2));
        assert_eq!(ctx.get("kms:ViaService"), None);
    }
}
