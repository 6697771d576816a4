//! The one converter between AWS JSON 1.1 members and kms.v1 prost messages, by reflection over
//! `kms_proto::FILE_DESCRIPTOR_SET` (so no operation has a hand-written converter).
//!
//! JSON -> proto: member `KeyId` -> field `key_id` ([`names`]); blobs are standard base64;
//! timestamps epoch seconds (fractions allowed); enums their AWS strings; maps JSON objects;
//! unknown members are ignored and `null` counts as absent, as AWS does. A member of the wrong
//! JSON type is a SerializationException; an enum string AWS does not define and a missing
//! required member are ValidationExceptions. Required = the plain (no presence) scalar fields of
//! a request, which kms.proto reserves for AWS's required members, adjusted by
//! [`EXTRA_REQUIRED`] / [`NOT_REQUIRED`] to AWS's model.
//!
//! proto -> JSON: absent members are omitted, never `null`: empty strings and blobs, enum 0,
//! unset messages and unset `optional` fields. Plain booleans (`Enabled`, `Truncated`,
//! `MacValid`) are always written. Empty lists are written at the top level of a response
//! (`{"Aliases": []}`, as AWS answers an empty listing) and omitted inside nested members.

use crate::error::AwsError;
use crate::names::{enum_aws_name, enum_aws_names, enum_from_aws_name, lower_camel, member_name};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value as Proto,
};
use serde_json::{Map, Number, Value as Json};
use std::collections::HashMap;

/// Members AWS requires that kms.proto cannot mark by shape (request enums are plain with 0 =
/// unset; lists have no presence). From botocore's KMS model (`required` of each input shape).
const EXTRA_REQUIRED: &[(&str, &str)] = &[
    ("GenerateDataKeyPairRequest", "key_pair_spec"),
    ("GenerateDataKeyPairWithoutPlaintextRequest", "key_pair_spec"),
    ("SignRequest", "signing_algorithm"),
    ("VerifyRequest", "signing_algorithm"),
    ("GenerateMacRequest", "mac_algorithm"),
    ("VerifyMacRequest", "mac_algorithm"),
    ("DeriveSharedSecretRequest", "key_agreement_algorithm"),
    ("GetParametersForImportRequest", "wrapping_algorithm"),
    ("GetParametersForImportRequest", "wrapping_key_spec"),
    ("TagResourceRequest", "tags"),
    ("UntagResourceRequest", "tag_keys"),
];

/// Plain fields that AWS's model nevertheless marks optional.
const NOT_REQUIRED: &[(&str, &str)] = &[
    ("DecryptRequest", "ciphertext_blob"),
    ("ReEncryptRequest", "ciphertext_blob"),
    ("RecipientInfo", "attestation_document"),
    ("GrantConstraints", "source_arn"),
];

const TIMESTAMP: &str = "google.protobuf.Timestamp";
/// Timestamps accepted from clients: the years 1970 to 9999.
const MAX_EPOCH_SECONDS: f64 = 253_402_300_800.0;

/// The converter. Cheap to clone (the descriptor pool is shared).
#[derive(Clone, Debug)]
pub struct Codec {
    pool: DescriptorPool,
}

