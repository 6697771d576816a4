//! One gRPC call per command: build the request from the flags, call, render the response.

use crate::connection::{Connection, Transport};
use kms_proto::v1;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;

use crate::args::{Tags, enum_field, flag, merge_maps};
use crate::cli::{Command, DataKeyArgs, DataKeyPairArgs, MacArgs, SignArgs, XksArgs};
use crate::error::CliError;
use crate::json::Json;
use crate::render::Render;

pub(crate) type Client = KeyManagementServiceClient<Transport>;

pub async fn connect(connection: &Connection) -> Result<Client, CliError> {
    Ok(KeyManagementServiceClient::new(connection.transport().await?))
}

/// One unary call; a status becomes [`CliError::Service`] naming the AWS operation.
macro_rules! call {
    ($client:expr, $op:literal, $method:ident, $req:expr) => {
        $client
            .$method($req)
            .await
            .map_err(|status| CliError::Service { operation: $op, status })?
            .into_inner()
    };
}

/// A list operation. Like the AWS CLI: without --limit/--marker (and without --no-paginate) it
/// follows NextMarker and prints the merged list without NextMarker/Truncated.
macro_rules! list {
    ($client:expr, $paginate:expr, $op:literal, $method:ident, $req:expr, $items:ident) => {{
        let mut req = $req;
        let follow = $paginate && req.limit.is_none() && req.marker.is_none();
        let mut resp = call!($client, $op, $method, req.clone());
        if follow {
            let mut all = std::mem::take(&mut resp.$items);
            while resp.truncated
                && !resp.next_marker.is_empty()
                && req.marker.as_ref() != Some(&resp.next_marker)
            {
                req.marker = Some(std::mem::take(&mut resp.next_marker));
                resp = call!($client, $op, $method, req.clone());
                all.append(&mut resp.$items);
            }
            resp.$items = all;
            resp.next_marker.clear();
            resp.truncated = false;
            let mut json = resp.render();
            json.remove("Truncated");
            json
        } else {
            resp.render()
        }
    }};
}

fn tags(t: Vec<Tags>) -> Vec<v1::Tag> {
    t.into_iter().flat_map(|t| t.0).collect()
}

fn dry(d: &crate::cli::DryRun) -> Option<bool> {
    flag(d.dry_run, d.no_dry_run)
}

fn enums<E: Into<i32>>(v: Vec<E>) -> Vec<i32> {
    v.into_iter().map(Into::into).collect()
}

fn data_key(a: DataKeyArgs) -> Result<v1::GenerateDataKeyRequest, CliError> {
    if a.number_of_bytes.is_some() && a.key_spec.is_some() {
        return Err(CliError::Usage("--number-of-bytes and --key-spec are mutually exclusive".into()));
    }
    Ok(v1::GenerateDataKeyRequest {
        key_id: a.key.key_id,
        encryption_context: merge_maps(&a.context.encryption_context),
        number_of_bytes: a.number_of_bytes,
        key_spec: enum_field(a.key_spec),
        grant_tokens: a.grant_tokens.grant_tokens,
        recipient: None,
        dry_run: dry(&a.dry_run),
    })
}

fn data_key_pair(a: DataKeyPairArgs) -> v1::GenerateDataKeyPairRequest {
    v1::GenerateDataKeyPairRequest {
        encryption_context: merge_maps(&a.context.encryption_context),
        key_id: a.key.key_id,
        key_pair_spec: a.key_pair_spec.into(),
        grant_tokens: a.grant_tokens.grant_tokens,
        recipient: None,
        dry_run: dry(&a.dry_run),
    }
}

fn sign_request(a: SignArgs) -> v1::SignRequest {
    v1::SignRequest {
        key_id: a.key.key_id,
        message: a.message.0,
        message_type: enum_field(a.message_type),
        grant_tokens: a.grant_tokens.grant_tokens,
        signing_algorithm: a.signing_algorithm.into(),
        dry_run: dry(&a.dry_run),
    }
}

fn mac_request(a: MacArgs) -> v1::GenerateMacRequest {
    v1::GenerateMacRequest {
        message: a.message.0,
        key_id: a.key.key_id,
        mac_algorithm: a.mac_algorithm.into(),
        grant_tokens: a.grant_tokens.grant_tokens,
        dry_run: dry(&a.dry_run),
    }
}

