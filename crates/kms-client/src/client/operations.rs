//! Every kms.v1 RPC as an [`Operation`]: its request type, how it is retried and where it goes.
//! The table below is the one place these decisions are written down (the crate documentation
//! renders it for humans); [`Client::send`](super::Client::send) serves any row with the same
//! retry and failover machinery.

use super::retry::Idempotency::{self, Idempotent, Unsafe};
use super::transport::Svc;
use kms_proto::v1 as pb;
use std::future::Future;
use tonic::{Request, Response, Status};

/// Where a call goes in a client configured with several regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Names no key (CreateKey, ListKeys, GenerateRandom, ...): the home region.
    Home,
    /// Cryptographic operations and DescribeKey, which any related multi-Region key answers
    /// alike: the home region first and, for a multi-Region key, the other regions holding it
    /// when the home region cannot answer.
    Crypto,
    /// Key management: a multi-Region key named by its bare id goes to its primary region, a key
    /// ARN to the region it names, anything else to the home region. No failover: a replica
    /// region must not silently take a change meant for the primary.
    Primary,
    /// Like [`Primary`](Self::Primary), for calls that change which regions hold the key
    /// (ReplicateKey, UpdatePrimaryRegion): what the client knew of them is forgotten afterwards.
    PrimaryChangingRegions,
}

/// A kms.v1 request the client can send: the RPC it belongs to and the rules for sending it.
pub trait Operation: Clone + Send + Sync + 'static {
    type Response: Send + 'static;
    /// The AWS operation name (`Encrypt`).
    const NAME: &'static str;
    const ROUTING: Routing;

    /// Whether this request may be repeated after an unknown outcome (for most operations fixed;
    /// CreateKey with an idempotency token and CreateGrant with a name may be).
    fn idempotency(&self) -> Idempotency;

    /// The fields that name keys (key id, key ARN, alias), so that a key ARN can be rewritten
    /// for another region.
    fn key_fields(&mut self) -> Vec<&mut String>;

    /// The key id a ciphertext blob names, for requests that carry one (Decrypt).
    fn blob_key_id(&self) -> Option<String> {
        None
    }

    /// Key metadata in the response, which tells the client a key's primary and replica regions.
    fn key_metadata(_response: &Self::Response) -> Option<&pb::KeyMetadata> {
        None
    }

    /// One attempt over `svc`.
    fn send(
        svc: Svc,
        request: Request<Self>,
    ) -> impl Future<Output = Result<Response<Self::Response>, Status>> + Send;
}

fn idempotent<T>(_: &T) -> Idempotency {
    Idempotent
}

fn not_idempotent<T>(_: &T) -> Idempotency {
    Unsafe
}

fn idempotent_if(safe: bool) -> Idempotency {
    if safe { Idempotent } else { Unsafe }
}

fn no_keys<T>(_: &mut T) -> Vec<&mut String> {
    Vec::new()
}

