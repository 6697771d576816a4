//! kms.v1 messages → JSON in the shape the AWS CLI prints: PascalCase member names in model order,
//! blobs in base64, enums as AWS strings, timestamps as ISO 8601 (`2024-05-01T10:20:30.123000+00:00`),
//! absent members left out.
//!
//! One function per shared message; each response is a few lines over [`Obj`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_proto::v1;

use crate::args::AwsEnum;
use crate::json::Json;

/// A response rendered as the AWS CLI would print it.
pub trait Render {
    fn render(&self) -> Json;
}

/// Builder of an object that leaves absent members out.
#[derive(Default)]
pub struct Obj(Vec<(String, Json)>);

impl Obj {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn done(self) -> Json {
        Json::Obj(self.0)
    }
    fn put(mut self, key: &str, value: Option<Json>) -> Self {
        if let Some(v) = value {
            self.0.push((key.to_string(), v));
        }
        self
    }
    /// A string; empty means absent.
    pub fn str(self, key: &str, s: &str) -> Self {
        self.put(key, (!s.is_empty()).then(|| Json::Str(s.to_string())))
    }
    /// A string that AWS always prints, even empty (e.g. `Description`).
    pub fn str_always(self, key: &str, s: &str) -> Self {
        self.put(key, Some(Json::Str(s.to_string())))
    }
    pub fn blob(self, key: &str, b: &[u8]) -> Self {
        self.put(key, (!b.is_empty()).then(|| Json::Str(STANDARD.encode(b))))
    }
    pub fn bool(self, key: &str, b: bool) -> Self {
        self.put(key, Some(Json::Bool(b)))
    }
    pub fn opt_bool(self, key: &str, b: Option<bool>) -> Self {
        self.put(key, b.map(Json::Bool))
    }
    pub fn opt_int(self, key: &str, i: Option<i32>) -> Self {
        self.put(key, i.map(|i| Json::Int(i64::from(i))))
    }
    pub fn ts(self, key: &str, t: Option<&prost_types::Timestamp>) -> Self {
        self.put(key, t.map(|t| Json::Str(timestamp(t))))
    }
    /// An enum field (i32 on the wire); UNSPECIFIED means absent.
    pub fn enm<E: AwsEnum>(self, key: &str, v: i32) -> Self {
        self.put(key, enum_value::<E>(v))
    }
    /// A repeated enum field; AWS leaves an empty list out of KeyMetadata.
    pub fn enums<E: AwsEnum>(self, key: &str, vs: &[i32]) -> Self {
        let items: Vec<Json> = vs.iter().filter_map(|v| enum_value::<E>(*v)).collect();
        self.put(key, (!items.is_empty()).then_some(Json::Arr(items)))
    }
    /// A list that AWS always prints, even empty (e.g. `Keys`, `Aliases`, `Tags`).
    pub fn list<T>(self, key: &str, items: &[T], f: impl Fn(&T) -> Json) -> Self {
        self.put(key, Some(Json::Arr(items.iter().map(f).collect())))
    }
    pub fn strings(self, key: &str, items: &[String]) -> Self {
        self.list(key, items, |s| Json::Str(s.clone()))
    }
    pub fn msg<T>(self, key: &str, m: Option<&T>, f: impl Fn(&T) -> Json) -> Self {
        self.put(key, m.map(f))
    }
    pub fn map(self, key: &str, m: &std::collections::HashMap<String, String>) -> Self {
        self.put(key, (!m.is_empty()).then(|| string_map(m)))
    }
    /// Pagination members: `NextMarker` when present, `Truncated` always.
    pub fn page(self, next_marker: &str, truncated: bool) -> Self {
        self.str("NextMarker", next_marker).bool("Truncated", truncated)
    }
}

fn enum_value<E: AwsEnum>(v: i32) -> Option<Json> {
    if v == 0 {
        return None;
    }
    let name = E::try_from(v).ok().and_then(E::aws_name);
    Some(Json::Str(name.map_or_else(|| format!("UNKNOWN_{v}"), str::to_string)))
}

/// A string map with sorted keys (proto maps have no order).
pub fn string_map(m: &std::collections::HashMap<String, String>) -> Json {
    let mut pairs: Vec<_> = m.iter().collect();
    pairs.sort();
    Json::Obj(pairs.into_iter().map(|(k, v)| (k.clone(), Json::Str(v.clone()))).collect())
}

