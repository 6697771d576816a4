//! The command line: `kmsctl [global flags] <command> [flags]`, with the command and flag names of
//! `aws kms`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use kms_proto::v1;

use crate::args::{Blob, StringMap, Tags, parse_blob, parse_enum, parse_string_map, parse_tags, parse_text};

#[derive(Debug, Parser)]
#[command(
    name = "kmsctl",
    version,
    about = "Command-line client for kms, with the commands and flags of `aws kms`",
    after_help = "Blob arguments take base64 text, fileb://<path> (raw bytes) or file://<path> (base64 text).\n\
                  Exit status: 0 ok, 252 bad usage, 254 the service returned an error, 255 other failures (e.g. no connection)."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: crate::connection::Connection,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Json)]
    pub output: Output,
    /// Print only part of the result: member names joined by dots, with [N] or [] on lists
    /// (a small subset of JMESPath), e.g. CiphertextBlob, KeyMetadata.Arn, Keys[].KeyId.
    #[arg(long, global = true)]
    pub query: Option<String>,
    /// List commands: fetch only the first page instead of following NextMarker.
    #[arg(long, global = true)]
    pub no_paginate: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Text,
}

#[derive(Debug, Args)]
pub struct KeyId {
    /// Key ID, key ARN, alias name (alias/...) or alias ARN.
    #[arg(long)]
    pub key_id: String,
}