macro_rules! operations {
    ($(
        $method:ident: $name:literal, $request:ident => $response:ident;
        $routing:ident, $idempotency:expr, $keys:expr
        $(, blob $blob:ident)? $(, metadata $metadata:ident)?;
    )*) => {
        $(
            impl Operation for pb::$request {
                type Response = pb::$response;
                const NAME: &'static str = $name;
                const ROUTING: Routing = Routing::$routing;

                fn idempotency(&self) -> Idempotency {
                    let rule: fn(&Self) -> Idempotency = $idempotency;
                    rule(self)
                }

                fn key_fields(&mut self) -> Vec<&mut String> {
                    let fields: for<'a> fn(&'a mut Self) -> Vec<&'a mut String> = $keys;
                    fields(self)
                }

                $(fn blob_key_id(&self) -> Option<String> {
                    super::routing::blob_key_id(&self.$blob).map(str::to_string)
                })?

                $(fn key_metadata(response: &Self::Response) -> Option<&pb::KeyMetadata> {
                    response.$metadata.as_ref()
                })?

                async fn send(mut svc: Svc, request: Request<Self>) -> Result<Response<Self::Response>, Status> {
                    svc.$method(request).await
                }
            }
        )*

        /// The AWS names of every operation in the table.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

operations! {
    // Keys.
    create_key: "CreateKey", CreateKeyRequest => CreateKeyResponse;
        Home, |r| idempotent_if(r.idempotency_token.is_some()), no_keys, metadata key_metadata;
    describe_key: "DescribeKey", DescribeKeyRequest => DescribeKeyResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id], metadata key_metadata;
    list_keys: "ListKeys", ListKeysRequest => ListKeysResponse;
        Home, idempotent, no_keys;
    update_key_description: "UpdateKeyDescription", UpdateKeyDescriptionRequest => UpdateKeyDescriptionResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    enable_key: "EnableKey", EnableKeyRequest => EnableKeyResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    disable_key: "DisableKey", DisableKeyRequest => DisableKeyResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    // Repeated after it ran, it fails (KMSInvalidStateException): state-safe, but the answer of a
    // blind retry would mislead.
    schedule_key_deletion: "ScheduleKeyDeletion", ScheduleKeyDeletionRequest => ScheduleKeyDeletionResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];
    cancel_key_deletion: "CancelKeyDeletion", CancelKeyDeletionRequest => CancelKeyDeletionResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];
    get_key_last_usage: "GetKeyLastUsage", GetKeyLastUsageRequest => GetKeyLastUsageResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];

    // Cryptography: no state changes (a retried Encrypt makes another, equally valid blob).
    encrypt: "Encrypt", EncryptRequest => EncryptResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    decrypt: "Decrypt", DecryptRequest => DecryptResponse;
        Crypto, idempotent, |r| r.key_id.iter_mut().collect(), blob ciphertext_blob;
    re_encrypt: "ReEncrypt", ReEncryptRequest => ReEncryptResponse;
        Crypto, idempotent,
        |r| std::iter::once(&mut r.destination_key_id).chain(r.source_key_id.as_mut()).collect();
    generate_data_key: "GenerateDataKey", GenerateDataKeyRequest => GenerateDataKeyResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    generate_data_key_without_plaintext: "GenerateDataKeyWithoutPlaintext",
        GenerateDataKeyWithoutPlaintextRequest => GenerateDataKeyWithoutPlaintextResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    generate_data_key_pair: "GenerateDataKeyPair", GenerateDataKeyPairRequest => GenerateDataKeyPairResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    generate_data_key_pair_without_plaintext: "GenerateDataKeyPairWithoutPlaintext",
        GenerateDataKeyPairWithoutPlaintextRequest => GenerateDataKeyPairWithoutPlaintextResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    sign: "Sign", SignRequest => SignResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    verify: "Verify", VerifyRequest => VerifyResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    generate_mac: "GenerateMac", GenerateMacRequest => GenerateMacResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    verify_mac: "VerifyMac", VerifyMacRequest => VerifyMacResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    get_public_key: "GetPublicKey", GetPublicKeyRequest => GetPublicKeyResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    derive_shared_secret: "DeriveSharedSecret", DeriveSharedSecretRequest => DeriveSharedSecretResponse;
        Crypto, idempotent, |r| vec![&mut r.key_id];
    generate_random: "GenerateRandom", GenerateRandomRequest => GenerateRandomResponse;
        Home, idempotent, no_keys;

    // Aliases. CreateAlias and DeleteAlias repeated after they ran fail (AlreadyExists,
    // NotFound); UpdateAlias sets a value.
    create_alias: "CreateAlias", CreateAliasRequest => CreateAliasResponse;
        Primary, not_idempotent, |r| vec![&mut r.target_key_id];
    update_alias: "UpdateAlias", UpdateAliasRequest => UpdateAliasResponse;
        Primary, idempotent, |r| vec![&mut r.target_key_id];
    delete_alias: "DeleteAlias", DeleteAliasRequest => DeleteAliasResponse;
        Home, not_idempotent, no_keys;
    list_aliases: "ListAliases", ListAliasesRequest => ListAliasesResponse;
        Primary, idempotent, |r| r.key_id.iter_mut().collect();

    // Grants: a CreateGrant with a Name is idempotent in AWS (same name and terms, same grant);
    // without one a retry makes a second grant. Retire and revoke fail when repeated.
    create_grant: "CreateGrant", CreateGrantRequest => CreateGrantResponse;
        Primary, |r| idempotent_if(r.name.is_some()), |r| vec![&mut r.key_id];
    list_grants: "ListGrants", ListGrantsRequest => ListGrantsResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    list_retirable_grants: "ListRetirableGrants", ListRetirableGrantsRequest => ListRetirableGrantsResponse;
        Home, idempotent, no_keys;
    retire_grant: "RetireGrant", RetireGrantRequest => RetireGrantResponse;
        Primary, not_idempotent, |r| r.key_id.iter_mut().collect();
    revoke_grant: "RevokeGrant", RevokeGrantRequest => RevokeGrantResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];

    // Policies and tags set values.
    get_key_policy: "GetKeyPolicy", GetKeyPolicyRequest => GetKeyPolicyResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    put_key_policy: "PutKeyPolicy", PutKeyPolicyRequest => PutKeyPolicyResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    list_key_policies: "ListKeyPolicies", ListKeyPoliciesRequest => ListKeyPoliciesResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    tag_resource: "TagResource", TagResourceRequest => TagResourceResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    untag_resource: "UntagResource", UntagResourceRequest => UntagResourceResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    list_resource_tags: "ListResourceTags", ListResourceTagsRequest => ListResourceTagsResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];

    // Rotation: every RotateKeyOnDemand rotates again (and spends one of 25 per key).
    enable_key_rotation: "EnableKeyRotation", EnableKeyRotationRequest => EnableKeyRotationResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    disable_key_rotation: "DisableKeyRotation", DisableKeyRotationRequest => DisableKeyRotationResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    get_key_rotation_status: "GetKeyRotationStatus", GetKeyRotationStatusRequest => GetKeyRotationStatusResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];
    rotate_key_on_demand: "RotateKeyOnDemand", RotateKeyOnDemandRequest => RotateKeyOnDemandResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];
    list_key_rotations: "ListKeyRotations", ListKeyRotationsRequest => ListKeyRotationsResponse;
        Primary, idempotent, |r| vec![&mut r.key_id];

    // Imported material: every GetParametersForImport issues new parameters (at most 10 are
    // kept per key); an import or deletion repeated after it ran answers differently.
    get_parameters_for_import: "GetParametersForImport", GetParametersForImportRequest => GetParametersForImportResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];
    import_key_material: "ImportKeyMaterial", ImportKeyMaterialRequest => ImportKeyMaterialResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];
    delete_imported_key_material: "DeleteImportedKeyMaterial",
        DeleteImportedKeyMaterialRequest => DeleteImportedKeyMaterialResponse;
        Primary, not_idempotent, |r| vec![&mut r.key_id];

    // Multi-Region keys: a repeated ReplicateKey answers AlreadyExists, a repeated
    // UpdatePrimaryRegion finds the key no longer primary there.
    replicate_key: "ReplicateKey", ReplicateKeyRequest => ReplicateKeyResponse;
        PrimaryChangingRegions, not_idempotent, |r| vec![&mut r.key_id], metadata replica_key_metadata;
    update_primary_region: "UpdatePrimaryRegion", UpdatePrimaryRegionRequest => UpdatePrimaryRegionResponse;
        PrimaryChangingRegions, not_idempotent, |r| vec![&mut r.key_id];

    // Custom key stores (not offered by the server: UnsupportedOperationException).
    create_custom_key_store: "CreateCustomKeyStore", CreateCustomKeyStoreRequest => CreateCustomKeyStoreResponse;
        Home, not_idempotent, no_keys;
    describe_custom_key_stores: "DescribeCustomKeyStores",
        DescribeCustomKeyStoresRequest => DescribeCustomKeyStoresResponse;
        Home, idempotent, no_keys;
    update_custom_key_store: "UpdateCustomKeyStore", UpdateCustomKeyStoreRequest => UpdateCustomKeyStoreResponse;
        Home, not_idempotent, no_keys;
    delete_custom_key_store: "DeleteCustomKeyStore", DeleteCustomKeyStoreRequest => DeleteCustomKeyStoreResponse;
        Home, not_idempotent, no_keys;
    connect_custom_key_store: "ConnectCustomKeyStore", ConnectCustomKeyStoreRequest => ConnectCustomKeyStoreResponse;
        Home, not_idempotent, no_keys;
    disconnect_custom_key_store: "DisconnectCustomKeyStore",
        DisconnectCustomKeyStoreRequest => DisconnectCustomKeyStoreResponse;
        Home, not_idempotent, no_keys;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn every_rpc_of_the_service_is_in_the_table() {
        let set = prost_types::FileDescriptorSet::decode(kms_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service =
            set.file.iter().flat_map(|f| &f.service).find(|s| s.name() == "KeyManagementService").unwrap();
        let mut rpcs: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let mut table = NAMES.to_vec();
        rpcs.sort_unstable();
        table.sort_unstable();
        assert_eq!(table, rpcs);
    }

    #[test]
    fn retries_of_creating_calls_depend_on_a_token_or_name() {
        let create = pb::CreateKeyRequest::default();
        assert_eq!(create.idempotency(), Unsafe);
        let with_token = pb::CreateKeyRequest { idempotency_token: Some("t".into()), ..create };
        assert_eq!(with_token.idempotency(), Idempotent);
        let grant = pb::CreateGrantRequest::default();
        assert_eq!(grant.idempotency(), Unsafe);
        assert_eq!(pb::CreateGrantRequest { name: Some("n".into()), ..grant }.idempotency(), Idempotent);
        assert_eq!(pb::RotateKeyOnDemandRequest::default().idempotency(), Unsafe);
        assert_eq!(pb::DecryptRequest::default().idempotency(), Idempotent);
    }

    #[test]
    fn key_fields_name_every_key_of_a_request() {
        let mut re_encrypt = pb::ReEncryptRequest {
            destination_key_id: "dest".into(),
            source_key_id: Some("source".into()),
            ..Default::default()
        };
        let fields: Vec<String> = re_encrypt.key_fields().into_iter().map(|f| f.clone()).collect();
        assert_eq!(fields, ["dest", "source"]);
        assert!(pb::DecryptRequest::default().key_fields().is_empty());
        assert!(pb::ListKeysRequest::default().key_fields().is_empty());
    }
}
