//! Who manages a key. AWS's model has three kinds, and so do we:
//!
//! - **Customer managed keys** (KeyManager CUSTOMER): every key CreateKey makes. Their policy,
//!   state, rotation, tags and aliases are the customer's to change.
//! - **AWS managed keys** (KeyManager AWS), here *service keys*: created on first use for an
//!   integrated service (the Kubernetes plugin, or a principal registered as a service) under
//!   `alias/aws/<service>`. Symmetric, rotated every [`SERVICE_KEY_ROTATION_DAYS`] days, with a
//!   policy ([`service_key_policy`]) that lets only the service's principal use them and the
//!   account's principals read them. Users see them (DescribeKey, ListKeys, ListAliases) but
//!   cannot manage them ([`KeyRecord::check_manageable`]) or point aliases at them.
//! - **Keys the service owns for itself** (AWS owned keys): the region's root key, which seals
//!   every key's material, is not a `KeyRecord` at all, so no API lists or names it.

use crate::error::{KmsError, KmsResult};
use crate::ids::RegionScope;
use crate::key::{DAY_MILLIS, KeyChange, KeyRecord, MaterialVersion, RotationSchedule, UnixMillis};
use crate::spec::{KeyManager, KeySpec, KeyUsage, Origin, RotationType};

/// Aliases under this prefix belong to service keys; no caller may create, move or delete them.
pub const SERVICE_ALIAS_PREFIX: &str = "alias/aws/";

/// AWS managed keys rotate yearly, and that cannot be changed.
pub const SERVICE_KEY_ROTATION_DAYS: u32 = 365;

/// Longest service name: the alias `alias/aws/<service>` must stay well within 256 characters.
const MAX_SERVICE_NAME: usize = 64;

/// The alias of `service`'s key.
pub fn service_alias(service: &str) -> String {
    format!("{SERVICE_ALIAS_PREFIX}{service}")
}

/// A service name: 1 to 64 of `a-z A-Z 0-9 - _ .`, so that its alias is a valid alias name.
pub fn validate_service_name(service: &str) -> KmsResult<()> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if service.is_empty() || service.len() > MAX_SERVICE_NAME || !service.chars().all(valid_char) {
        return Err(KmsError::validation(format!(
            "service name '{}' must be 1 to {MAX_SERVICE_NAME} characters of a-z, A-Z, 0-9, '-', '_' \
             and '.'",
            service.escape_debug()
        )));
    }
    Ok(())
}

/// The key policy of a service key, shaped like AWS's managed-key policies: the service's
/// principal (of this account) may use the key and pass it on by grant; every principal of the
/// account may read its metadata and revoke grants. Nothing else is allowed to anyone.
pub fn service_key_policy(scope: &RegionScope, service: &str, principal_arn: &str) -> String {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Id": format!("auto-{service}-1"),
        "Statement": [
            {
                "Sid": format!("Allow use by the {service} service principal"),
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn },
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:CreateGrant",
                    "kms:DescribeKey"
                ],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:CallerAccount": scope.account } }
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:{}:iam::{}:root", scope.partition, scope.account) },
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*"
            }
        ]
    });
    // A JSON value of strings, arrays and objects always serializes.
    serde_json::to_string_pretty(&policy).unwrap_or_default()
}

/// What a new service key is made of, chosen by the proposer (material sealed, clock read).
#[derive(Debug, Clone)]
pub struct ServiceKeySpec<'a> {
    pub key_id: String,
    pub service: &'a str,
    pub principal_arn: &'a str,
    pub material: MaterialVersion,
    pub now: UnixMillis,
}

/// A new service key for `spec.service`: symmetric, enabled, rotating every year.
pub fn new_service_key(scope: &RegionScope, spec: ServiceKeySpec<'_>) -> KeyRecord {
    KeyRecord {
        description: format!(
            "Default key that protects my {} data when no other key is defined",
            spec.service
        ),
        materials: vec![spec.material],
        rotation: RotationSchedule {
            enabled: true,
            period_days: SERVICE_KEY_ROTATION_DAYS,
            next_rotation: Some(spec.now + u64::from(SERVICE_KEY_ROTATION_DAYS) * DAY_MILLIS),
        },
        policy: Some(service_key_policy(scope, spec.service, spec.principal_arn)),
        key_manager: KeyManager::Aws,
        service: Some(spec.service.to_string()),
        ..KeyRecord::new(
            spec.key_id,
            spec.now,
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            Origin::AwsKms,
        )
    }
}