/// RFC 3339 / ISO 8601 in UTC as the AWS CLI v2 prints it: `2024-05-01T10:20:30+00:00`, with
/// `.ffffff` microseconds when they are not zero.
pub fn timestamp(t: &prost_types::Timestamp) -> String {
    let days = t.seconds.div_euclid(86_400);
    let secs = t.seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let micros = t.nanos.clamp(0, 999_999_999) / 1000;
    let frac = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}+00:00", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

// ---------------------------------------------------------------------------------------------
// Shared messages
// ---------------------------------------------------------------------------------------------

pub fn key_metadata(m: &v1::KeyMetadata) -> Json {
    Obj::new()
        .str("AWSAccountId", &m.aws_account_id)
        .str("KeyId", &m.key_id)
        .str("Arn", &m.arn)
        .ts("CreationDate", m.creation_date.as_ref())
        .bool("Enabled", m.enabled)
        .str_always("Description", &m.description)
        .enm::<v1::KeyUsage>("KeyUsage", m.key_usage)
        .enm::<v1::KeyState>("KeyState", m.key_state)
        .ts("DeletionDate", m.deletion_date.as_ref())
        .ts("ValidTo", m.valid_to.as_ref())
        .enm::<v1::OriginType>("Origin", m.origin)
        .str("CustomKeyStoreId", &m.custom_key_store_id)
        .str("CloudHsmClusterId", &m.cloud_hsm_cluster_id)
        .enm::<v1::ExpirationModelType>("ExpirationModel", m.expiration_model)
        .enm::<v1::KeyManagerType>("KeyManager", m.key_manager)
        .enm::<v1::CustomerMasterKeySpec>("CustomerMasterKeySpec", m.customer_master_key_spec)
        .enm::<v1::KeySpec>("KeySpec", m.key_spec)
        .enums::<v1::EncryptionAlgorithmSpec>("EncryptionAlgorithms", &m.encryption_algorithms)
        .enums::<v1::SigningAlgorithmSpec>("SigningAlgorithms", &m.signing_algorithms)
        .enums::<v1::KeyAgreementAlgorithmSpec>("KeyAgreementAlgorithms", &m.key_agreement_algorithms)
        .opt_bool("MultiRegion", m.multi_region)
        .msg("MultiRegionConfiguration", m.multi_region_configuration.as_ref(), multi_region_configuration)
        .opt_int("PendingDeletionWindowInDays", m.pending_deletion_window_in_days)
        .enums::<v1::MacAlgorithmSpec>("MacAlgorithms", &m.mac_algorithms)
        .msg("XksKeyConfiguration", m.xks_key_configuration.as_ref(), |x| Obj::new().str("Id", &x.id).done())
        .str("CurrentKeyMaterialId", &m.current_key_material_id)
        .done()
}

pub fn multi_region_configuration(c: &v1::MultiRegionConfiguration) -> Json {
    Obj::new()
        .enm::<v1::MultiRegionKeyType>("MultiRegionKeyType", c.multi_region_key_type)
        .msg("PrimaryKey", c.primary_key.as_ref(), multi_region_key)
        .list("ReplicaKeys", &c.replica_keys, multi_region_key)
        .done()
}

pub fn multi_region_key(k: &v1::MultiRegionKey) -> Json {
    Obj::new().str("Arn", &k.arn).str("Region", &k.region).done()
}

pub fn tag(t: &v1::Tag) -> Json {
    Obj::new().str_always("TagKey", &t.tag_key).str_always("TagValue", &t.tag_value).done()
}

pub fn key_list_entry(k: &v1::KeyListEntry) -> Json {
    Obj::new().str("KeyId", &k.key_id).str("KeyArn", &k.key_arn).done()
}

pub fn alias_list_entry(a: &v1::AliasListEntry) -> Json {
    Obj::new()
        .str("AliasName", &a.alias_name)
        .str("AliasArn", &a.alias_arn)
        .str("TargetKeyId", &a.target_key_id)
        .ts("CreationDate", a.creation_date.as_ref())
        .ts("LastUpdatedDate", a.last_updated_date.as_ref())
        .done()
}

pub fn grant_constraints(c: &v1::GrantConstraints) -> Json {
    Obj::new()
        .map("EncryptionContextSubset", &c.encryption_context_subset)
        .map("EncryptionContextEquals", &c.encryption_context_equals)
        .str("SourceArn", &c.source_arn)
        .done()
}