#[derive(Debug, Args)]
pub struct GrantTokens {
    /// Grant tokens (up to 10).
    #[arg(long, num_args = 1..)]
    pub grant_tokens: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DryRun {
    /// Check the request and permissions without performing it (DryRunOperationException on success).
    #[arg(long, overrides_with = "no_dry_run")]
    pub dry_run: bool,
    #[arg(long, hide = true)]
    pub no_dry_run: bool,
}

#[derive(Debug, Args)]
pub struct Page {
    /// Page size; with --limit or --marker only one page is fetched.
    #[arg(long)]
    pub limit: Option<i32>,
    /// NextMarker of the previous page.
    #[arg(long)]
    pub marker: Option<String>,
}

#[derive(Debug, Args)]
pub struct Context {
    /// Encryption context: k=v,k2=v2 or a JSON object; may be repeated.
    #[arg(long, value_parser = parse_string_map)]
    pub encryption_context: Vec<StringMap>,
}

#[derive(Debug, Args)]
pub struct Bypass {
    /// Skip the check that the caller can still call PutKeyPolicy afterwards.
    #[arg(long, overrides_with = "no_bypass_policy_lockout_safety_check")]
    pub bypass_policy_lockout_safety_check: bool,
    #[arg(long, hide = true)]
    pub no_bypass_policy_lockout_safety_check: bool,
}

#[derive(Debug, Args)]
pub struct DataKeyArgs {
    #[command(flatten)]
    pub key: KeyId,
    #[command(flatten)]
    pub context: Context,
    /// Length of the data key in bytes (1-1024); exclusive with --key-spec.
    #[arg(long)]
    pub number_of_bytes: Option<i32>,
    /// AES_128 or AES_256.
    #[arg(long, value_parser = parse_enum::<v1::DataKeySpec>)]
    pub key_spec: Option<v1::DataKeySpec>,
    #[command(flatten)]
    pub grant_tokens: GrantTokens,
    #[command(flatten)]
    pub dry_run: DryRun,
}

#[derive(Debug, Args)]
pub struct DataKeyPairArgs {
    #[command(flatten)]
    pub context: Context,
    #[command(flatten)]
    pub key: KeyId,
    /// RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SM2, ECC_NIST_EDWARDS25519.
    #[arg(long, value_parser = parse_enum::<v1::DataKeyPairSpec>)]
    pub key_pair_spec: v1::DataKeyPairSpec,
    #[command(flatten)]
    pub grant_tokens: GrantTokens,
    #[command(flatten)]
    pub dry_run: DryRun,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub key: KeyId,
    /// Message or digest to sign/verify (blob).
    #[arg(long, value_parser = parse_blob)]
    pub message: Blob,
    /// RAW (default), DIGEST or EXTERNAL_MU.
    #[arg(long, value_parser = parse_enum::<v1::MessageType>)]
    pub message_type: Option<v1::MessageType>,
    #[command(flatten)]
    pub grant_tokens: GrantTokens,
    /// Signing algorithm, e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256.
    #[arg(long, value_parser = parse_enum::<v1::SigningAlgorithmSpec>)]
    pub signing_algorithm: v1::SigningAlgorithmSpec,
    #[command(flatten)]
    pub dry_run: DryRun,
}

#[derive(Debug, Args)]
pub struct MacArgs {
    /// Message to MAC (blob).
    #[arg(long, value_parser = parse_blob)]
    pub message: Blob,
    #[command(flatten)]
    pub key: KeyId,
    /// HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512.
    #[arg(long, value_parser = parse_enum::<v1::MacAlgorithmSpec>)]
    pub mac_algorithm: v1::MacAlgorithmSpec,
    #[command(flatten)]
    pub grant_tokens: GrantTokens,
    #[command(flatten)]
    pub dry_run: DryRun,
}

#[derive(Debug, Args)]
pub struct AliasArgs {
    /// Alias name, starting with alias/.
    #[arg(long)]
    pub alias_name: String,
    /// Key ID or key ARN the alias points at.
    #[arg(long)]
    pub target_key_id: String,
}

#[derive(Debug, Args)]
pub struct CustomKeyStoreId {
    #[arg(long)]
    pub custom_key_store_id: String,
}

#[derive(Debug, Args)]
pub struct XksArgs {
    #[arg(long)]
    pub xks_proxy_uri_endpoint: Option<String>,
    #[arg(long)]
    pub xks_proxy_uri_path: Option<String>,
    #[arg(long)]
    pub xks_proxy_vpc_endpoint_service_name: Option<String>,
    #[arg(long)]
    pub xks_proxy_vpc_endpoint_service_owner: Option<String>,
    /// AccessKeyId=<id>,RawSecretAccessKey=<secret> or JSON.
    #[arg(long, value_parser = parse_string_map)]
    pub xks_proxy_authentication_credential: Option<StringMap>,
    /// PUBLIC_ENDPOINT or VPC_ENDPOINT_SERVICE.
    #[arg(long, value_parser = parse_enum::<v1::XksProxyConnectivityType>)]
    pub xks_proxy_connectivity: Option<v1::XksProxyConnectivityType>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    // ----- Key lifecycle -----
    /// Create a KMS key (symmetric by default).
    CreateKey {
        /// Key policy (JSON text or file://policy.json).
        #[arg(long, value_parser = parse_text)]
        policy: Option<String>,
        /// Description (0-8192 characters).
        #[arg(long)]
        description: Option<String>,
        /// ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT.
        #[arg(long, value_parser = parse_enum::<v1::KeyUsage>)]
        key_usage: Option<v1::KeyUsage>,
        /// Deprecated; use --key-spec.
        #[arg(long, value_parser = parse_enum::<v1::CustomerMasterKeySpec>)]
        customer_master_key_spec: Option<v1::CustomerMasterKeySpec>,
        /// SYMMETRIC_DEFAULT (default), HMAC_*, RSA_*, ECC_*, ML_DSA_*, SM2.
        #[arg(long, value_parser = parse_enum::<v1::KeySpec>)]
        key_spec: Option<v1::KeySpec>,
        /// AWS_KMS (default), EXTERNAL, AWS_CLOUDHSM or EXTERNAL_KEY_STORE.
        #[arg(long, value_parser = parse_enum::<v1::OriginType>)]
        origin: Option<v1::OriginType>,
        #[arg(long)]
        custom_key_store_id: Option<String>,
        #[command(flatten)]
        bypass: Bypass,
        /// Tags: TagKey=k,TagValue=v ... or JSON.
        #[arg(long, num_args = 1.., value_parser = parse_tags)]
        tags: Vec<Tags>,
        /// Create a multi-Region primary key.
        #[arg(long, overrides_with = "no_multi_region")]
        multi_region: bool,
        #[arg(long)]
        no_multi_region: bool,
        #[arg(long)]
        xks_key_id: Option<String>,
    },
    /// Show a key's metadata.
    DescribeKey {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        grant_tokens: GrantTokens,
    },
    /// List the keys of the account and region.
    ListKeys {
        #[command(flatten)]
        page: Page,
    },
    /// Replace a key's description.
    UpdateKeyDescription {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        description: String,
    },
    /// Enable a key.
    EnableKey {
        #[command(flatten)]
        key: KeyId,
    },
    /// Disable a key.
    DisableKey {
        #[command(flatten)]
        key: KeyId,
    },
    /// Schedule a key's deletion after 7-30 days (default 30).
    ScheduleKeyDeletion {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        pending_window_in_days: Option<i32>,
    },
    /// Cancel a scheduled deletion (the key becomes Disabled).
    CancelKeyDeletion {
        #[command(flatten)]
        key: KeyId,
    },
    /// Show the last cryptographic use of a key.
    GetKeyLastUsage {
        #[command(flatten)]
        key: KeyId,
    },

