//! Key ids, aliases and ARNs: parsing what callers send, and building what we return.

use crate::error::{KmsError, KmsResult};
use serde::{Deserialize, Serialize};

/// The longest `KeyId` a request may carry (AWS's limit).
pub const MAX_KEY_REF_LEN: usize = 2048;

/// Where this region lives in ARN terms. Comes from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionScope {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl RegionScope {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        Self { partition: "aws".into(), region: region.into(), account: account.into() }
    }

    // Both are on every request's path (the response's KeyId, the policy context, the audit
    // record): joined in one allocation of the right size, where `format!` cost 3 % of a node's
    // CPU under Encrypt load.
    pub fn key_arn(&self, key_id: &str) -> String {
        self.arn(&["key/", key_id])
    }

    pub fn alias_arn(&self, alias_name: &str) -> String {
        self.arn(&[alias_name])
    }

    fn arn(&self, resource: &[&str]) -> String {
        let parts = self.arn_prefix().into_iter().chain(resource.iter().copied());
        let mut arn = String::with_capacity(parts.clone().map(str::len).sum());
        parts.for_each(|part| arn.push_str(part));
        arn
    }

    /// `arn:<partition>:kms:<region>:<account>:`, in pieces: what every ARN of this region starts
    /// with, for building ARNs and recognising them alike.
    fn arn_prefix(&self) -> [&str; 7] {
        ["arn:", &self.partition, ":kms:", &self.region, ":", &self.account, ":"]
    }

    /// Whether `text` is a key ARN of this region (not an alias ARN) as [`key_arn`] writes it:
    /// what every response's `KeyId` is. Checked in place, without parsing or allocating.
    ///
    /// [`key_arn`]: Self::key_arn
    pub fn is_key_arn(&self, text: &str) -> bool {
        let key_id = self
            .arn_prefix()
            .into_iter()
            .chain(["key/"])
            .try_fold(text, |rest, part| rest.strip_prefix(part));
        key_id.is_some_and(|id| !id.is_empty()) && text.len() <= MAX_KEY_REF_LEN
    }

    /// Parses a `KeyId` request field: a key id, key ARN, alias name or alias ARN.
    /// `allow_alias` is false for management operations, which AWS restricts to ids and ARNs.
    pub fn parse_key_ref(&self, text: &str, allow_alias: bool) -> KmsResult<KeyRef> {
        check_length("keyId", text, 1, MAX_KEY_REF_LEN)?;
        let key_ref = if let Some(rest) = text.strip_prefix("arn:") {
            self.parse_arn(text, rest)?
        } else if text.starts_with("alias/") {
            KeyRef::Alias(text.to_string())
        } else {
            KeyRef::Id(text.to_string())
        };
        if !allow_alias && matches!(key_ref, KeyRef::Alias(_)) {
            return Err(KmsError::validation(format!(
                "this operation needs a key id or key ARN, not the alias '{text}'"
            )));
        }
        Ok(key_ref)
    }

    fn parse_arn(&self, text: &str, rest: &str) -> KmsResult<KeyRef> {
        // arn:<partition>:kms:<region>:<account>:<resource>
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(KmsError::invalid_arn(format!("'{text}' is not a valid ARN")));
        };
        if service != "kms" || partition.is_empty() || region.is_empty() || account.is_empty() {
            return Err(KmsError::invalid_arn(format!("'{text}' is not a valid KMS ARN")));
        }
        if partition != self.partition || region != self.region || account != self.account {
            // Keys of other regions or accounts do not exist here; AWS answers NotFound too.
            return Err(KmsError::not_found(format!(
                "key '{text}' does not exist in region {} of account {}",
                self.region, self.account
            )));
        }
        if let Some(key_id) = resource.strip_prefix("key/") {
            Ok(KeyRef::Id(key_id.to_string()))
        } else if resource.starts_with("alias/") {
            Ok(KeyRef::Alias(resource.to_string()))
        } else {
            Err(KmsError::invalid_arn(format!("'{text}' names neither a key nor an alias")))
        }
    }
}

/// A reference to a key as a caller gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    Id(String),
    Alias(String),
}

/// A fresh key id: a random UUID, or `mrk-` + 32 hex digits for a multi-region key.
pub fn new_key_id(multi_region: bool) -> String {
    let uuid = uuid::Uuid::new_v4();
    if multi_region { format!("mrk-{}", uuid.simple()) } else { uuid.to_string() }
}