fn xks_credential(x: &XksArgs) -> Result<Option<v1::XksProxyAuthenticationCredential>, CliError> {
    let Some(map) = &x.xks_proxy_authentication_credential else { return Ok(None) };
    let get = |name: &str| map.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match (get("AccessKeyId"), get("RawSecretAccessKey")) {
        (Some(access_key_id), Some(raw_secret_access_key)) => {
            Ok(Some(v1::XksProxyAuthenticationCredential { access_key_id, raw_secret_access_key }))
        }
        _ => Err(CliError::Usage(
            "--xks-proxy-authentication-credential needs AccessKeyId=<id>,RawSecretAccessKey=<secret>".into(),
        )),
    }
}

/// Runs one command and returns what to print.
pub async fn run(client: &mut Client, command: Command, paginate: bool) -> Result<Json, CliError> {
    use Command as C;
    let json = match command {
        // ----- Key lifecycle -----
        C::CreateKey {
            policy,
            description,
            key_usage,
            customer_master_key_spec,
            key_spec,
            origin,
            custom_key_store_id,
            bypass,
            tags: t,
            multi_region,
            no_multi_region,
            xks_key_id,
        } => call!(
            client,
            "CreateKey",
            create_key,
            v1::CreateKeyRequest {
                policy,
                description,
                key_usage: enum_field(key_usage),
                customer_master_key_spec: enum_field(customer_master_key_spec),
                key_spec: enum_field(key_spec),
                origin: enum_field(origin),
                custom_key_store_id,
                bypass_policy_lockout_safety_check: flag(
                    bypass.bypass_policy_lockout_safety_check,
                    bypass.no_bypass_policy_lockout_safety_check
                ),
                tags: tags(t),
                multi_region: flag(multi_region, no_multi_region),
                xks_key_id,
                // kmsctl makes one attempt; the token is for clients that retry (kms-client).
                idempotency_token: None,
            }
        )
        .render(),
        C::DescribeKey { key, grant_tokens } => call!(
            client,
            "DescribeKey",
            describe_key,
            v1::DescribeKeyRequest { key_id: key.key_id, grant_tokens: grant_tokens.grant_tokens }
        )
        .render(),
        C::ListKeys { page } => list!(
            client,
            paginate,
            "ListKeys",
            list_keys,
            v1::ListKeysRequest { limit: page.limit, marker: page.marker },
            keys
        ),
        C::UpdateKeyDescription { key, description } => call!(
            client,
            "UpdateKeyDescription",
            update_key_description,
            v1::UpdateKeyDescriptionRequest { key_id: key.key_id, description }
        )
        .render(),
        C::EnableKey { key } => {
            call!(client, "EnableKey", enable_key, v1::EnableKeyRequest { key_id: key.key_id }).render()
        }
        C::DisableKey { key } => {
            call!(client, "DisableKey", disable_key, v1::DisableKeyRequest { key_id: key.key_id }).render()
        }
        C::ScheduleKeyDeletion { key, pending_window_in_days } => call!(
            client,
            "ScheduleKeyDeletion",
            schedule_key_deletion,
            v1::ScheduleKeyDeletionRequest { key_id: key.key_id, pending_window_in_days }
        )
        .render(),
        C::CancelKeyDeletion { key } => call!(
            client,
            "CancelKeyDeletion",
            cancel_key_deletion,
            v1::CancelKeyDeletionRequest { key_id: key.key_id }
        )
        .render(),
        C::GetKeyLastUsage { key } => call!(
            client,
            "GetKeyLastUsage",
            get_key_last_usage,
            v1::GetKeyLastUsageRequest { key_id: key.key_id }
        )
        .render(),

        // ----- Encryption and data keys -----
        C::Encrypt { key, plaintext, context, grant_tokens, encryption_algorithm, dry_run } => call!(
            client,
            "Encrypt",
            encrypt,
            v1::EncryptRequest {
                key_id: key.key_id,
                plaintext: plaintext.0,
                encryption_context: merge_maps(&context.encryption_context),
                grant_tokens: grant_tokens.grant_tokens,
                encryption_algorithm: enum_field(encryption_algorithm),
                dry_run: dry(&dry_run),
            }
        )
        .render(),
        C::Decrypt {
            ciphertext_blob,
            context,
            grant_tokens,
            key_id,
            encryption_algorithm,
            dry_run,
            dry_run_modifiers,
        } => call!(
            client,
            "Decrypt",
            decrypt,
            v1::DecryptRequest {
                ciphertext_blob: ciphertext_blob.0,
                encryption_context: merge_maps(&context.encryption_context),
                grant_tokens: grant_tokens.grant_tokens,
                key_id,
                encryption_algorithm: enum_field(encryption_algorithm),
                recipient: None,
                dry_run: dry(&dry_run),
                dry_run_modifiers: enums(dry_run_modifiers),
            }
        )
        .render(),
        C::ReEncrypt {
            ciphertext_blob,
            source_encryption_context,
            source_key_id,
            destination_key_id,
            destination_encryption_context,
            source_encryption_algorithm,
            destination_encryption_algorithm,
            grant_tokens,
            dry_run,
            dry_run_modifiers,
        } => call!(
            client,
            "ReEncrypt",
            re_encrypt,
            v1::ReEncryptRequest {
                ciphertext_blob: ciphertext_blob.0,
                source_encryption_context: merge_maps(&source_encryption_context),
                source_key_id,
                destination_key_id,
                destination_encryption_context: merge_maps(&destination_encryption_context),
                source_encryption_algorithm: enum_field(source_encryption_algorithm),
                destination_encryption_algorithm: enum_field(destination_encryption_algorithm),
                grant_tokens: grant_tokens.grant_tokens,
                dry_run: dry(&dry_run),
                dry_run_modifiers: enums(dry_run_modifiers),
            }
        )
        .render(),
        C::GenerateDataKey(a) => call!(client, "GenerateDataKey", generate_data_key, data_key(a)?).render(),
        C::GenerateDataKeyWithoutPlaintext(a) => {
            let r = data_key(a)?;
            call!(
                client,
                "GenerateDataKeyWithoutPlaintext",
                generate_data_key_without_plaintext,
                v1::GenerateDataKeyWithoutPlaintextRequest {
                    key_id: r.key_id,
                    encryption_context: r.encryption_context,
                    key_spec: r.key_spec,
                    number_of_bytes: r.number_of_bytes,
                    grant_tokens: r.grant_tokens,
                    dry_run: r.dry_run,
                }
            )
            .render()
        }
        C::GenerateDataKeyPair(a) => {
            call!(client, "GenerateDataKeyPair", generate_data_key_pair, data_key_pair(a)).render()
        }
        C::GenerateDataKeyPairWithoutPlaintext(a) => {
            let r = data_key_pair(a);
            call!(
                client,
                "GenerateDataKeyPairWithoutPlaintext",
                generate_data_key_pair_without_plaintext,
                v1::GenerateDataKeyPairWithoutPlaintextRequest {
                    encryption_context: r.encryption_context,
                    key_id: r.key_id,
                    key_pair_spec: r.key_pair_spec,
                    grant_tokens: r.grant_tokens,
                    dry_run: r.dry_run,
                }
            )
            .render()
        }

        // ----- Signing, MAC, public key, key agreement -----
        C::Sign(a) => call!(client, "Sign", sign, sign_request(a)).render(),
        C::Verify { sign, signature } => {
            let r = sign_request(sign);
            call!(
                client,
                "Verify",
                verify,
                v1::VerifyRequest {
                    key_id: r.key_id,
                    message: r.message,
                    message_type: r.message_type,
                    signature: signature.0,
                    signing_algorithm: r.signing_algorithm,
                    grant_tokens: r.grant_tokens,
                    dry_run: r.dry_run,
                }
            )
            .render()
        }
        C::GenerateMac(a) => call!(client, "GenerateMac", generate_mac, mac_request(a)).render(),
        C::VerifyMac { mac_args, mac } => {
            let r = mac_request(mac_args);
            call!(
                client,
                "VerifyMac",
                verify_mac,
                v1::VerifyMacRequest {
                    message: r.message,
                    key_id: r.key_id,
                    mac_algorithm: r.mac_algorithm,
                    mac: mac.0,
                    grant_tokens: r.grant_tokens,
                    dry_run: r.dry_run,
                }
            )
            .render()
        }
        C::GetPublicKey { key, grant_tokens } => call!(
            client,
            "GetPublicKey",
            get_public_key,
            v1::GetPublicKeyRequest { key_id: key.key_id, grant_tokens: grant_tokens.grant_tokens }
        )
        .render(),
        C::DeriveSharedSecret { key, key_agreement_algorithm, public_key, grant_tokens, dry_run } => call!(
            client,
            "DeriveSharedSecret",
            derive_shared_secret,
            v1::DeriveSharedSecretRequest {
                key_id: key.key_id,
                key_agreement_algorithm: key_agreement_algorithm.into(),
                public_key: public_key.0,
                grant_tokens: grant_tokens.grant_tokens,
                dry_run: dry(&dry_run),
                recipient: None,
            }
        )
        .render(),

        // ----- Randomness -----
        C::GenerateRandom { number_of_bytes, custom_key_store_id } => call!(
            client,
            "GenerateRandom",
            generate_random,
            v1::GenerateRandomRequest { number_of_bytes, custom_key_store_id, recipient: None }
        )
        .render(),

        // ----- Aliases -----
        C::CreateAlias(a) => call!(
            client,
            "CreateAlias",
            create_alias,
            v1::CreateAliasRequest { alias_name: a.alias_name, target_key_id: a.target_key_id }
        )
        .render(),
        C::UpdateAlias(a) => call!(
            client,
            "UpdateAlias",
            update_alias,
            v1::UpdateAliasRequest { alias_name: a.alias_name, target_key_id: a.target_key_id }
        )
        .render(),
        C::DeleteAlias { alias_name } => {
            call!(client, "DeleteAlias", delete_alias, v1::DeleteAliasRequest { alias_name }).render()
        }
        C::ListAliases { key_id, page } => list!(
            client,
            paginate,
            "ListAliases",
            list_aliases,
            v1::ListAliasesRequest { key_id, limit: page.limit, marker: page.marker },
            aliases
        ),

        // ----- Grants -----
        C::CreateGrant {
            key,
            grantee_principal,
            retiring_principal,
            operations,
            constraints,
            grant_tokens,
            name,
            dry_run,
            grantee_service_principal,
            retiring_service_principal,
        } => call!(
            client,
            "CreateGrant",
            create_grant,
            v1::CreateGrantRequest {
                key_id: key.key_id,
                grantee_principal,
                retiring_principal,
                operations: enums(operations),
                constraints,
                grant_tokens: grant_tokens.grant_tokens,
                name,
                dry_run: dry(&dry_run),
                grantee_service_principal,
                retiring_service_principal,
            }
        )
        .render(),
        C::ListGrants { page, key, grant_id, grantee_principal, grantee_service_principal } => {
            list!(
                client,
                paginate,
                "ListGrants",
                list_grants,
                v1::ListGrantsRequest {
                    limit: page.limit,
                    marker: page.marker,
                    key_id: key.key_id,
                    grant_id,
                    grantee_principal,
                    grantee_service_principal,
                },
                grants
            )
        }
        C::ListRetirableGrants { page, retiring_principal, retiring_service_principal } => {
            list!(
                client,
                paginate,
                "ListRetirableGrants",
                list_retirable_grants,
                v1::ListRetirableGrantsRequest {
                    limit: page.limit,
                    marker: page.marker,
                    retiring_principal,
                    retiring_service_principal,
                },
                grants
            )
        }
        C::RetireGrant { grant_token, key_id, grant_id, dry_run } => call!(
            client,
            "RetireGrant",
            retire_grant,
            v1::RetireGrantRequest { grant_token, key_id, grant_id, dry_run: dry(&dry_run) }
        )
        .render(),
        C::RevokeGrant { key, grant_id, dry_run } => call!(
            client,
            "RevokeGrant",
            revoke_grant,
            v1::RevokeGrantRequest { key_id: key.key_id, grant_id, dry_run: dry(&dry_run) }
        )
        .render(),

        // ----- Key policies -----
        C::GetKeyPolicy { key, policy_name } => call!(
            client,
            "GetKeyPolicy",
            get_key_policy,
            v1::GetKeyPolicyRequest { key_id: key.key_id, policy_name }
        )
        .render(),
        C::PutKeyPolicy { key, policy_name, policy, bypass } => call!(
            client,
            "PutKeyPolicy",
            put_key_policy,
            v1::PutKeyPolicyRequest {
                key_id: key.key_id,
                policy_name,
                policy,
                bypass_policy_lockout_safety_check: flag(
                    bypass.bypass_policy_lockout_safety_check,
                    bypass.no_bypass_policy_lockout_safety_check
                ),
            }
        )
        .render(),
        C::ListKeyPolicies { key, page } => {
            list!(
                client,
                paginate,
                "ListKeyPolicies",
                list_key_policies,
                v1::ListKeyPoliciesRequest { key_id: key.key_id, limit: page.limit, marker: page.marker },
                policy_names
            )
        }

        // ----- Tags -----
        C::TagResource { key, tags: t } => call!(
            client,
            "TagResource",
            tag_resource,
            v1::TagResourceRequest { key_id: key.key_id, tags: tags(t) }
        )
        .render(),
        C::UntagResource { key, tag_keys } => call!(
            client,
            "UntagResource",
            untag_resource,
            v1::UntagResourceRequest { key_id: key.key_id, tag_keys }
        )
        .render(),
        C::ListResourceTags { key, page } => {
            list!(
                client,
                paginate,
                "ListResourceTags",
                list_resource_tags,
                v1::ListResourceTagsRequest { key_id: key.key_id, limit: page.limit, marker: page.marker },
                tags
            )
        }

        // ----- Rotation -----
        C::EnableKeyRotation { key, rotation_period_in_days } => call!(
            client,
            "EnableKeyRotation",
            enable_key_rotation,
            v1::EnableKeyRotationRequest { key_id: key.key_id, rotation_period_in_days }
        )
        .render(),
        C::DisableKeyRotation { key } => call!(
            client,
            "DisableKeyRotation",
            disable_key_rotation,
            v1::DisableKeyRotationRequest { key_id: key.key_id }
        )
        .render(),
        C::GetKeyRotationStatus { key } => call!(
            client,
            "GetKeyRotationStatus",
            get_key_rotation_status,
            v1::GetKeyRotationStatusRequest { key_id: key.key_id }
        )
        .render(),
        C::RotateKeyOnDemand { key } => call!(
            client,
            "RotateKeyOnDemand",
            rotate_key_on_demand,
            v1::RotateKeyOnDemandRequest { key_id: key.key_id }
        )
        .render(),
        C::ListKeyRotations { key, include_key_material, page } => {
            list!(
                client,
                paginate,
                "ListKeyRotations",
                list_key_rotations,
                v1::ListKeyRotationsRequest {
                    key_id: key.key_id,
                    include_key_material: enum_field(include_key_material),
                    limit: page.limit,
                    marker: page.marker,
                },
                rotations
            )
        }

        // ----- Imported key material -----
        C::GetParametersForImport { key, wrapping_algorithm, wrapping_key_spec } => call!(
            client,
            "GetParametersForImport",
            get_parameters_for_import,
            v1::GetParametersForImportRequest {
                key_id: key.key_id,
                wrapping_algorithm: wrapping_algorithm.into(),
                wrapping_key_spec: wrapping_key_spec.into(),
            }
        )
        .render(),
        C::ImportKeyMaterial {
            key,
            import_token,
            encrypted_key_material,
            valid_to,
            expiration_model,
            import_type,
            key_material_description,
            key_material_id,
        } => call!(
            client,
            "ImportKeyMaterial",
            import_key_material,
            v1::ImportKeyMaterialRequest {
                key_id: key.key_id,
                import_token: import_token.0,
                encrypted_key_material: encrypted_key_material.0,
                valid_to,
                expiration_model: enum_field(expiration_model),
                import_type: enum_field(import_type),
                key_material_description,
                key_material_id,
            }
        )
        .render(),
        C::DeleteImportedKeyMaterial { key, key_material_id } => call!(
            client,
            "DeleteImportedKeyMaterial",
            delete_imported_key_material,
            v1::DeleteImportedKeyMaterialRequest { key_id: key.key_id, key_material_id }
        )
        .render(),

        // ----- Multi-Region keys -----
        C::ReplicateKey { key, replica_region, policy, bypass, description, tags: t } => call!(
            client,
            "ReplicateKey",
            replicate_key,
            v1::ReplicateKeyRequest {
                key_id: key.key_id,
                replica_region,
                policy,
                bypass_policy_lockout_safety_check: flag(
                    bypass.bypass_policy_lockout_safety_check,
                    bypass.no_bypass_policy_lockout_safety_check
                ),
                description,
                tags: tags(t),
            }
        )
        .render(),
        C::UpdatePrimaryRegion { key, primary_region, force } => call!(
            client,
            "UpdatePrimaryRegion",
            update_primary_region,
            v1::UpdatePrimaryRegionRequest {
                key_id: key.key_id,
                primary_region,
                force: force.then_some(true)
            }
        )
        .render(),

        // ----- Custom key stores -----
        C::CreateCustomKeyStore {
            custom_key_store_name,
            cloud_hsm_cluster_id,
            trust_anchor_certificate,
            key_store_password,
            custom_key_store_type,
            xks,
        } => {
            let credential = xks_credential(&xks)?;
            call!(
                client,
                "CreateCustomKeyStore",
                create_custom_key_store,
                v1::CreateCustomKeyStoreRequest {
                    custom_key_store_name,
                    cloud_hsm_cluster_id,
                    trust_anchor_certificate,
                    key_store_password,
                    custom_key_store_type: enum_field(custom_key_store_type),
                    xks_proxy_uri_endpoint: xks.xks_proxy_uri_endpoint,
                    xks_proxy_uri_path: xks.xks_proxy_uri_path,
                    xks_proxy_vpc_endpoint_service_name: xks.xks_proxy_vpc_endpoint_service_name,
                    xks_proxy_vpc_endpoint_service_owner: xks.xks_proxy_vpc_endpoint_service_owner,
                    xks_proxy_authentication_credential: credential,
                    xks_proxy_connectivity: enum_field(xks.xks_proxy_connectivity),
                }
            )
            .render()
        }
        C::DescribeCustomKeyStores { custom_key_store_id, custom_key_store_name, page } => {
            list!(
                client,
                paginate,
                "DescribeCustomKeyStores",
                describe_custom_key_stores,
                v1::DescribeCustomKeyStoresRequest {
                    custom_key_store_id,
                    custom_key_store_name,
                    limit: page.limit,
                    marker: page.marker,
                },
                custom_key_stores
            )
        }
        C::UpdateCustomKeyStore {
            store,
            new_custom_key_store_name,
            key_store_password,
            cloud_hsm_cluster_id,
            xks,
        } => {
            let credential = xks_credential(&xks)?;
            call!(
                client,
                "UpdateCustomKeyStore",
                update_custom_key_store,
                v1::UpdateCustomKeyStoreRequest {
                    custom_key_store_id: store.custom_key_store_id,
                    new_custom_key_store_name,
                    key_store_password,
                    cloud_hsm_cluster_id,
                    xks_proxy_uri_endpoint: xks.xks_proxy_uri_endpoint,
                    xks_proxy_uri_path: xks.xks_proxy_uri_path,
                    xks_proxy_vpc_endpoint_service_name: xks.xks_proxy_vpc_endpoint_service_name,
                    xks_proxy_vpc_endpoint_service_owner: xks.xks_proxy_vpc_endpoint_service_owner,
                    xks_proxy_authentication_credential: credential,
                    xks_proxy_connectivity: enum_field(xks.xks_proxy_connectivity),
                }
            )
            .render()
        }
        C::DeleteCustomKeyStore { store } => call!(
            client,
            "DeleteCustomKeyStore",
            delete_custom_key_store,
            v1::DeleteCustomKeyStoreRequest { custom_key_store_id: store.custom_key_store_id }
        )
        .render(),
        C::ConnectCustomKeyStore { store } => call!(
            client,
            "ConnectCustomKeyStore",
            connect_custom_key_store,
            v1::ConnectCustomKeyStoreRequest { custom_key_store_id: store.custom_key_store_id }
        )
        .render(),
        C::DisconnectCustomKeyStore { store } => call!(
            client,
            "DisconnectCustomKeyStore",
            disconnect_custom_key_store,
            v1::DisconnectCustomKeyStoreRequest { custom_key_store_id: store.custom_key_store_id }
        )
        .render(),
        // Not KMS operations: `main` runs them itself and never gets here.
        C::Cluster(_)
        | C::Ca(_)
        | C::Token(_)
        | C::Health
        | C::Audit(_)
        | C::EncryptFile(_)
        | C::DecryptFile(_) => {
            return Err(CliError::Usage("this command is not a KMS operation".to_string()));
        }
    };
    Ok(json)
}
