//! The operations the AWS endpoint dispatches to [`Kms`], listed once.
//!
//! Each entry maps `TrentService.<Operation>` to the `Kms` method and its kms.v1 request and
//! response types; the JSON crosses through the one [`Codec`]. Operations of the kms.v1 service
//! that are not listed (the gRPC front end's `pending` list) answer UnsupportedOperationException
//! naming the operation, after their input is validated; names the service does not have answer
//! UnknownOperationException. A unit test keeps this list equal to grpc.rs's `implemented` list.

use super::codec::Codec;
use super::error::AwsError;
use crate::caller::Caller;
use crate::kms::Kms;
use kms_proto::v1 as pb;
use serde_json::Value as Json;

/// The kms.v1 service whose methods are the AWS operations.
const SERVICE: &str = "kms.v1.KeyManagementService";

macro_rules! aws_operations {
    ($($name:literal => $method:ident($req:ident, $resp:ident);)*) => {
        /// The operations this endpoint executes, by AWS name.
        pub const IMPLEMENTED: &[&str] = &[$($name),*];

        #[cfg(test)]
        pub(crate) const TABLE: &[(&str, &str, &str, &str)] =
            &[$(($name, stringify!($method), stringify!($req), stringify!($resp))),*];

        /// Runs `operation` with the JSON `input` as `caller`.
        pub async fn dispatch(
            kms: &Kms,
            codec: &Codec,
            caller: &Caller,
            operation: &str,
            input: &Json,
        ) -> Result<Json, AwsError> {
            match operation {
                $(
                    $name => {
                        let request: pb::$req = codec.decode(concat!("kms.v1.", stringify!($req)), input)?;
                        let response = kms.$method(caller, request).await?;
                        codec.encode(concat!("kms.v1.", stringify!($resp)), &response)
                    }
                )*
                other => not_implemented(codec, other, input),
            }
        }
    };
}

aws_operations! {
    "CreateKey" => create_key(CreateKeyRequest, CreateKeyResponse);
    "DescribeKey" => describe_key(DescribeKeyRequest, DescribeKeyResponse);
    "ListKeys" => list_keys(ListKeysRequest, ListKeysResponse);
    "UpdateKeyDescription" => update_key_description(UpdateKeyDescriptionRequest, UpdateKeyDescriptionResponse);
    "EnableKey" => enable_key(EnableKeyRequest, EnableKeyResponse);
    "DisableKey" => disable_key(DisableKeyRequest, DisableKeyResponse);
    "ScheduleKeyDeletion" => schedule_key_deletion(ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse);
    "CancelKeyDeletion" => cancel_key_deletion(CancelKeyDeletionRequest, CancelKeyDeletionResponse);
    "Encrypt" => encrypt(EncryptRequest, EncryptResponse);
    "Decrypt" => decrypt(DecryptRequest, DecryptResponse);
    "ReEncrypt" => re_encrypt(ReEncryptRequest, ReEncryptResponse);
    "GenerateDataKey" => generate_data_key(GenerateDataKeyRequest, GenerateDataKeyResponse);
    "GenerateDataKeyWithoutPlaintext" => generate_data_key_without_plaintext(GenerateDataKeyWithoutPlaintextRequest, GenerateDataKeyWithoutPlaintextResponse);
    "GenerateRandom" => generate_random(GenerateRandomRequest, GenerateRandomResponse);
    "GenerateMac" => generate_mac(GenerateMacRequest, GenerateMacResponse);
    "VerifyMac" => verify_mac(VerifyMacRequest, VerifyMacResponse);
    "CreateAlias" => create_alias(CreateAliasRequest, CreateAliasResponse);
    "UpdateAlias" => update_alias(UpdateAliasRequest, UpdateAliasResponse);
    "DeleteAlias" => delete_alias(DeleteAliasRequest, DeleteAliasResponse);
    "ListAliases" => list_aliases(ListAliasesRequest, ListAliasesResponse);
    "TagResource" => tag_resource(TagResourceRequest, TagResourceResponse);
    "UntagResource" => untag_resource(UntagResourceRequest, UntagResourceResponse);
    "ListResourceTags" => list_resource_tags(ListResourceTagsRequest, ListResourceTagsResponse);
    "EnableKeyRotation" => enable_key_rotation(EnableKeyRotationRequest, EnableKeyRotationResponse);
    "DisableKeyRotation" => disable_key_rotation(DisableKeyRotationRequest, DisableKeyRotationResponse);
    "GetKeyRotationStatus" => get_key_rotation_status(GetKeyRotationStatusRequest, GetKeyRotationStatusResponse);
    "RotateKeyOnDemand" => rotate_key_on_demand(RotateKeyOnDemandRequest, RotateKeyOnDemandResponse);
    "ListKeyRotations" => list_key_rotations(ListKeyRotationsRequest, ListKeyRotationsResponse);
    "GetPublicKey" => get_public_key(GetPublicKeyRequest, GetPublicKeyResponse);
    "Sign" => sign(SignRequest, SignResponse);
    "Verify" => verify(VerifyRequest, VerifyResponse);
    "DeriveSharedSecret" => derive_shared_secret(DeriveSharedSecretRequest, DeriveSharedSecretResponse);
    "GenerateDataKeyPair" => generate_data_key_pair(GenerateDataKeyPairRequest, GenerateDataKeyPairResponse);
    "GenerateDataKeyPairWithoutPlaintext" => generate_data_key_pair_without_plaintext(GenerateDataKeyPairWithoutPlaintextRequest, GenerateDataKeyPairWithoutPlaintextResponse);
    "GetParametersForImport" => get_parameters_for_import(GetParametersForImportRequest, GetParametersForImportResponse);
    "ImportKeyMaterial" => import_key_material(ImportKeyMaterialRequest, ImportKeyMaterialResponse);
    "DeleteImportedKeyMaterial" => delete_imported_key_material(DeleteImportedKeyMaterialRequest, DeleteImportedKeyMaterialResponse);
    "GetKeyLastUsage" => get_key_last_usage(GetKeyLastUsageRequest, GetKeyLastUsageResponse);
    "CreateCustomKeyStore" => create_custom_key_store(CreateCustomKeyStoreRequest, CreateCustomKeyStoreResponse);
    "DescribeCustomKeyStores" => describe_custom_key_stores(DescribeCustomKeyStoresRequest, DescribeCustomKeyStoresResponse);
    "UpdateCustomKeyStore" => update_custom_key_store(UpdateCustomKeyStoreRequest, UpdateCustomKeyStoreResponse);
    "DeleteCustomKeyStore" => delete_custom_key_store(DeleteCustomKeyStoreRequest, DeleteCustomKeyStoreResponse);
    "ConnectCustomKeyStore" => connect_custom_key_store(ConnectCustomKeyStoreRequest, ConnectCustomKeyStoreResponse);
    "DisconnectCustomKeyStore" => disconnect_custom_key_store(DisconnectCustomKeyStoreRequest, DisconnectCustomKeyStoreResponse);
}

