//! Names on the AWS wire versus names in kms.v1.
//!
//! Members: the proto field is the AWS member in snake_case, so the member is the field in
//! PascalCase, except where AWS capitalises an acronym ([`IRREGULAR_MEMBERS`]; checked against
//! botocore's KMS model, where `AWSAccountId` is the only one; `CloudHsmClusterId` and
//! `KmsRequestId` are regular).
//!
//! Enums: a value is `<ENUM_PREFIX>_<AWS VALUE>`; the prefix is read off the enum's zero value
//! (`<ENUM_PREFIX>_UNSPECIFIED`), so no enum name is converted by hand. The enums in
//! [`PASCAL_CASE_ENUMS`] use PascalCase AWS strings (`KEY_STATE_PENDING_DELETION` ->
//! `PendingDeletion`), as the comment at the top of kms.proto says.

use prost_reflect::EnumDescriptor;

/// proto field name -> AWS member name, where PascalCase of the field is not the member.
const IRREGULAR_MEMBERS: &[(&str, &str)] = &[("aws_account_id", "AWSAccountId")];

/// Enums whose AWS strings are PascalCase; the same list as kms-proto's build script (the unit
/// test compares every value with kms-proto's generated `aws_name()`).
const PASCAL_CASE_ENUMS: &[&str] = &["KeyState", "GrantOperation", "KeyLastUsageTrackingOperation"];

/// The AWS member name of a kms.v1 field: `key_id` -> `KeyId`, `aws_account_id` -> `AWSAccountId`.
pub fn member_name(field: &str) -> String {
    if let Some((_, member)) = IRREGULAR_MEMBERS.iter().find(|(f, _)| *f == field) {
        return (*member).to_string();
    }
    field.split('_').map(capitalized).collect()
}

/// How AWS names a member inside validation messages: `KeyId` -> `keyId`.
pub fn lower_camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `PENDING_DELETION` -> `PendingDeletion`.
fn upper_camel(screaming: &str) -> String {
    screaming.split('_').filter(|w| !w.is_empty()).map(|w| capitalized(&w.to_ascii_lowercase())).collect()
}

/// The value-name prefix of an enum, from its zero value `<PREFIX>UNSPECIFIED`.
fn enum_prefix(descriptor: &EnumDescriptor) -> String {
    descriptor
        .get_value(0)
        .and_then(|zero| zero.name().strip_suffix("UNSPECIFIED").map(str::to_string))
        .unwrap_or_default()
}

/// The AWS string of an enum number; `None` for 0 (unset) and for numbers the enum lacks.
pub fn enum_aws_name(descriptor: &EnumDescriptor, number: i32) -> Option<String> {
    if number == 0 {
        return None;
    }
    let value = descriptor.get_value(number)?;
    let prefix = enum_prefix(descriptor);
    let stripped = value.name().strip_prefix(prefix.as_str()).unwrap_or(value.name());
    if PASCAL_CASE_ENUMS.contains(&descriptor.name()) {
        Some(upper_camel(stripped))
    } else {
        Some(stripped.to_string())
    }
}

/// The enum number of an AWS string (exact and case-sensitive, as AWS matches).
pub fn enum_from_aws_name(descriptor: &EnumDescriptor, aws: &str) -> Option<i32> {
    descriptor
        .values()
        .filter(|v| v.number() != 0)
        .find(|v| enum_aws_name(descriptor, v.number()).as_deref() == Some(aws))
        .map(|v| v.number())
}

/// Every AWS string of an enum, in declaration order (for validation messages).
pub fn enum_aws_names(descriptor: &EnumDescriptor) -> Vec<String> {
    descriptor.values().filter_map(|v| enum_aws_name(descriptor, v.number())).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use kms_proto::v1 as pb;
    use prost_reflect::DescriptorPool;

    #[test]
    fn member_names_follow_aws() {
        assert_eq!(member_name("key_id"), "KeyId");
        assert_eq!(member_name("number_of_bytes"), "NumberOfBytes");
        assert_eq!(member_name("aws_account_id"), "AWSAccountId");
        assert_eq!(member_name("cloud_hsm_cluster_id"), "CloudHsmClusterId");
        assert_eq!(member_name("xks_proxy_uri_endpoint"), "XksProxyUriEndpoint");
        assert_eq!(member_name("kms_request_id"), "KmsRequestId");
        assert_eq!(member_name("arn"), "Arn");
        assert_eq!(lower_camel("KeyId"), "keyId");
    }

    /// Reflection and kms-proto's generated accessors agree on every value of every enum.
    #[test]
    fn enum_names_agree_with_the_generated_accessors() {
        let pool = DescriptorPool::decode(kms_proto::FILE_DESCRIPTOR_SET).unwrap();
        macro_rules! check {
            ($($e:ident),+ $(,)?) => {$({
                let d = pool.get_enum_by_name(concat!("kms.v1.", stringify!($e))).unwrap();
                assert_eq!(enum_aws_names(&d), pb::$e::AWS_NAMES, stringify!($e));
                for name in pb::$e::AWS_NAMES {
                    let number = enum_from_aws_name(&d, name).unwrap();
                    assert_eq!(pb::$e::try_from(number).unwrap().aws_name(), Some(*name));
                }
                assert_eq!(enum_aws_name(&d, 0), None);
            })+};
        }
        // Every enum of kms.v1.
        check!(
            KeyUsage,
            CustomerMasterKeySpec,
            KeySpec,
            OriginType,
            KeyState,
            EncryptionAlgorithmSpec,
            DryRunModifierType,
            DataKeySpec,
            DataKeyPairSpec,
            MessageType,
            SigningAlgorithmSpec,
            MacAlgorithmSpec,
            KeyAgreementAlgorithmSpec,
            GrantOperation,
            IncludeKeyMaterial,
            AlgorithmSpec,
            WrappingKeySpec,
            ExpirationModelType,
            ImportType,
            CustomKeyStoreType,
            XksProxyConnectivityType,
            KeyManagerType,
            KeyLastUsageTrackingOperation,
            KeyEncryptionMechanism,
            ImportState,
            KeyMaterialState,
            RotationType,
            ConnectionStateType,
            ConnectionErrorCodeType,
            MultiRegionKeyType,
        );
        let state = pool.get_enum_by_name("kms.v1.KeyState").unwrap();
        assert_eq!(enum_from_aws_name(&state, "PendingDeletion"), Some(pb::KeyState::PendingDeletion as i32));
        assert_eq!(enum_from_aws_name(&state, "PENDING_DELETION"), None);
        let spec = pool.get_enum_by_name("kms.v1.KeySpec").unwrap();
        assert_eq!(enum_aws_name(&spec, pb::KeySpec::Rsa2048 as i32).as_deref(), Some("RSA_2048"));
        assert_eq!(enum_from_aws_name(&spec, "rsa_2048"), None);
        assert_eq!(enum_aws_name(&spec, 9999), None);
    }

    /// Every enum in kms.v1 has a zero value named `<PREFIX>UNSPECIFIED`, which the prefix rule
    /// depends on.
    #[test]
    fn every_enum_has_an_unspecified_zero() {
        let pool = DescriptorPool::decode(kms_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut seen = 0;
        for e in pool.all_enums().filter(|e| e.package_name() == "kms.v1") {
            let zero = e.get_value(0).unwrap();
            assert!(zero.name().ends_with("_UNSPECIFIED"), "{}", e.name());
            for v in e.values() {
                assert!(v.name().starts_with(&enum_prefix(&e)), "{}", v.name());
            }
            seen += 1;
        }
        assert!(seen > 20);
    }
}