    // ----- Encryption and data keys -----
    /// Encrypt up to 4096 bytes.
    Encrypt {
        #[command(flatten)]
        key: KeyId,
        /// Plaintext (blob: base64 text or fileb://<path>).
        #[arg(long, value_parser = parse_blob)]
        plaintext: Blob,
        #[command(flatten)]
        context: Context,
        #[command(flatten)]
        grant_tokens: GrantTokens,
        /// SYMMETRIC_DEFAULT (default), RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 or SM2PKE.
        #[arg(long, value_parser = parse_enum::<v1::EncryptionAlgorithmSpec>)]
        encryption_algorithm: Option<v1::EncryptionAlgorithmSpec>,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Decrypt a ciphertext.
    Decrypt {
        /// Ciphertext (blob: base64 text or fileb://<path>).
        #[arg(long, value_parser = parse_blob)]
        ciphertext_blob: Blob,
        #[command(flatten)]
        context: Context,
        #[command(flatten)]
        grant_tokens: GrantTokens,
        /// Required for asymmetric keys; recommended otherwise.
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long, value_parser = parse_enum::<v1::EncryptionAlgorithmSpec>)]
        encryption_algorithm: Option<v1::EncryptionAlgorithmSpec>,
        #[command(flatten)]
        dry_run: DryRun,
        /// IGNORE_CIPHERTEXT.
        #[arg(long, num_args = 1.., value_parser = parse_enum::<v1::DryRunModifierType>)]
        dry_run_modifiers: Vec<v1::DryRunModifierType>,
    },
    /// Decrypt and encrypt again under another key, inside the service.
    ReEncrypt {
        #[arg(long, value_parser = parse_blob)]
        ciphertext_blob: Blob,
        /// k=v,k2=v2 or JSON; may be repeated.
        #[arg(long, value_parser = parse_string_map)]
        source_encryption_context: Vec<StringMap>,
        #[arg(long)]
        source_key_id: Option<String>,
        #[arg(long)]
        destination_key_id: String,
        /// k=v,k2=v2 or JSON; may be repeated.
        #[arg(long, value_parser = parse_string_map)]
        destination_encryption_context: Vec<StringMap>,
        #[arg(long, value_parser = parse_enum::<v1::EncryptionAlgorithmSpec>)]
        source_encryption_algorithm: Option<v1::EncryptionAlgorithmSpec>,
        #[arg(long, value_parser = parse_enum::<v1::EncryptionAlgorithmSpec>)]
        destination_encryption_algorithm: Option<v1::EncryptionAlgorithmSpec>,
        #[command(flatten)]
        grant_tokens: GrantTokens,
        #[command(flatten)]
        dry_run: DryRun,
        #[arg(long, num_args = 1.., value_parser = parse_enum::<v1::DryRunModifierType>)]
        dry_run_modifiers: Vec<v1::DryRunModifierType>,
    },
    /// Generate a data key, returned in plaintext and encrypted.
    GenerateDataKey(DataKeyArgs),
    /// Generate a data key, returned only encrypted.
    GenerateDataKeyWithoutPlaintext(DataKeyArgs),
    /// Generate an asymmetric data key pair.
    GenerateDataKeyPair(DataKeyPairArgs),
    /// Generate an asymmetric data key pair without the plaintext private key.
    GenerateDataKeyPairWithoutPlaintext(DataKeyPairArgs),

    // ----- Signing, MAC, public key, key agreement -----
    /// Sign a message or digest with an asymmetric key.
    Sign(SignArgs),
    /// Verify a signature (an invalid signature is an error).
    Verify {
        #[command(flatten)]
        sign: SignArgs,
        /// Signature (blob).
        #[arg(long, value_parser = parse_blob)]
        signature: Blob,
    },
    /// Compute an HMAC.
    GenerateMac(MacArgs),
    /// Verify an HMAC (a mismatch is an error).
    VerifyMac {
        #[command(flatten)]
        mac_args: MacArgs,
        /// MAC to verify (blob).
        #[arg(long, value_parser = parse_blob)]
        mac: Blob,
    },
    /// Download the public key of an asymmetric key (DER SubjectPublicKeyInfo, base64).
    GetPublicKey {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        grant_tokens: GrantTokens,
    },
    /// Derive an ECDH shared secret with a KEY_AGREEMENT key.
    DeriveSharedSecret {
        #[command(flatten)]
        key: KeyId,
        /// ECDH.
        #[arg(long, value_parser = parse_enum::<v1::KeyAgreementAlgorithmSpec>)]
        key_agreement_algorithm: v1::KeyAgreementAlgorithmSpec,
        /// Peer public key, DER SubjectPublicKeyInfo (blob).
        #[arg(long, value_parser = parse_blob)]
        public_key: Blob,
        #[command(flatten)]
        grant_tokens: GrantTokens,
        #[command(flatten)]
        dry_run: DryRun,
    },