pub fn grant_list_entry(g: &v1::GrantListEntry) -> Json {
    Obj::new()
        .str("KeyId", &g.key_id)
        .str("GrantId", &g.grant_id)
        .str("Name", &g.name)
        .ts("CreationDate", g.creation_date.as_ref())
        .str("GranteePrincipal", &g.grantee_principal)
        .str("RetiringPrincipal", &g.retiring_principal)
        .str("IssuingAccount", &g.issuing_account)
        .enums::<v1::GrantOperation>("Operations", &g.operations)
        .msg("Constraints", g.constraints.as_ref(), grant_constraints)
        .str("GranteeServicePrincipal", &g.grantee_service_principal)
        .str("RetiringServicePrincipal", &g.retiring_service_principal)
        .done()
}

pub fn rotations_list_entry(r: &v1::RotationsListEntry) -> Json {
    Obj::new()
        .str("KeyId", &r.key_id)
        .str("KeyMaterialId", &r.key_material_id)
        .str("KeyMaterialDescription", &r.key_material_description)
        .enm::<v1::ImportState>("ImportState", r.import_state)
        .enm::<v1::KeyMaterialState>("KeyMaterialState", r.key_material_state)
        .enm::<v1::ExpirationModelType>("ExpirationModel", r.expiration_model)
        .ts("ValidTo", r.valid_to.as_ref())
        .ts("RotationDate", r.rotation_date.as_ref())
        .enm::<v1::RotationType>("RotationType", r.rotation_type)
        .done()
}

pub fn key_last_usage(u: &v1::KeyLastUsageData) -> Json {
    Obj::new()
        .enm::<v1::KeyLastUsageTrackingOperation>("Operation", u.operation)
        .ts("Timestamp", u.timestamp.as_ref())
        .str("CloudTrailEventId", &u.cloud_trail_event_id)
        .str("KmsRequestId", &u.kms_request_id)
        .done()
}

pub fn xks_proxy_configuration(x: &v1::XksProxyConfiguration) -> Json {
    Obj::new()
        .enm::<v1::XksProxyConnectivityType>("Connectivity", x.connectivity)
        .str("AccessKeyId", &x.access_key_id)
        .str("UriEndpoint", &x.uri_endpoint)
        .str("UriPath", &x.uri_path)
        .str("VpcEndpointServiceName", &x.vpc_endpoint_service_name)
        .str("VpcEndpointServiceOwner", &x.vpc_endpoint_service_owner)
        .done()
}

