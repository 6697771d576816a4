//! Conversions between the wire (kms.v1 prost types) and the domain (kms-core), in one place.
//!
//! Enums cross by their AWS names, which both sides know, so no value table is written twice.
//! An enum number the server does not know is a ValidationException, never silently "unset".

use kms_core::ids::RegionScope;
use kms_core::key::{KeyRecord, UnixMillis};
use kms_core::spec::{KeyAlgorithms, KeyState, Origin};
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;
use std::str::FromStr;

pub use kms_proto::AwsEnum;

/// A request enum field: `None` when unset, the domain value when known, else a
/// ValidationException naming the field.
pub fn enum_in<P: AwsEnum, C: FromStr<Err = KmsError>>(field: &str, raw: i32) -> KmsResult<Option<C>> {
    let value = P::try_from(raw)
        .map_err(|_| KmsError::validation(format!("{raw} is not a valid value for '{field}'")))?;
    match value.aws_name() {
        None => Ok(None),
        Some(name) => C::from_str(name).map(Some),
    }
}

/// A domain enum on its way out; every domain value has a wire value by construction of the
/// proto (checked by the round-trip test below).
pub fn enum_out<P: AwsEnum>(value: impl std::fmt::Display) -> i32 {
    P::from_aws_name(&value.to_string()).map_or(0, Into::into)
}

pub fn timestamp(millis: UnixMillis) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (millis / 1000) as i64, nanos: ((millis % 1000) * 1_000_000) as i32 }
}

/// DescribeKey's KeyMetadata of `key` as the region of `scope` holds it.
pub fn key_metadata(key: &KeyRecord, scope: &RegionScope) -> pb::KeyMetadata {
    let algorithms = KeyAlgorithms::for_key(key.key_spec, key.key_usage);
    pb::KeyMetadata {
        aws_account_id: scope.account.clone(),
        key_id: key.key_id.clone(),
        arn: scope.key_arn(&key.key_id),
        multi_region_configuration: key
            .multi_region_config
            .as_ref()
            .map(|config| multi_region_configuration(&key.key_id, config, scope)),
        creation_date: Some(timestamp(key.creation_date)),
        enabled: key.state == KeyState::Enabled,
        description: key.description.clone(),
        key_usage: enum_out::<pb::KeyUsage>(key.key_usage),
        key_state: enum_out::<pb::KeyState>(key.state),
        deletion_date: key.deletion_date.map(timestamp),
        origin: enum_out::<pb::OriginType>(key.origin),
        key_manager: enum_out::<pb::KeyManagerType>(key.key_manager),
        customer_master_key_spec: pb::CustomerMasterKeySpec::from_aws_name(key.key_spec.as_str())
            .map_or(0, Into::into),
        key_spec: enum_out::<pb::KeySpec>(key.key_spec),
        encryption_algorithms: algorithms
            .encryption
            .iter()
            .map(enum_out::<pb::EncryptionAlgorithmSpec>)
            .collect(),
        signing_algorithms: algorithms.signing.iter().map(enum_out::<pb::SigningAlgorithmSpec>).collect(),
        key_agreement_algorithms: algorithms
            .key_agreement
            .iter()
            .map(enum_out::<pb::KeyAgreementAlgorithmSpec>)
            .collect(),
        mac_algorithms: algorithms.mac.iter().map(enum_out::<pb::MacAlgorithmSpec>).collect(),
        multi_region: Some(key.multi_region),
        pending_deletion_window_in_days: key.pending_window_days.map(|d| d as i32),
        current_key_material_id: key.materials.last().map(|m| m.material_id.clone()).unwrap_or_default(),
        expiration_model: expiration_model(key),
        valid_to: key
            .import
            .as_ref()
            .and_then(|i| i.valid_to)
            .filter(|_| !key.materials.is_empty())
            .map(timestamp),
        ..Default::default()
    }
}

/// ExpirationModel of an EXTERNAL key that holds imported material; unset otherwise.
fn expiration_model(key: &KeyRecord) -> i32 {
    match &key.import {
        Some(import) if key.origin == Origin::External && !key.materials.is_empty() => {
            if import.valid_to.is_some() {
                pb::ExpirationModelType::KeyMaterialExpires.into()
            } else {
                pb::ExpirationModelType::KeyMaterialDoesNotExpire.into()
            }
        }
        _ => 0,
    }
}

/// DescribeKey's MultiRegionConfiguration of key `key_id` as seen from the region of `scope`.
fn multi_region_configuration(
    key_id: &str,
    config: &kms_core::multi_region::MultiRegionConfig,
    scope: &RegionScope,
) -> pb::MultiRegionConfiguration {
    let related = |region: &str| pb::MultiRegionKey {
        arn: RegionScope { region: region.to_string(), ..scope.clone() }.key_arn(key_id),
        region: region.to_string(),
    };
    let key_type = if config.is_primary(&scope.region) {
        pb::MultiRegionKeyType::Primary
    } else {
        pb::MultiRegionKeyType::Replica
    };
    pb::MultiRegionConfiguration {
        multi_region_key_type: key_type.into(),
        primary_key: Some(related(&config.primary_region)),
        replica_keys: config.replica_regions.iter().map(|region| related(region)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_core::spec;

    #[test]
    fn every_domain_enum_value_has_a_wire_value() {
        for v in spec::KeySpec::ALL {
            assert_ne!(enum_out::<pb::KeySpec>(v), 0, "{v}");
        }
        for v in spec::KeyState::ALL {
            assert_ne!(enum_out::<pb::KeyState>(v), 0, "{v}");
        }
        for v in spec::KeyUsage::ALL {
            assert_ne!(enum_out::<pb::KeyUsage>(v), 0, "{v}");
        }
        for v in spec::EncryptionAlgorithm::ALL {
            assert_ne!(enum_out::<pb::EncryptionAlgorithmSpec>(v), 0, "{v}");
        }
        for v in spec::SigningAlgorithm::ALL {
            assert_ne!(enum_out::<pb::SigningAlgorithmSpec>(v), 0, "{v}");
        }
        for v in spec::MacAlgorithm::ALL {
            assert_ne!(enum_out::<pb::MacAlgorithmSpec>(v), 0, "{v}");
        }
        for v in spec::Origin::ALL {
            assert_ne!(enum_out::<pb::OriginType>(v), 0, "{v}");
        }
    }

    #[test]
    fn unknown_and_unset_enum_numbers() {
        let unset: Option<spec::KeySpec> = enum_in::<pb::KeySpec, _>("KeySpec", 0).unwrap();
        assert_eq!(unset, None);
        let bad = enum_in::<pb::KeySpec, spec::KeySpec>("KeySpec", 9999).unwrap_err();
        assert_eq!(bad.kind, kms_core::ErrorKind::ValidationException);
        let rsa = enum_in::<pb::KeySpec, spec::KeySpec>("KeySpec", pb::KeySpec::Rsa2048.into());
        assert_eq!(rsa.unwrap(), Some(spec::KeySpec::Rsa2048));
    }
}