impl KeyRecord {
    pub fn is_aws_managed(&self) -> bool {
        self.key_manager == KeyManager::Aws
    }

    fn managed_by(&self) -> String {
        match &self.service {
            Some(service) => format!("an AWS managed key ({})", service_alias(service)),
            None => "an AWS managed key".to_string(),
        }
    }

    /// Refuses every management change of an AWS managed key except its automatic rotation.
    pub fn check_manageable(&self, change: &KeyChange) -> KmsResult<()> {
        match change {
            KeyChange::Rotate { material } if material.rotation_type == Some(RotationType::Automatic) => {
                Ok(())
            }
            _ => self.check_managed_operation(change.operation()),
        }
    }

    /// Refuses the management operation `operation` (an AWS operation name) on an AWS managed
    /// key, with the exception AWS's model lists for it: UnsupportedOperation for PutKeyPolicy
    /// and the rotation operations, KMSInvalidState for the others.
    pub fn check_managed_operation(&self, operation: &str) -> KmsResult<()> {
        if !self.is_aws_managed() {
            return Ok(());
        }
        let message = format!(
            "{} is {}; {operation} is not allowed on it: the service manages it",
            self.key_id,
            self.managed_by()
        );
        match operation {
            "PutKeyPolicy" | "EnableKeyRotation" | "DisableKeyRotation" | "RotateKeyOnDemand" => {
                Err(KmsError::unsupported(message))
            }
            _ => Err(KmsError::invalid_state(message)),
        }
    }

    /// Aliases are the customer's: none may point at an AWS managed key but its own
    /// `alias/aws/<service>`, which only the service key's creation makes.
    pub fn check_alias_target(&self, operation: &str) -> KmsResult<()> {
        if self.is_aws_managed() {
            return Err(KmsError::invalid_state(format!(
                "{} is {}; {operation} cannot point an alias at it",
                self.key_id,
                self.managed_by()
            )));
        }
        Ok(())
    }
}