pub fn custom_key_store(c: &v1::CustomKeyStoresListEntry) -> Json {
    Obj::new()
        .str("CustomKeyStoreId", &c.custom_key_store_id)
        .str("CustomKeyStoreName", &c.custom_key_store_name)
        .str("CloudHsmClusterId", &c.cloud_hsm_cluster_id)
        .str("TrustAnchorCertificate", &c.trust_anchor_certificate)
        .enm::<v1::ConnectionStateType>("ConnectionState", c.connection_state)
        .enm::<v1::ConnectionErrorCodeType>("ConnectionErrorCode", c.connection_error_code)
        .ts("CreationDate", c.creation_date.as_ref())
        .enm::<v1::CustomKeyStoreType>("CustomKeyStoreType", c.custom_key_store_type)
        .msg("XksProxyConfiguration", c.xks_proxy_configuration.as_ref(), xks_proxy_configuration)
        .done()
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Responses AWS defines without members: the CLI prints nothing.
macro_rules! render_empty {
    ($($t:ident),* $(,)?) => {$(
        impl Render for v1::$t {
            fn render(&self) -> Json {
                Json::obj()
            }
        }
    )*};
}

render_empty!(
    UpdateKeyDescriptionResponse,
    EnableKeyResponse,
    DisableKeyResponse,
    CreateAliasResponse,
    UpdateAliasResponse,
    DeleteAliasResponse,
    TagResourceResponse,
    UntagResourceResponse,
    EnableKeyRotationResponse,
    DisableKeyRotationResponse,
    RetireGrantResponse,
    RevokeGrantResponse,
    PutKeyPolicyResponse,
    UpdatePrimaryRegionResponse,
    ConnectCustomKeyStoreResponse,
    DisconnectCustomKeyStoreResponse,
    DeleteCustomKeyStoreResponse,
    UpdateCustomKeyStoreResponse,
);

macro_rules! render_fn {
    ($t:ident, |$r:ident| $body:expr) => {
        impl Render for v1::$t {
            fn render(&self) -> Json {
                let $r = self;
                $body
            }
        }
    };
}

render_fn!(CreateKeyResponse, |r| Obj::new()
    .msg("KeyMetadata", r.key_metadata.as_ref(), key_metadata)
    .done());
render_fn!(DescribeKeyResponse, |r| Obj::new()
    .msg("KeyMetadata", r.key_metadata.as_ref(), key_metadata)
    .done());
render_fn!(ListKeysResponse, |r| Obj::new()
    .list("Keys", &r.keys, key_list_entry)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(ScheduleKeyDeletionResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .ts("DeletionDate", r.deletion_date.as_ref())
    .enm::<v1::KeyState>("KeyState", r.key_state)
    .opt_int("PendingWindowInDays", r.pending_window_in_days)
    .done());
render_fn!(CancelKeyDeletionResponse, |r| Obj::new().str("KeyId", &r.key_id).done());
render_fn!(GetKeyLastUsageResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .msg("KeyLastUsage", r.key_last_usage.as_ref(), key_last_usage)
    .ts("TrackingStartDate", r.tracking_start_date.as_ref())
    .ts("KeyCreationDate", r.key_creation_date.as_ref())
    .done());
render_fn!(EncryptResponse, |r| Obj::new()
    .blob("CiphertextBlob", &r.ciphertext_blob)
    .str("KeyId", &r.key_id)
    .enm::<v1::EncryptionAlgorithmSpec>("EncryptionAlgorithm", r.encryption_algorithm)
    .done());
render_fn!(DecryptResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .blob("Plaintext", &r.plaintext)
    .enm::<v1::EncryptionAlgorithmSpec>("EncryptionAlgorithm", r.encryption_algorithm)
    .blob("CiphertextForRecipient", &r.ciphertext_for_recipient)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(ReEncryptResponse, |r| Obj::new()
    .blob("CiphertextBlob", &r.ciphertext_blob)
    .str("SourceKeyId", &r.source_key_id)
    .str("KeyId", &r.key_id)
    .enm::<v1::EncryptionAlgorithmSpec>("SourceEncryptionAlgorithm", r.source_encryption_algorithm)
    .enm::<v1::EncryptionAlgorithmSpec>("DestinationEncryptionAlgorithm", r.destination_encryption_algorithm)
    .str("SourceKeyMaterialId", &r.source_key_material_id)
    .str("DestinationKeyMaterialId", &r.destination_key_material_id)
    .done());
render_fn!(GenerateDataKeyResponse, |r| Obj::new()
    .blob("CiphertextBlob", &r.ciphertext_blob)
    .blob("Plaintext", &r.plaintext)
    .str("KeyId", &r.key_id)
    .blob("CiphertextForRecipient", &r.ciphertext_for_recipient)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(GenerateDataKeyWithoutPlaintextResponse, |r| Obj::new()
    .blob("CiphertextBlob", &r.ciphertext_blob)
    .str("KeyId", &r.key_id)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(GenerateDataKeyPairResponse, |r| Obj::new()
    .blob("PrivateKeyCiphertextBlob", &r.private_key_ciphertext_blob)
    .blob("PrivateKeyPlaintext", &r.private_key_plaintext)
    .blob("PublicKey", &r.public_key)
    .str("KeyId", &r.key_id)
    .enm::<v1::DataKeyPairSpec>("KeyPairSpec", r.key_pair_spec)
    .blob("CiphertextForRecipient", &r.ciphertext_for_recipient)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(GenerateDataKeyPairWithoutPlaintextResponse, |r| Obj::new()
    .blob("PrivateKeyCiphertextBlob", &r.private_key_ciphertext_blob)
    .blob("PublicKey", &r.public_key)
    .str("KeyId", &r.key_id)
    .enm::<v1::DataKeyPairSpec>("KeyPairSpec", r.key_pair_spec)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(SignResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .blob("Signature", &r.signature)
    .enm::<v1::SigningAlgorithmSpec>("SigningAlgorithm", r.signing_algorithm)
    .done());
render_fn!(VerifyResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .bool("SignatureValid", r.signature_valid)
    .enm::<v1::SigningAlgorithmSpec>("SigningAlgorithm", r.signing_algorithm)
    .done());
render_fn!(GenerateMacResponse, |r| Obj::new()
    .blob("Mac", &r.mac)
    .enm::<v1::MacAlgorithmSpec>("MacAlgorithm", r.mac_algorithm)
    .str("KeyId", &r.key_id)
    .done());
render_fn!(VerifyMacResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .bool("MacValid", r.mac_valid)
    .enm::<v1::MacAlgorithmSpec>("MacAlgorithm", r.mac_algorithm)
    .done());
render_fn!(GetPublicKeyResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .blob("PublicKey", &r.public_key)
    .enm::<v1::CustomerMasterKeySpec>("CustomerMasterKeySpec", r.customer_master_key_spec)
    .enm::<v1::KeySpec>("KeySpec", r.key_spec)
    .enm::<v1::KeyUsage>("KeyUsage", r.key_usage)
    .enums::<v1::EncryptionAlgorithmSpec>("EncryptionAlgorithms", &r.encryption_algorithms)
    .enums::<v1::SigningAlgorithmSpec>("SigningAlgorithms", &r.signing_algorithms)
    .enums::<v1::KeyAgreementAlgorithmSpec>("KeyAgreementAlgorithms", &r.key_agreement_algorithms)
    .done());
render_fn!(DeriveSharedSecretResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .blob("SharedSecret", &r.shared_secret)
    .blob("CiphertextForRecipient", &r.ciphertext_for_recipient)
    .enm::<v1::KeyAgreementAlgorithmSpec>("KeyAgreementAlgorithm", r.key_agreement_algorithm)
    .enm::<v1::OriginType>("KeyOrigin", r.key_origin)
    .done());
render_fn!(GenerateRandomResponse, |r| Obj::new()
    .blob("Plaintext", &r.plaintext)
    .blob("CiphertextForRecipient", &r.ciphertext_for_recipient)
    .done());
render_fn!(ListAliasesResponse, |r| Obj::new()
    .list("Aliases", &r.aliases, alias_list_entry)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(CreateGrantResponse, |r| Obj::new()
    .str("GrantToken", &r.grant_token)
    .str("GrantId", &r.grant_id)
    .done());
render_fn!(ListGrantsResponse, |r| Obj::new()
    .list("Grants", &r.grants, grant_list_entry)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(ListRetirableGrantsResponse, |r| Obj::new()
    .list("Grants", &r.grants, grant_list_entry)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(GetKeyPolicyResponse, |r| Obj::new()
    .str("Policy", &r.policy)
    .str("PolicyName", &r.policy_name)
    .done());
render_fn!(ListKeyPoliciesResponse, |r| Obj::new()
    .strings("PolicyNames", &r.policy_names)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(ListResourceTagsResponse, |r| Obj::new()
    .list("Tags", &r.tags, tag)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(GetKeyRotationStatusResponse, |r| Obj::new()
    .bool("KeyRotationEnabled", r.key_rotation_enabled)
    .str("KeyId", &r.key_id)
    .opt_int("RotationPeriodInDays", r.rotation_period_in_days)
    .ts("NextRotationDate", r.next_rotation_date.as_ref())
    .ts("OnDemandRotationStartDate", r.on_demand_rotation_start_date.as_ref())
    .done());
render_fn!(RotateKeyOnDemandResponse, |r| Obj::new().str("KeyId", &r.key_id).done());
render_fn!(ListKeyRotationsResponse, |r| Obj::new()
    .list("Rotations", &r.rotations, rotations_list_entry)
    .page(&r.next_marker, r.truncated)
    .done());
render_fn!(GetParametersForImportResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .blob("ImportToken", &r.import_token)
    .blob("PublicKey", &r.public_key)
    .ts("ParametersValidTo", r.parameters_valid_to.as_ref())
    .done());
render_fn!(ImportKeyMaterialResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(DeleteImportedKeyMaterialResponse, |r| Obj::new()
    .str("KeyId", &r.key_id)
    .str("KeyMaterialId", &r.key_material_id)
    .done());
render_fn!(ReplicateKeyResponse, |r| Obj::new()
    .msg("ReplicaKeyMetadata", r.replica_key_metadata.as_ref(), key_metadata)
    .str("ReplicaPolicy", &r.replica_policy)
    .list("ReplicaTags", &r.replica_tags, tag)
    .done());
render_fn!(CreateCustomKeyStoreResponse, |r| Obj::new()
    .str("CustomKeyStoreId", &r.custom_key_store_id)
    .done());
render_fn!(DescribeCustomKeyStoresResponse, |r| Obj::new()
    .list("CustomKeyStores", &r.custom_key_stores, custom_key_store)
    .page(&r.next_marker, r.truncated)
    .done());

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    #[test]
    fn timestamps_like_aws_cli() {
        assert_eq!(timestamp(&prost_types::Timestamp { seconds: 0, nanos: 0 }), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            timestamp(&prost_types::Timestamp { seconds: 1_714_558_830, nanos: 123_000_000 }),
            "2024-05-01T10:20:30.123000+00:00"
        );
        // Leap day, and a date before the epoch.
        assert_eq!(
            timestamp(&prost_types::Timestamp { seconds: 951_782_400, nanos: 0 }),
            "2000-02-29T00:00:00+00:00"
        );
        assert_eq!(timestamp(&prost_types::Timestamp { seconds: -1, nanos: 0 }), "1969-12-31T23:59:59+00:00");
    }

    #[test]
    fn key_metadata_shape() {
        let m = v1::KeyMetadata {
            aws_account_id: "111122223333".into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            creation_date: ts(1_714_558_830, 0),
            enabled: true,
            description: String::new(),
            key_usage: v1::KeyUsage::EncryptDecrypt as i32,
            key_state: v1::KeyState::Enabled as i32,
            origin: v1::OriginType::AwsKms as i32,
            key_manager: v1::KeyManagerType::Customer as i32,
            customer_master_key_spec: v1::CustomerMasterKeySpec::SymmetricDefault as i32,
            key_spec: v1::KeySpec::SymmetricDefault as i32,
            encryption_algorithms: vec![v1::EncryptionAlgorithmSpec::SymmetricDefault as i32],
            multi_region: Some(false),
            ..Default::default()
        };
        let out = CreateKeyResponse { key_metadata: Some(m) }.render().to_pretty();
        let expected = r#"{
    "KeyMetadata": {
        "AWSAccountId": "111122223333",
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "CreationDate": "2024-05-01T10:20:30+00:00",
        "Enabled": true,
        "Description": "",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": [
            "SYMMETRIC_DEFAULT"
        ],
        "MultiRegion": false
    }
}"#;
        assert_eq!(out, expected);
    }

    use v1::CreateKeyResponse;

    #[test]
    fn blobs_enums_and_empty_responses() {
        let r = v1::EncryptResponse {
            ciphertext_blob: b"hello".to_vec(),
            key_id: "arn:k".into(),
            encryption_algorithm: v1::EncryptionAlgorithmSpec::SymmetricDefault as i32,
        };
        let j = r.render();
        assert_eq!(j.get("CiphertextBlob"), Some(&Json::Str("aGVsbG8=".into())));
        assert_eq!(j.get("EncryptionAlgorithm"), Some(&Json::Str("SYMMETRIC_DEFAULT".into())));
        assert!(v1::EnableKeyResponse {}.render().is_empty_object());
        // Unknown enum numbers from a newer server are kept visible.
        let j = v1::SignResponse { signing_algorithm: 999, ..Default::default() }.render();
        assert_eq!(j.get("SigningAlgorithm"), Some(&Json::Str("UNKNOWN_999".into())));
    }

    #[test]
    fn lists_and_pagination() {
        let r = v1::ListAliasesResponse {
            aliases: vec![v1::AliasListEntry {
                alias_name: "alias/app".into(),
                alias_arn: "arn:alias".into(),
                target_key_id: "k1".into(),
                creation_date: ts(0, 5_000),
                last_updated_date: None,
            }],
            next_marker: "m2".into(),
            truncated: true,
        };
        let j = r.render();
        assert_eq!(
            j.query("Aliases[0].CreationDate"),
            Ok(Json::Str("1970-01-01T00:00:00.000005+00:00".into()))
        );
        assert_eq!(j.get("NextMarker"), Some(&Json::Str("m2".into())));
        assert_eq!(j.get("Truncated"), Some(&Json::Bool(true)));
        let empty = v1::ListKeysResponse::default().render().to_pretty();
        assert_eq!(empty, "{\n    \"Keys\": [],\n    \"Truncated\": false\n}");
        let g = grant_list_entry(&v1::GrantListEntry {
            operations: vec![v1::GrantOperation::ReEncryptFrom as i32],
            constraints: Some(v1::GrantConstraints {
                encryption_context_subset: [
                    ("b".to_string(), "2".to_string()),
                    ("a".to_string(), "1".to_string()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(g.query("Operations[0]"), Ok(Json::Str("ReEncryptFrom".into())));
        assert_eq!(
            g.query("Constraints.EncryptionContextSubset").map(|j| j.to_pretty()),
            Ok("{\n    \"a\": \"1\",\n    \"b\": \"2\"\n}".to_string())
        );
    }
}
