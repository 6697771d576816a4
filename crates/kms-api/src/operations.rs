//! Every AWS KMS operation, listed once: the `Kms` method, the AWS name, and the kms.v1 request
//! and response types; every one is a `Kms` method. Each front end (gRPC, AWS JSON) expands this one
//! list with its own macro, so the front ends cannot disagree about what exists.

/// Invokes `$front_end! { implemented { .. } }` with the operation list.
macro_rules! kms_operations {
    ($front_end:ident) => {
        $front_end! {
            implemented {
                create_key: "CreateKey", CreateKeyRequest => CreateKeyResponse;
                describe_key: "DescribeKey", DescribeKeyRequest => DescribeKeyResponse;
                list_keys: "ListKeys", ListKeysRequest => ListKeysResponse;
                update_key_description: "UpdateKeyDescription", UpdateKeyDescriptionRequest => UpdateKeyDescriptionResponse;
                enable_key: "EnableKey", EnableKeyRequest => EnableKeyResponse;
                disable_key: "DisableKey", DisableKeyRequest => DisableKeyResponse;
                schedule_key_deletion: "ScheduleKeyDeletion", ScheduleKeyDeletionRequest => ScheduleKeyDeletionResponse;
                cancel_key_deletion: "CancelKeyDeletion", CancelKeyDeletionRequest => CancelKeyDeletionResponse;
                encrypt: "Encrypt", EncryptRequest => EncryptResponse;
                decrypt: "Decrypt", DecryptRequest => DecryptResponse;
                re_encrypt: "ReEncrypt", ReEncryptRequest => ReEncryptResponse;
                generate_data_key: "GenerateDataKey", GenerateDataKeyRequest => GenerateDataKeyResponse;
                generate_data_key_without_plaintext: "GenerateDataKeyWithoutPlaintext", GenerateDataKeyWithoutPlaintextRequest => GenerateDataKeyWithoutPlaintextResponse;
                generate_random: "GenerateRandom", GenerateRandomRequest => GenerateRandomResponse;
                generate_mac: "GenerateMac", GenerateMacRequest => GenerateMacResponse;
                verify_mac: "VerifyMac", VerifyMacRequest => VerifyMacResponse;
                create_alias: "CreateAlias", CreateAliasRequest => CreateAliasResponse;
                update_alias: "UpdateAlias", UpdateAliasRequest => UpdateAliasResponse;
                delete_alias: "DeleteAlias", DeleteAliasRequest => DeleteAliasResponse;
                list_aliases: "ListAliases", ListAliasesRequest => ListAliasesResponse;
                tag_resource: "TagResource", TagResourceRequest => TagResourceResponse;
                untag_resource: "UntagResource", UntagResourceRequest => UntagResourceResponse;
                list_resource_tags: "ListResourceTags", ListResourceTagsRequest => ListResourceTagsResponse;
                enable_key_rotation: "EnableKeyRotation", EnableKeyRotationRequest => EnableKeyRotationResponse;
                disable_key_rotation: "DisableKeyRotation", DisableKeyRotationRequest => DisableKeyRotationResponse;
                get_key_rotation_status: "GetKeyRotationStatus", GetKeyRotationStatusRequest => GetKeyRotationStatusResponse;
                rotate_key_on_demand: "RotateKeyOnDemand", RotateKeyOnDemandRequest => RotateKeyOnDemandResponse;
                list_key_rotations: "ListKeyRotations", ListKeyRotationsRequest => ListKeyRotationsResponse;
                derive_shared_secret: "DeriveSharedSecret", DeriveSharedSecretRequest => DeriveSharedSecretResponse;
                get_public_key: "GetPublicKey", GetPublicKeyRequest => GetPublicKeyResponse;
                verify: "Verify", VerifyRequest => VerifyResponse;
                sign: "Sign", SignRequest => SignResponse;
                generate_data_key_pair_without_plaintext: "GenerateDataKeyPairWithoutPlaintext", GenerateDataKeyPairWithoutPlaintextRequest => GenerateDataKeyPairWithoutPlaintextResponse;
                generate_data_key_pair: "GenerateDataKeyPair", GenerateDataKeyPairRequest => GenerateDataKeyPairResponse;
                get_parameters_for_import: "GetParametersForImport", GetParametersForImportRequest => GetParametersForImportResponse;
                import_key_material: "ImportKeyMaterial", ImportKeyMaterialRequest => ImportKeyMaterialResponse;
                delete_imported_key_material: "DeleteImportedKeyMaterial", DeleteImportedKeyMaterialRequest => DeleteImportedKeyMaterialResponse;
                get_key_last_usage: "GetKeyLastUsage", GetKeyLastUsageRequest => GetKeyLastUsageResponse;
                create_custom_key_store: "CreateCustomKeyStore", CreateCustomKeyStoreRequest => CreateCustomKeyStoreResponse;
                describe_custom_key_stores: "DescribeCustomKeyStores", DescribeCustomKeyStoresRequest => DescribeCustomKeyStoresResponse;
                update_custom_key_store: "UpdateCustomKeyStore", UpdateCustomKeyStoreRequest => UpdateCustomKeyStoreResponse;
                delete_custom_key_store: "DeleteCustomKeyStore", DeleteCustomKeyStoreRequest => DeleteCustomKeyStoreResponse;
                connect_custom_key_store: "ConnectCustomKeyStore", ConnectCustomKeyStoreRequest => ConnectCustomKeyStoreResponse;
                disconnect_custom_key_store: "DisconnectCustomKeyStore", DisconnectCustomKeyStoreRequest => DisconnectCustomKeyStoreResponse;
                create_grant: "CreateGrant", CreateGrantRequest => CreateGrantResponse;
                list_grants: "ListGrants", ListGrantsRequest => ListGrantsResponse;
                list_retirable_grants: "ListRetirableGrants", ListRetirableGrantsRequest => ListRetirableGrantsResponse;
                retire_grant: "RetireGrant", RetireGrantRequest => RetireGrantResponse;
                revoke_grant: "RevokeGrant", RevokeGrantRequest => RevokeGrantResponse;
                get_key_policy: "GetKeyPolicy", GetKeyPolicyRequest => GetKeyPolicyResponse;
                put_key_policy: "PutKeyPolicy", PutKeyPolicyRequest => PutKeyPolicyResponse;
                list_key_policies: "ListKeyPolicies", ListKeyPoliciesRequest => ListKeyPoliciesResponse;
                replicate_key: "ReplicateKey", ReplicateKeyRequest => ReplicateKeyResponse;
                update_primary_region: "UpdatePrimaryRegion", UpdatePrimaryRegionRequest => UpdatePrimaryRegionResponse;
            }
        }
    };
}

pub(crate) use kms_operations;