pub fn is_multi_region_key_id(key_id: &str) -> bool {
    key_id.starts_with("mrk-")
}

/// The alias-name rules of CreateAlias / UpdateAlias / DeleteAlias.
pub fn validate_alias_name(name: &str) -> KmsResult<()> {
    check_length("aliasName", name, 1, 256)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-')) {
        return Err(KmsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    let Some(suffix) = name.strip_prefix("alias/") else {
        return Err(KmsError::validation(format!(
            "alias name '{name}' must begin with 'alias/', e.g. alias/{name}"
        )));
    };
    if suffix.is_empty() {
        return Err(KmsError::invalid_alias_name("alias name 'alias/' has no name after the prefix"));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::invalid_alias_name(format!(
            "alias name '{name}' uses the prefix alias/aws/, which is reserved for AWS managed keys"
        )));
    }
    Ok(())
}

/// AWS's length-constraint wording.
pub fn check_length(field: &str, value: &str, min: usize, max: usize) -> KmsResult<()> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(KmsError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
             Member must have length between {min} and {max}, inclusive (got {len})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn scope() -> RegionScope {
        RegionScope::new("dev-1", "000000000000")
    }

    #[test]
    fn arns_have_the_aws_form() {
        let s = scope();
        assert_eq!(s.key_arn("1234abcd"), "arn:aws:kms:dev-1:000000000000:key/1234abcd");
        assert_eq!(s.alias_arn("alias/app"), "arn:aws:kms:dev-1:000000000000:alias/app");
        assert!(s.is_key_arn(&s.key_arn("1234abcd")));
        for other in [
            "1234abcd",
            "arn:aws:kms:dev-1:000000000000:key/",
            "arn:aws:kms:dev-1:000000000000:alias/app",
            "arn:aws:kms:dev-2:000000000000:key/1234abcd",
            "arn:aws:kms:dev-1:000000000001:key/1234abcd",
            "arn:aws-cn:kms:dev-1:000000000000:key/1234abcd",
            "arn:aws:kms:dev-1:000000000000:key",
        ] {
            assert!(!s.is_key_arn(other), "{other}");
        }
        assert!(!s.is_key_arn(&s.key_arn(&"k".repeat(MAX_KEY_REF_LEN))), "longer than a KeyId may be");
    }

    #[test]
    fn key_refs_parse_in_every_form() {
        let s = scope();
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(s.parse_key_ref(id, false).unwrap(), KeyRef::Id(id.into()));
        assert_eq!(s.parse_key_ref(&s.key_arn(id), false).unwrap(), KeyRef::Id(id.into()));
        assert_eq!(s.parse_key_ref("alias/app", true).unwrap(), KeyRef::Alias("alias/app".into()));
        assert_eq!(
            s.parse_key_ref(&s.alias_arn("alias/app"), true).unwrap(),
            KeyRef::Alias("alias/app".into())
        );
        assert!(s.parse_key_ref("alias/app", false).is_err());
    }

    #[test]
    fn foreign_and_malformed_arns_are_rejected() {
        let s = scope();
        let other = "arn:aws:kms:eu-west-1:000000000000:key/abc";
        assert_eq!(s.parse_key_ref(other, true).unwrap_err().kind, ErrorKind::NotFoundException);
        assert_eq!(
            s.parse_key_ref("arn:aws:s3:::bucket", true).unwrap_err().kind,
            ErrorKind::InvalidArnException
        );
        assert_eq!(s.parse_key_ref("", true).unwrap_err().kind, ErrorKind::ValidationException);
    }

    #[test]
    fn alias_names_follow_aws_rules() {
        assert!(validate_alias_name("alias/my-app_1:x/y").is_ok());
        assert_eq!(validate_alias_name("my-app").unwrap_err().kind, ErrorKind::ValidationException);
        assert_eq!(
            validate_alias_name("alias/aws/s3").unwrap_err().kind,
            ErrorKind::InvalidAliasNameException
        );
        assert_eq!(validate_alias_name("alias/a b").unwrap_err().kind, ErrorKind::ValidationException);
        assert!(validate_alias_name(&format!("alias/{}", "a".repeat(251))).is_err());
    }

    #[test]
    fn key_ids_have_the_right_shape() {
        assert_eq!(new_key_id(false).len(), 36);
        let mrk = new_key_id(true);
        assert!(is_multi_region_key_id(&mrk) && mrk.len() == 36, "{mrk}");
    }
}