/// Whether `operation` is a method of the kms.v1 service (i.e. an AWS KMS operation).
pub fn is_kms_operation(codec: &Codec, operation: &str) -> bool {
    codec.pool().get_service_by_name(SERVICE).is_some_and(|s| s.methods().any(|m| m.name() == operation))
}

pub(crate) fn not_implemented(codec: &Codec, operation: &str, input: &Json) -> Result<Json, AwsError> {
    if !is_kms_operation(codec, operation) {
        return Err(AwsError::unknown_operation(format!("Operation {operation} is not a KMS operation")));
    }
    codec.json_to_dynamic(&format!("kms.v1.{operation}Request"), input)?;
    Err(AwsError::not_yet(operation))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The `implemented` and `pending` lists of the gRPC front end, parsed from its source.
    fn grpc_lists() -> (Vec<String>, Vec<String>) {
        let whole = include_str!("../grpc.rs");
        // The macro's invocation, not its definition.
        let source = &whole[whole.find("grpc_api! {").unwrap()..];
        let block = |start: &str| -> Vec<String> {
            let from = source.find(start).unwrap() + start.len();
            let body = &source[from..];
            let body = &body[..body.find('}').unwrap()];
            body.lines()
                .filter_map(|l| l.trim().split_once(':').map(|(m, _)| m.trim().to_string()))
                .filter(|m| !m.is_empty())
                .collect()
        };
        (block("    implemented {"), block("    pending {"))
    }

    fn pascal(snake: &str) -> String {
        snake
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn the_list_matches_the_grpc_front_end_and_the_contract() {
        let codec = Codec::new().unwrap();
        let (implemented, pending) = grpc_lists();
        assert_eq!(implemented.len(), IMPLEMENTED.len(), "{implemented:?}");
        for (name, method, req, resp) in TABLE {
            assert!(implemented.contains(&method.to_string()), "{method} is not implemented in grpc.rs");
            assert_eq!(pascal(method), *name);
            assert_eq!(*req, format!("{name}Request"));
            assert_eq!(*resp, format!("{name}Response"));
            assert!(is_kms_operation(&codec, name));
        }
        let service = codec.pool().get_service_by_name(SERVICE).unwrap();
        assert_eq!(service.methods().len(), 54);
        for method in service.methods() {
            let implemented_here = IMPLEMENTED.contains(&method.name());
            let pending_in_grpc = pending.iter().any(|p| pascal(p) == method.name());
            assert!(implemented_here != pending_in_grpc, "{} must be in exactly one list", method.name());
            assert_eq!(method.input().full_name(), format!("kms.v1.{}Request", method.name()));
            assert_eq!(method.output().full_name(), format!("kms.v1.{}Response", method.name()));
        }
        assert!(!is_kms_operation(&codec, "Frobnicate"));
    }
}