    // ----- Randomness -----
    /// Generate random bytes.
    GenerateRandom {
        /// 1-1024.
        #[arg(long)]
        number_of_bytes: Option<i32>,
        #[arg(long)]
        custom_key_store_id: Option<String>,
    },

    // ----- Aliases -----
    /// Create an alias for a key.
    CreateAlias(AliasArgs),
    /// Point an alias at another key.
    UpdateAlias(AliasArgs),
    /// Delete an alias.
    DeleteAlias {
        #[arg(long)]
        alias_name: String,
    },
    /// List aliases, optionally of one key.
    ListAliases {
        #[arg(long)]
        key_id: Option<String>,
        #[command(flatten)]
        page: Page,
    },

    // ----- Grants -----
    /// Create a grant on a key.
    CreateGrant {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        grantee_principal: Option<String>,
        #[arg(long)]
        retiring_principal: Option<String>,
        /// Operations, e.g. Encrypt Decrypt GenerateDataKey.
        #[arg(long, num_args = 1.., required = true, value_parser = parse_enum::<v1::GrantOperation>)]
        operations: Vec<v1::GrantOperation>,
        /// JSON: {"EncryptionContextSubset":{..}} or {"EncryptionContextEquals":{..}}, optional "SourceArn".
        #[arg(long, value_parser = crate::args::parse_constraints)]
        constraints: Option<v1::GrantConstraints>,
        #[command(flatten)]
        grant_tokens: GrantTokens,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        dry_run: DryRun,
        #[arg(long)]
        grantee_service_principal: Option<String>,
        #[arg(long)]
        retiring_service_principal: Option<String>,
    },
    /// List the grants of a key.
    ListGrants {
        #[command(flatten)]
        page: Page,
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        grant_id: Option<String>,
        #[arg(long)]
        grantee_principal: Option<String>,
        #[arg(long)]
        grantee_service_principal: Option<String>,
    },
    /// List the grants a principal may retire.
    ListRetirableGrants {
        #[command(flatten)]
        page: Page,
        #[arg(long)]
        retiring_principal: Option<String>,
        #[arg(long)]
        retiring_service_principal: Option<String>,
    },
    /// Retire a grant (by grant token, or key ID + grant ID).
    RetireGrant {
        #[arg(long)]
        grant_token: Option<String>,
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long)]
        grant_id: Option<String>,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Revoke a grant.
    RevokeGrant {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        grant_id: String,
        #[command(flatten)]
        dry_run: DryRun,
    },

    // ----- Key policies -----
    /// Print a key policy.
    GetKeyPolicy {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        policy_name: Option<String>,
    },
    /// Replace a key policy.
    PutKeyPolicy {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        policy_name: Option<String>,
        /// Policy document (JSON text or file://policy.json).
        #[arg(long, value_parser = parse_text)]
        policy: String,
        #[command(flatten)]
        bypass: Bypass,
    },
    /// List the policy names of a key.
    ListKeyPolicies {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        page: Page,
    },

    // ----- Tags -----
    /// Add or replace tags on a key.
    TagResource {
        #[command(flatten)]
        key: KeyId,
        /// TagKey=k,TagValue=v ... or JSON.
        #[arg(long, num_args = 1.., required = true, value_parser = parse_tags)]
        tags: Vec<Tags>,
    },
    /// Remove tags from a key.
    UntagResource {
        #[command(flatten)]
        key: KeyId,
        #[arg(long, num_args = 1.., required = true)]
        tag_keys: Vec<String>,
    },
    /// List the tags of a key.
    ListResourceTags {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        page: Page,
    },

    // ----- Rotation -----
    /// Enable automatic rotation (every 90-2560 days, default 365).
    EnableKeyRotation {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        rotation_period_in_days: Option<i32>,
    },
    /// Disable automatic rotation.
    DisableKeyRotation {
        #[command(flatten)]
        key: KeyId,
    },
    /// Show the rotation status of a key.
    GetKeyRotationStatus {
        #[command(flatten)]
        key: KeyId,
    },
    /// Rotate the key material now.
    RotateKeyOnDemand {
        #[command(flatten)]
        key: KeyId,
    },
    /// List the rotations of a key.
    ListKeyRotations {
        #[command(flatten)]
        key: KeyId,
        /// ALL_KEY_MATERIAL or ROTATIONS_ONLY.
        #[arg(long, value_parser = parse_enum::<v1::IncludeKeyMaterial>)]
        include_key_material: Option<v1::IncludeKeyMaterial>,
        #[command(flatten)]
        page: Page,
    },

    // ----- Imported key material -----
    /// Get a wrapping public key and import token for an EXTERNAL key.
    GetParametersForImport {
        #[command(flatten)]
        key: KeyId,
        #[arg(long, value_parser = parse_enum::<v1::AlgorithmSpec>)]
        wrapping_algorithm: v1::AlgorithmSpec,
        #[arg(long, value_parser = parse_enum::<v1::WrappingKeySpec>)]
        wrapping_key_spec: v1::WrappingKeySpec,
    },
    /// Import wrapped key material.
    ImportKeyMaterial {
        #[command(flatten)]
        key: KeyId,
        #[arg(long, value_parser = parse_blob)]
        import_token: Blob,
        #[arg(long, value_parser = parse_blob)]
        encrypted_key_material: Blob,
        /// RFC 3339 time (2030-01-01T00:00:00Z), a date (2030-01-01) or epoch seconds.
        #[arg(long, value_parser = crate::args::parse_timestamp)]
        valid_to: Option<prost_types::Timestamp>,
        #[arg(long, value_parser = parse_enum::<v1::ExpirationModelType>)]
        expiration_model: Option<v1::ExpirationModelType>,
        #[arg(long, value_parser = parse_enum::<v1::ImportType>)]
        import_type: Option<v1::ImportType>,
        #[arg(long)]
        key_material_description: Option<String>,
        #[arg(long)]
        key_material_id: Option<String>,
    },
    /// Delete imported key material.
    DeleteImportedKeyMaterial {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        key_material_id: Option<String>,
    },

    // ----- Multi-Region keys -----
    /// Replicate a multi-Region primary key into another region.
    ReplicateKey {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        replica_region: String,
        #[arg(long, value_parser = parse_text)]
        policy: Option<String>,
        #[command(flatten)]
        bypass: Bypass,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, num_args = 1.., value_parser = parse_tags)]
        tags: Vec<Tags>,
    },
    /// Make the replica in another region the primary key.
    UpdatePrimaryRegion {
        #[command(flatten)]
        key: KeyId,
        #[arg(long)]
        primary_region: String,
        /// Disaster recovery (not in AWS): send to the replica's own region while the primary's
        /// region is unreachable; that replica becomes the primary at once.
        #[arg(long)]
        force: bool,
    },

    // ----- Custom key stores -----
    /// Create a custom key store.
    CreateCustomKeyStore {
        #[arg(long)]
        custom_key_store_name: String,
        #[arg(long)]
        cloud_hsm_cluster_id: Option<String>,
        #[arg(long, value_parser = parse_text)]
        trust_anchor_certificate: Option<String>,
        #[arg(long)]
        key_store_password: Option<String>,
        /// AWS_CLOUDHSM or EXTERNAL_KEY_STORE.
        #[arg(long, value_parser = parse_enum::<v1::CustomKeyStoreType>)]
        custom_key_store_type: Option<v1::CustomKeyStoreType>,
        #[command(flatten)]
        xks: XksArgs,
    },
    /// Describe custom key stores.
    DescribeCustomKeyStores {
        #[arg(long)]
        custom_key_store_id: Option<String>,
        #[arg(long)]
        custom_key_store_name: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Change a custom key store.
    UpdateCustomKeyStore {
        #[command(flatten)]
        store: CustomKeyStoreId,
        #[arg(long)]
        new_custom_key_store_name: Option<String>,
        #[arg(long)]
        key_store_password: Option<String>,
        #[arg(long)]
        cloud_hsm_cluster_id: Option<String>,
        #[command(flatten)]
        xks: XksArgs,
    },
    /// Delete a custom key store.
    DeleteCustomKeyStore {
        #[command(flatten)]
        store: CustomKeyStoreId,
    },
    /// Connect a custom key store.
    ConnectCustomKeyStore {
        #[command(flatten)]
        store: CustomKeyStoreId,
    },
    /// Disconnect a custom key store.
    DisconnectCustomKeyStore {
        #[command(flatten)]
        store: CustomKeyStoreId,
    },

    // ----- Region administration (not an AWS command) -----
    /// Administer the region's Raft group: status, add-learner, promote, remove-node,
    /// transfer-leader.
    #[command(subcommand)]
    Cluster(crate::cluster::ClusterCommand),
    /// Make a certificate authority for a region and issue node and client certificates
    /// (development and small deployments; bring your own PKI otherwise).
    #[command(subcommand)]
    Ca(crate::credentials::CaCommand),
    /// Bearer tokens for kmsd's `[tokens]`.
    #[command(subcommand)]
    Token(crate::credentials::TokenCommand),
    /// Ask kmsd's gRPC health service whether it is serving (exit 0) or not (exit 255).
    Health,
    /// Check a kmsd audit log offline: `kmsctl audit verify <file>`.
    #[command(subcommand)]
    Audit(crate::audit::AuditCommand),

    // ----- Envelope encryption of files (not an AWS command) -----
    /// Encrypt a file or stream of any size under a KMS key: one data key from GenerateDataKey,
    /// AES-256-GCM in authenticated chunks (format: docs/envelope-format.md).
    EncryptFile(crate::envelope_files::EncryptFileArgs),
    /// Decrypt a file written by encrypt-file (one KMS Decrypt call); refuses a damaged,
    /// truncated or reordered file, and writes --out only once all of it has authenticated.
    DecryptFile(crate::envelope_files::DecryptFileArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kmsctl").chain(args.iter().copied()))
    }

    #[test]
    fn encrypt_flags() -> Result<(), clap::Error> {
        let cli = parse(&[
            "--endpoint",
            "http://10.0.0.1:9",
            "--output",
            "text",
            "encrypt",
            "--key-id",
            "alias/app",
            "--plaintext",
            "aGVsbG8=",
            "--encryption-context",
            "a=1,b=2",
            "--encryption-context",
            "c=3",
            "--dry-run",
        ])?;
        assert_eq!(cli.connection.endpoint, "http://10.0.0.1:9");
        assert_eq!(cli.output, Output::Text);
        let Command::Encrypt { key, plaintext, context, dry_run, .. } = cli.command else {
            panic!("expected encrypt");
        };
        assert_eq!(key.key_id, "alias/app");
        assert_eq!(plaintext.0, b"hello");
        assert_eq!(crate::args::merge_maps(&context.encryption_context).len(), 3);
        assert!(dry_run.dry_run);
        Ok(())
    }

    #[test]
    fn create_key_tags_and_enums() -> Result<(), clap::Error> {
        let cli = parse(&[
            "create-key",
            "--key-spec",
            "ECC_NIST_P256",
            "--key-usage",
            "SIGN_VERIFY",
            "--tags",
            "TagKey=a,TagValue=1",
            "TagKey=b,TagValue=2",
            "--no-multi-region",
        ])?;
        let Command::CreateKey { key_spec, key_usage, tags, multi_region, no_multi_region, .. } = cli.command
        else {
            panic!("expected create-key");
        };
        assert_eq!(key_spec, Some(v1::KeySpec::EccNistP256));
        assert_eq!(key_usage, Some(v1::KeyUsage::SignVerify));
        assert_eq!(tags.iter().map(|t| t.0.len()).sum::<usize>(), 2);
        assert_eq!(crate::args::flag(multi_region, no_multi_region), Some(false));
        Ok(())
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["encrypt", "--key-id", "k", "--plaintext", "***"]).is_err());
        assert!(parse(&["create-key", "--key-spec", "AES_999"]).is_err());
        assert!(parse(&["generate-data-key"]).is_err());
        assert!(parse(&["no-such-command"]).is_err());
    }

    #[test]
    fn default_endpoint_and_list_flags() -> Result<(), clap::Error> {
        // KMS_ENDPOINT may be set in the environment of whoever runs the tests.
        let cli = parse(&["list-keys", "--limit", "5"])?;
        if std::env::var_os("KMS_ENDPOINT").is_none() {
            assert_eq!(cli.connection.endpoint, crate::connection::DEFAULT_ENDPOINT);
        }
        assert!(matches!(cli.command, Command::ListKeys { page: Page { limit: Some(5), marker: None } }));
        Ok(())
    }
}