impl Codec {
    /// Loads the kms.v1 descriptors. Fails only if kms-proto's embedded descriptor set is broken.
    pub fn new() -> Result<Self, String> {
        let pool = DescriptorPool::decode(kms_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("decoding the kms.v1 descriptor set: {e}"))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    fn message(&self, full_name: &str) -> Result<MessageDescriptor, AwsError> {
        self.pool
            .get_message_by_name(full_name)
            .ok_or_else(|| AwsError::internal(format!("no message {full_name} in the kms.v1 contract")))
    }

    /// A request message from its JSON body.
    pub fn decode<M: prost::Message + Default>(&self, full_name: &str, json: &Json) -> Result<M, AwsError> {
        let dynamic = self.json_to_dynamic(full_name, json)?;
        dynamic.transcode_to::<M>().map_err(|e| AwsError::internal(format!("transcoding {full_name}: {e}")))
    }

    /// A response message as its JSON body.
    pub fn encode<M: prost::Message>(&self, full_name: &str, message: &M) -> Result<Json, AwsError> {
        let dynamic = DynamicMessage::decode(self.message(full_name)?, message.encode_to_vec().as_slice())
            .map_err(|e| AwsError::internal(format!("transcoding {full_name}: {e}")))?;
        Ok(Json::Object(dynamic_to_json(&dynamic, true)))
    }

    /// JSON to a dynamic message of `full_name`; all missing required members are reported at once.
    pub fn json_to_dynamic(&self, full_name: &str, json: &Json) -> Result<DynamicMessage, AwsError> {
        let descriptor = self.message(full_name)?;
        let mut missing = Vec::new();
        let message = message_from_json(&descriptor, json, "", &mut missing)?;
        match missing.len() {
            0 => Ok(message),
            n => {
                let errors = missing
                    .iter()
                    .map(|path| {
                        format!(
                            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let plural = if n == 1 { "error" } else { "errors" };
                Err(AwsError::validation(format!("{n} validation {plural} detected: {errors}")))
            }
        }
    }
}

fn is_required(message: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    let key = (message.name(), field.name());
    if EXTRA_REQUIRED.contains(&key) {
        return true;
    }
    if NOT_REQUIRED.contains(&key) {
        return false;
    }
    !field.supports_presence()
        && !field.is_list()
        && !field.is_map()
        && !matches!(field.kind(), Kind::Enum(_) | Kind::Message(_))
}

fn type_error(path: &str, expected: &str) -> AwsError {
    AwsError::serialization(format!("Expected {expected} for '{path}'"))
}

fn message_from_json(
    descriptor: &MessageDescriptor,
    json: &Json,
    path: &str,
    missing: &mut Vec<String>,
) -> Result<DynamicMessage, AwsError> {
    let Json::Object(object) = json else {
        let what = if path.is_empty() { "the request body" } else { path };
        return Err(AwsError::serialization(format!("Expected a JSON object for {what}")));
    };
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        let member = member_name(field.name());
        let field_path = format!("{path}{}", lower_camel(&member));
        match object.get(&member) {
            None | Some(Json::Null) => {
                if is_required(descriptor, &field) {
                    missing.push(field_path);
                }
            }
            Some(value) => {
                let value = field_from_json(&field, value, &field_path, missing)?;
                if is_required(descriptor, &field) && matches!(&value, Proto::List(items) if items.is_empty())
                {
                    missing.push(field_path.clone());
                }
                message
                    .try_set_field(&field, value)
                    .map_err(|e| AwsError::internal(format!("setting {}: {e}", field.full_name())))?;
            }
        }
    }
    Ok(message)
}

fn field_from_json(
    field: &FieldDescriptor,
    json: &Json,
    path: &str,
    missing: &mut Vec<String>,
) -> Result<Proto, AwsError> {
    if field.is_map() {
        let Json::Object(object) = json else { return Err(type_error(path, "a JSON object")) };
        let Kind::Message(entry) = field.kind() else {
            return Err(AwsError::internal(format!("map field {} without an entry type", field.full_name())));
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        let mut map = HashMap::with_capacity(object.len());
        for (key, value) in object {
            if !matches!(key_field.kind(), Kind::String) {
                return Err(AwsError::internal(format!("map {} has non-string keys", field.full_name())));
            }
            let value = scalar_from_json(&value_field.kind(), value, &format!("{path}.{key}"), missing)?;
            map.insert(MapKey::String(key.clone()), value);
        }
        Ok(Proto::Map(map))
    } else if field.is_list() {
        let Json::Array(items) = json else { return Err(type_error(path, "a JSON list")) };
        let kind = field.kind();
        items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar_from_json(&kind, item, &format!("{path}.{}.member", i + 1), missing))
            .collect::<Result<Vec<_>, _>>()
            .map(Proto::List)
    } else {
        scalar_from_json(&field.kind(), json, path, missing)
    }
}

fn integer(json: &Json, path: &str) -> Result<i64, AwsError> {
    json.as_i64().ok_or_else(|| type_error(path, "an integer"))
}

fn scalar_from_json(
    kind: &Kind,
    json: &Json,
    path: &str,
    missing: &mut Vec<String>,
) -> Result<Proto, AwsError> {
    let at = path;
    let out_of_range = || AwsError::serialization(format!("Number out of range for '{at}'"));
    Ok(match kind {
        Kind::String => Proto::String(json.as_str().ok_or_else(|| type_error(at, "a string"))?.to_string()),
        Kind::Bytes => {
            let text = json.as_str().ok_or_else(|| type_error(at, "a base64 string"))?;
            let bytes = BASE64
                .decode(text)
                .map_err(|_| AwsError::serialization(format!("Invalid base64 for '{at}'")))?;
            Proto::Bytes(Bytes::from(bytes))
        }
        Kind::Bool => Proto::Bool(json.as_bool().ok_or_else(|| type_error(at, "a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Proto::I32(i32::try_from(integer(json, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Proto::I64(integer(json, path)?),
        Kind::Uint32 | Kind::Fixed32 => {
            Proto::U32(u32::try_from(integer(json, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Proto::U64(u64::try_from(integer(json, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Float | Kind::Double => {
            let n = json.as_f64().ok_or_else(|| type_error(at, "a number"))?;
            if matches!(kind, Kind::Float) { Proto::F32(n as f32) } else { Proto::F64(n) }
        }
        Kind::Enum(descriptor) => {
            let text = json.as_str().ok_or_else(|| type_error(at, "a string"))?;
            let number = enum_from_aws_name(descriptor, text).ok_or_else(|| {
                AwsError::validation(format!(
                    "1 validation error detected: Value '{text}' at '{at}' failed to satisfy constraint: \
                     Member must satisfy enum value set: [{}]",
                    enum_aws_names(descriptor).join(", ")
                ))
            })?;
            Proto::EnumNumber(number)
        }
        Kind::Message(descriptor) if descriptor.full_name() == TIMESTAMP => {
            let seconds = json.as_f64().ok_or_else(|| type_error(at, "epoch seconds (a number)"))?;
            if !(0.0..MAX_EPOCH_SECONDS).contains(&seconds) {
                return Err(AwsError::serialization(format!("Timestamp out of range for '{at}'")));
            }
            let whole = seconds.floor();
            let nanos = (((seconds - whole) * 1e9).round() as i32).min(999_999_999);
            let mut timestamp = DynamicMessage::new(descriptor.clone());
            set_by_name(&mut timestamp, "seconds", Proto::I64(whole as i64))?;
            set_by_name(&mut timestamp, "nanos", Proto::I32(nanos))?;
            Proto::Message(timestamp)
        }
        Kind::Message(descriptor) => {
            Proto::Message(message_from_json(descriptor, json, &format!("{at}."), missing)?)
        }
    })
}

fn set_by_name(message: &mut DynamicMessage, name: &str, value: Proto) -> Result<(), AwsError> {
    message
        .try_set_field_by_name(name, value)
        .map_err(|e| AwsError::internal(format!("setting {name} of a timestamp: {e}")))
}

/// A message as a JSON object, AWS-style (absent members omitted).
fn dynamic_to_json(message: &DynamicMessage, top_level: bool) -> Map<String, Json> {
    let mut object = Map::new();
    for field in message.descriptor().fields() {
        let value = message.get_field(&field);
        let member = member_name(field.name());
        let json = if field.is_list() {
            let items = value.as_list().unwrap_or_default();
            if items.is_empty() && !top_level {
                continue;
            }
            Some(Json::Array(items.iter().filter_map(|v| scalar_to_json(&field.kind(), v)).collect()))
        } else if field.is_map() {
            let Some(map) = value.as_map().filter(|m| !m.is_empty()) else { continue };
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                _ => continue,
            };
            let mut out = Map::new();
            for (key, v) in map {
                if let (MapKey::String(key), Some(v)) = (key, scalar_to_json(&value_kind, v)) {
                    out.insert(key.clone(), v);
                }
            }
            Some(Json::Object(out))
        } else if field.supports_presence() {
            // Messages and proto3 `optional` fields: written exactly when set.
            if !message.has_field(&field) {
                continue;
            }
            scalar_to_json(&field.kind(), &value)
        } else {
            match (&field.kind(), value.as_ref()) {
                (Kind::Enum(_), Proto::EnumNumber(0)) => None,
                (Kind::String, Proto::String(s)) if s.is_empty() => None,
                (Kind::Bytes, Proto::Bytes(b)) if b.is_empty() => None,
                (kind, v) => scalar_to_json(kind, v),
            }
        };
        if let Some(json) = json {
            object.insert(member, json);
        }
    }
    object
}

fn scalar_to_json(kind: &Kind, value: &Proto) -> Option<Json> {
    Some(match (kind, value) {
        (_, Proto::String(s)) => Json::String(s.clone()),
        (_, Proto::Bytes(b)) => Json::String(BASE64.encode(b)),
        (_, Proto::Bool(b)) => Json::Bool(*b),
        (_, Proto::I32(n)) => Json::from(*n),
        (_, Proto::I64(n)) => Json::from(*n),
        (_, Proto::U32(n)) => Json::from(*n),
        (_, Proto::U64(n)) => Json::from(*n),
        (_, Proto::F32(n)) => Json::Number(Number::from_f64(f64::from(*n))?),
        (_, Proto::F64(n)) => Json::Number(Number::from_f64(*n)?),
        (Kind::Enum(descriptor), Proto::EnumNumber(n)) => Json::String(enum_aws_name(descriptor, *n)?),
        (Kind::Message(descriptor), Proto::Message(m)) if descriptor.full_name() == TIMESTAMP => {
            timestamp_to_json(m)?
        }
        (_, Proto::Message(m)) => Json::Object(dynamic_to_json(m, false)),
        _ => return None,
    })
}

/// Epoch seconds: an integer when whole, else with the fraction (as AWS writes `1593622000.191`).
fn timestamp_to_json(timestamp: &DynamicMessage) -> Option<Json> {
    let seconds = timestamp.get_field_by_name("seconds")?.as_i64()?;
    let nanos = timestamp.get_field_by_name("nanos")?.as_i32()?;
    if nanos == 0 {
        Some(Json::from(seconds))
    } else {
        Number::from_f64(seconds as f64 + f64::from(nanos) / 1e9).map(Json::Number)
    }
}