/// Whether `alias_name` is reserved for service keys.
pub fn is_service_alias(alias_name: &str) -> bool {
    alias_name.starts_with(SERVICE_ALIAS_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::policy::{Action, Decision, PolicyDocument, Principal, Request, RequestContext, keys};

    fn scope() -> RegionScope {
        RegionScope::new("test-1", "111122223333")
    }

    fn material(version: u32, rotation_type: Option<RotationType>) -> MaterialVersion {
        MaterialVersion {
            version,
            material_id: "0".repeat(64),
            sealed: vec![1; 8],
            created: 0,
            rotation_type,
        }
    }

    fn service_key() -> KeyRecord {
        let principal = Principal::from_name("kubernetes", &scope());
        new_service_key(
            &scope(),
            ServiceKeySpec {
                key_id: "k1".into(),
                service: "kubernetes",
                principal_arn: &principal.arn,
                material: material(0, None),
                now: 1000,
            },
        )
    }

    #[test]
    fn service_keys_are_aws_managed_symmetric_and_rotate_yearly() {
        let key = service_key();
        assert!(key.is_aws_managed());
        assert_eq!(key.service.as_deref(), Some("kubernetes"));
        assert_eq!((key.key_spec, key.key_usage), (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt));
        assert!(key.rotation.enabled);
        assert_eq!(key.rotation.period_days, 365);
        assert_eq!(key.rotation.next_rotation, Some(1000 + 365 * DAY_MILLIS));
    }

    #[test]
    fn management_is_refused_with_aws_exceptions_and_changes_nothing() {
        let mut key = service_key();
        let before = key.clone();
        let unsupported = [
            KeyChange::EnableRotation { period_days: 90 },
            KeyChange::DisableRotation,
            KeyChange::Rotate { material: material(1, Some(RotationType::OnDemand)) },
            KeyChange::PutPolicy { policy: "{}".into() },
        ];
        for change in unsupported {
            let err = key.apply_change(&change, 0).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnsupportedOperationException, "{change:?}");
            assert!(err.message.contains("alias/aws/kubernetes"), "{}", err.message);
        }
        let invalid_state = [
            KeyChange::Disable,
            KeyChange::Enable,
            KeyChange::ScheduleDeletion { window_days: 7 },
            KeyChange::CancelDeletion,
            KeyChange::Describe { description: "mine".into() },
            KeyChange::Tag { tags: std::collections::BTreeMap::from([("a".into(), "b".into())]) },
            KeyChange::Untag { tag_keys: vec!["a".into()] },
        ];
        for change in invalid_state {
            let err = key.apply_change(&change, 0).unwrap_err();
            assert_eq!(err.kind, ErrorKind::KMSInvalidStateException, "{change:?}");
        }
        assert_eq!(key, before);
        let alias = key.check_alias_target("CreateAlias").unwrap_err();
        assert_eq!(alias.kind, ErrorKind::KMSInvalidStateException);
    }

    #[test]
    fn automatic_rotation_still_happens() {
        let mut key = service_key();
        let due = 1000 + 365 * DAY_MILLIS;
        let auto = KeyChange::Rotate { material: material(1, Some(RotationType::Automatic)) };
        key.apply_change(&auto, due).unwrap();
        assert_eq!(key.current_material().unwrap().version, 1);
        assert_eq!(key.rotation.next_rotation, Some(due + 365 * DAY_MILLIS));
    }

    #[test]
    fn customer_keys_load_without_the_new_fields() {
        let mut key = service_key();
        key.key_manager = KeyManager::Customer;
        key.service = None;
        let json = serde_json::to_value(&key).unwrap();
        assert!(json.get("key_manager").is_none() && json.get("service").is_none());
        let loaded: KeyRecord = serde_json::from_value(json).unwrap();
        assert_eq!(loaded.key_manager, KeyManager::Customer);
        let managed: KeyRecord =
            serde_json::from_value(serde_json::to_value(service_key()).unwrap()).unwrap();
        assert_eq!(managed, service_key());
    }

    fn decide(key: &KeyRecord, caller: &str, action: Action) -> Decision {
        let policy = PolicyDocument::parse(key.policy.as_deref().unwrap()).unwrap();
        let principal = Principal::from_name(caller, &scope());
        let mut context = RequestContext::new();
        context.add(keys::CALLER_ACCOUNT, principal.account.as_str());
        let resource = scope().key_arn(&key.key_id);
        policy.evaluate(&Request { principal: &principal, action, resource: &resource, context: &context })
    }

    #[test]
    fn the_policy_lets_only_the_service_use_the_key_and_the_account_read_it() {
        let key = service_key();
        for action in [Action::Encrypt, Action::Decrypt, Action::GenerateDataKey, Action::CreateGrant] {
            assert_eq!(decide(&key, "kubernetes", action), Decision::Allow, "{action}");
            assert_eq!(decide(&key, "someone", action), Decision::ImplicitDeny, "{action}");
        }
        for action in [Action::DescribeKey, Action::GetKeyPolicy, Action::GetKeyRotationStatus] {
            assert_eq!(decide(&key, "someone", action), Decision::Allow, "{action}");
        }
        for action in [Action::DisableKey, Action::PutKeyPolicy, Action::ScheduleKeyDeletion] {
            assert_eq!(decide(&key, "kubernetes", action), Decision::ImplicitDeny, "{action}");
        }
    }

    #[test]
    fn service_names() {
        assert!(validate_service_name("kubernetes").is_ok());
        assert!(validate_service_name("backup-2.v1").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert_eq!(validate_service_name(bad).unwrap_err().kind, ErrorKind::ValidationException);
        }
        assert_eq!(service_alias("kubernetes"), "alias/aws/kubernetes");
        assert!(is_service_alias("alias/aws/kubernetes") && !is_service_alias("alias/kubernetes"));
    }
}
