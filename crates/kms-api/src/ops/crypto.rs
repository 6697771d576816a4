//! Symmetric cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, GenerateRandom, GenerateMac, VerifyMac.
//!
//! These are served from this node's applied state with no Raft round trip. Plaintext and
//! unsealed material live only in zeroizing buffers for the duration of one call.

use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::{enum_in, enum_out};
use crate::engine;
use crate::kms::{Kms, crypto_error};
use crate::unsealed::Unsealed;
use kms_core::key::KeyRecord;
use kms_core::policy::{Action, keys};
use kms_core::spec::{DataKeySpec, EncryptionAlgorithm, KeyAlgorithms, KeyFamily, KeyUsage, MacAlgorithm};
use kms_core::{ErrorKind, KmsError, KmsResult};
use kms_crypto::asymmetric as asym;
use kms_crypto::{BlobHeader, EncryptionContext, SecretBytes};
use kms_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const MAX_PLAINTEXT: usize = 4096;
pub(crate) const MAX_CIPHERTEXT: usize = 6144;
const MAX_GRANT_TOKENS: usize = 10;

pub(crate) fn check_blob_len(field: &str, value: &[u8], max: usize) -> KmsResult<()> {
    if value.is_empty() || value.len() > max {
        return Err(KmsError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member \
             must have length between 1 and {max}, inclusive (got {} bytes)",
            value.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_grant_tokens(tokens: &[String]) -> KmsResult<()> {
    if tokens.len() > MAX_GRANT_TOKENS || tokens.iter().any(|t| t.is_empty() || t.len() > 8192) {
        return Err(KmsError::validation(format!(
            "GrantTokens takes at most {MAX_GRANT_TOKENS} tokens of 1 to 8192 characters"
        )));
    }
    Ok(())
}

pub(crate) fn context(map: HashMap<String, String>) -> EncryptionContext {
    map.into_iter().collect()
}

/// AWS answers a successful dry run with an exception, so clients cannot mistake it for work done.
pub(crate) fn dry_run_gate(dry_run: Option<bool>) -> KmsResult<()> {
    if dry_run == Some(true) {
        return Err(KmsError::new(
            ErrorKind::DryRunOperationException,
            "The request would have succeeded, but the DryRun option is set.",
        ));
    }
    Ok(())
}

fn encryption_algorithm(field: &str, raw: i32) -> KmsResult<Option<EncryptionAlgorithm>> {
    enum_in::<pb::EncryptionAlgorithmSpec, EncryptionAlgorithm>(field, raw)
}

/// The state and usage gate of every cryptographic operation.
pub(crate) fn check_crypto_key(key: &KeyRecord, usage: KeyUsage, operation: &str) -> KmsResult<()> {
    key.check_usable()?;
    key.check_usage(usage, operation)
}

fn symmetric_algorithm(algorithm: Option<EncryptionAlgorithm>) -> KmsResult<()> {
    match algorithm {
        None | Some(EncryptionAlgorithm::SymmetricDefault) => Ok(()),
        Some(other) => Err(KmsError::invalid_key_usage(format!(
            "EncryptionAlgorithm {other} is not valid for a symmetric encryption key"
        ))),
    }
}

/// RSA keys: the algorithm is required and must be one the key offers; no encryption context.
fn asymmetric_algorithm(
    key: &KeyRecord,
    algorithm: Option<EncryptionAlgorithm>,
    context: &EncryptionContext,
) -> KmsResult<EncryptionAlgorithm> {
    if !context.is_empty() {
        return Err(KmsError::validation(format!(
            "EncryptionContext is not supported with asymmetric key {}",
            key.key_id
        )));
    }
    let allowed = KeyAlgorithms::for_key(key.key_spec, key.key_usage).encryption;
    match algorithm {
        Some(algorithm) if allowed.contains(&algorithm) => Ok(algorithm),
        Some(algorithm) => Err(KmsError::invalid_key_usage(format!(
            "EncryptionAlgorithm {algorithm} is not valid for key {} ({})",
            key.key_id, key.key_spec
        ))),
        None => Err(KmsError::validation(format!(
            "EncryptionAlgorithm is required for asymmetric key {} ({})",
            key.key_id, key.key_spec
        ))),
    }
}

impl Kms {
    /// A key the caller may use as `authz` asks and that may encrypt and decrypt right now.
    async fn encryption_key(
        &self,
        key_id: &str,
        operation: &str,
        authz: &Authz<'_>,
    ) -> KmsResult<Arc<KeyRecord>> {
        let key = self.key_for(key_id, authz.caller()).await?;
        self.authorize(&key, authz).await?;
        check_crypto_key(&key, KeyUsage::EncryptDecrypt, operation)?;
        Ok(key)
    }

    /// Encrypts `plaintext` under `key` with `algorithm` (AWS's rules: symmetric keys take
    /// SYMMETRIC_DEFAULT and an encryption context; RSA keys need an OAEP algorithm and take no
    /// context). Returns the ciphertext, the material id and the algorithm used. Shared by
    /// Encrypt and ReEncrypt.
    fn encrypt_with(
        &self,
        key: &KeyRecord,
        algorithm: Option<EncryptionAlgorithm>,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> KmsResult<(Vec<u8>, String, EncryptionAlgorithm)> {
        match key.key_spec.family() {
            KeyFamily::Asymmetric => {
                let algorithm = asymmetric_algorithm(key, algorithm, context)?;
                let rsa = engine::rsa_encryption_algorithm(algorithm)?;
                let ciphertext = asym::rsa_encrypt(&key.public_key, rsa, plaintext).map_err(crypto_error)?;
                Ok((ciphertext, key.current_material()?.material_id.clone(), algorithm))
            }
            _ => {
                symmetric_algorithm(algorithm)?;
                let (blob, material_id) = self.seal_blob(key, context, plaintext)?;
                Ok((blob, material_id, EncryptionAlgorithm::SymmetricDefault))
            }
        }
    }

    /// Decrypts `blob`: with the RSA key named by `key_id` when that is an asymmetric key,
    /// otherwise as a symmetric blob that names its own key, if `authz` allows the caller to use
    /// that key. Shared by Decrypt and ReEncrypt.
    async fn decrypt_with(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
        algorithm: Option<EncryptionAlgorithm>,
        operation: &str,
        authz: &Authz<'_>,
    ) -> KmsResult<(Arc<KeyRecord>, SecretBytes, String, EncryptionAlgorithm)> {
        check_blob_len("ciphertextBlob", blob, MAX_CIPHERTEXT)?;
        // The caller's key is read once and handed on, not looked up again by the blob path.
        let expected = match key_id {
            Some(key_id) => Some(self.key(key_id, true).await?),
            None => None,
        };
        match expected {
            Some(key) if key.key_spec.family() == KeyFamily::Asymmetric => {
                self.authorize(&key, authz).await?;
                self.decrypt_rsa(key, blob, context, algorithm, operation)
            }
            expected => {
                symmetric_algorithm(algorithm)?;
                let (key, plaintext, material_id) =
                    self.open_blob(blob, context, expected, operation, authz).await?;
                Ok((key, plaintext, material_id, EncryptionAlgorithm::SymmetricDefault))
            }
        }
    }

    /// Decrypts raw RSA-OAEP ciphertext with `key` (asymmetric ciphertext names no key).
    fn decrypt_rsa(
        &self,
        key: Arc<KeyRecord>,
        blob: &[u8],
        context: &EncryptionContext,
        algorithm: Option<EncryptionAlgorithm>,
        operation: &str,
    ) -> KmsResult<(Arc<KeyRecord>, SecretBytes, String, EncryptionAlgorithm)> {
        check_crypto_key(&key, KeyUsage::EncryptDecrypt, operation)?;
        let algorithm = asymmetric_algorithm(&key, algorithm, context)?;
        let material = key.current_material()?;
        let private = self.unsealed(&key, material)?;
        let rsa = engine::rsa_encryption_algorithm(algorithm)?;
        let plaintext = private.private()?.rsa_decrypt(rsa, blob).map_err(crypto_error)?;
        let material_id = material.material_id.clone();
        Ok((key, plaintext, material_id, algorithm))
    }

    /// A symmetric encryption key: data keys and data key pairs are only encrypted under these.
    pub(crate) async fn symmetric_encryption_key(
        &self,
        key_id: &str,
        authz: &Authz<'_>,
    ) -> KmsResult<Arc<KeyRecord>> {
        let operation = authz.operation();
        let key = self.encryption_key(key_id, operation, authz).await?;
        if key.key_spec.family() != KeyFamily::Symmetric {
            return Err(KmsError::invalid_key_usage(format!(
                "{operation} needs a symmetric encryption key; key {} is {}",
                key.key_id, key.key_spec
            )));
        }
        Ok(key)
    }

    /// Encrypts under the key's current material. Shared by Encrypt, ReEncrypt and data keys.
    pub(crate) fn seal_blob(
        &self,
        key: &KeyRecord,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> KmsResult<(Vec<u8>, String)> {
        let material = key.current_material()?;
        let unsealed = self.unsealed(key, material)?;
        let header = BlobHeader { key_id: key.key_id.clone(), material_version: material.version };
        let blob =
            kms_crypto::encrypt_blob(unsealed.aes()?, &header, context, plaintext).map_err(crypto_error)?;
        Ok((blob, material.material_id.clone()))
    }

    /// The key a blob names. A well-formed blob naming a key we do not have is reported, as AWS
    /// does, as an invalid ciphertext.
    async fn blob_key(&self, key_id: &str) -> KmsResult<Arc<KeyRecord>> {
        match self.key(key_id, false).await {
            Err(err) if err.kind == ErrorKind::NotFoundException => Err(KmsError::invalid_ciphertext(
                "ciphertext refers to a key that does not exist in this region",
            )),
            other => other,
        }
    }

    /// Finds the key a blob names, checks it against an expected key if the caller gave one,
    /// authorizes the caller on it, and decrypts. Shared by Decrypt and ReEncrypt.
    async fn open_blob(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        expected: Option<Arc<KeyRecord>>,
        operation: &str,
        authz: &Authz<'_>,
    ) -> KmsResult<(Arc<KeyRecord>, SecretBytes, String)> {
        let header = kms_crypto::parse_header(blob).map_err(crypto_error)?;
        let (key, expected) = match expected {
            Some(expected) if expected.key_id == header.key_id => (expected, None),
            expected => (self.blob_key(&header.key_id).await?, expected),
        };
        if let Some(expected) = expected {
            return Err(KmsError::incorrect_key(format!(
                "the ciphertext was not encrypted under key {}",
                expected.key_id
            )));
        }
        self.authorize(&key, authz).await?;
        check_crypto_key(&key, KeyUsage::EncryptDecrypt, operation)?;
        let mut failure =
            KmsError::invalid_ciphertext("ciphertext names key material this key does not have");
        // Usually one candidate; a multi-Region key may also hold divergent material under the
        // same version (see `KeyRecord::divergent_materials`).
        let mut opened = None;
        for material in key.decryption_materials(header.material_version) {
            let unsealed = self.unsealed(&key, material)?;
            match kms_crypto::decrypt_blob(unsealed.aes()?, blob, context) {
                Ok(plaintext) => {
                    opened = Some((plaintext, material.material_id.clone()));
                    break;
                }
                Err(err) => failure = crypto_error(err),
            }
        }
        let (plaintext, material_id) = opened.ok_or(failure)?;
        Ok((key, plaintext, material_id))
    }

    pub async fn encrypt(&self, caller: &Caller, req: pb::EncryptRequest) -> KmsResult<pb::EncryptResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        check_blob_len("plaintext", &req.plaintext, MAX_PLAINTEXT)?;
        let algorithm = encryption_algorithm("encryptionAlgorithm", req.encryption_algorithm)?;
        let ctx = context(req.encryption_context);
        let authz = crypto_authz(caller, Action::Encrypt, Some(req.key_id.as_str()), &ctx, &req.grant_tokens)
            .condition(keys::ENCRYPTION_ALGORITHM, Some(algorithm_name(algorithm)));
        let key = self.encryption_key(&req.key_id, "Encrypt", &authz).await?;
        let plaintext = SecretBytes::new(req.plaintext);
        let (blob, _, algorithm) = self.encrypt_with(&key, algorithm, &ctx, plaintext.expose())?;
        dry_run_gate(req.dry_run)?;
        self.record_use(&key, "Encrypt");
        Ok(pb::EncryptResponse {
            ciphertext_blob: blob,
            key_id: self.key_arn(&key.key_id),
            encryption_algorithm: enum_out::<pb::EncryptionAlgorithmSpec>(algorithm),
        })
    }

    pub async fn decrypt(&self, caller: &Caller, req: pb::DecryptRequest) -> KmsResult<pb::DecryptResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let algorithm = encryption_algorithm("encryptionAlgorithm", req.encryption_algorithm)?;
        if req.recipient.is_some() {
            return Err(KmsError::unsupported("Recipient (Nitro Enclaves attestation) is not supported"));
        }
        let ctx = context(req.encryption_context);
        let authz = crypto_authz(caller, Action::Decrypt, req.key_id.as_deref(), &ctx, &req.grant_tokens)
            .condition(keys::ENCRYPTION_ALGORITHM, Some(algorithm_name(algorithm)));
        let (key, plaintext, material_id, algorithm) = self
            .decrypt_with(&req.ciphertext_blob, &ctx, req.key_id.as_deref(), algorithm, "Decrypt", &authz)
            .await?;
        dry_run_gate(req.dry_run)?;
        self.record_use(&key, "Decrypt");
        Ok(pb::DecryptResponse {
            key_id: self.key_arn(&key.key_id),
            plaintext: plaintext.expose().to_vec(),
            encryption_algorithm: enum_out::<pb::EncryptionAlgorithmSpec>(algorithm),
            ciphertext_for_recipient: Vec::new(),
            key_material_id: material_id,
        })
    }

    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        req: pb::ReEncryptRequest,
    ) -> KmsResult<pb::ReEncryptResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let source_algorithm =
            encryption_algorithm("sourceEncryptionAlgorithm", req.source_encryption_algorithm)?;
        let destination_algorithm =
            encryption_algorithm("destinationEncryptionAlgorithm", req.destination_encryption_algorithm)?;
        let source_ctx = context(req.source_encryption_context);
        let destination_ctx = context(req.destination_encryption_context);
        let to = crypto_authz(
            caller,
            Action::ReEncryptTo,
            Some(req.destination_key_id.as_str()),
            &destination_ctx,
            &req.grant_tokens,
        )
        .condition(keys::ENCRYPTION_ALGORITHM, Some(algorithm_name(destination_algorithm)));
        let from = crypto_authz(
            caller,
            Action::ReEncryptFrom,
            req.source_key_id.as_deref(),
            &source_ctx,
            &req.grant_tokens,
        )
        .condition(keys::ENCRYPTION_ALGORITHM, Some(algorithm_name(source_algorithm)));
        let destination = self.encryption_key(&req.destination_key_id, "ReEncrypt", &to).await?;
        let (source, plaintext, source_material_id, source_algorithm) = self
            .decrypt_with(
                &req.ciphertext_blob,
                &source_ctx,
                req.source_key_id.as_deref(),
                source_algorithm,
                "ReEncrypt",
                &from,
            )
            .await?;
        let (blob, destination_material_id, destination_algorithm) =
            self.encrypt_with(&destination, destination_algorithm, &destination_ctx, plaintext.expose())?;
        dry_run_gate(req.dry_run)?;
        self.record_use(&source, "ReEncrypt");
        self.record_use(&destination, "ReEncrypt");
        Ok(pb::ReEncryptResponse {
            ciphertext_blob: blob,
            source_key_id: self.key_arn(&source.key_id),
            key_id: self.key_arn(&destination.key_id),
            source_encryption_algorithm: enum_out::<pb::EncryptionAlgorithmSpec>(source_algorithm),
            destination_encryption_algorithm: enum_out::<pb::EncryptionAlgorithmSpec>(destination_algorithm),
            source_key_material_id: source_material_id,
            destination_key_material_id: destination_material_id,
        })
    }

    /// The shared body of GenerateDataKey and GenerateDataKeyWithoutPlaintext.
    async fn data_key(
        &self,
        key_id: &str,
        key_spec: i32,
        number_of_bytes: Option<i32>,
        ctx: &EncryptionContext,
        dry_run: Option<bool>,
        authz: &Authz<'_>,
    ) -> KmsResult<(Arc<KeyRecord>, SecretBytes, Vec<u8>, String)> {
        let spec = enum_in::<pb::DataKeySpec, DataKeySpec>("KeySpec", key_spec)?;
        let len = match (spec, number_of_bytes) {
            (Some(_), Some(_)) => {
                return Err(KmsError::validation("specify either KeySpec or NumberOfBytes, not both"));
            }
            (None, None) => return Err(KmsError::validation("KeySpec or NumberOfBytes is required")),
            (Some(spec), None) => spec.byte_len(),
            (None, Some(n)) => random_len(n)?,
        };
        let key = self.symmetric_encryption_key(key_id, authz).await?;
        dry_run_gate(dry_run)?;
        let data_key = kms_crypto::random_bytes(len).map_err(crypto_error)?;
        let (blob, material_id) = self.seal_blob(&key, ctx, data_key.expose())?;
        Ok((key, data_key, blob, material_id))
    }

    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        req: pb::GenerateDataKeyRequest,
    ) -> KmsResult<pb::GenerateDataKeyResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        if req.recipient.is_some() {
            return Err(KmsError::unsupported("Recipient (Nitro Enclaves attestation) is not supported"));
        }
        let ctx = context(req.encryption_context);
        let authz =
            crypto_authz(caller, Action::GenerateDataKey, Some(req.key_id.as_str()), &ctx, &req.grant_tokens);
        let (key, data_key, blob, material_id) =
            self.data_key(&req.key_id, req.key_spec, req.number_of_bytes, &ctx, req.dry_run, &authz).await?;
        self.record_use(&key, "GenerateDataKey");
        Ok(pb::GenerateDataKeyResponse {
            ciphertext_blob: blob,
            plaintext: data_key.expose().to_vec(),
            key_id: self.key_arn(&key.key_id),
            ciphertext_for_recipient: Vec::new(),
            key_material_id: material_id,
        })
    }

    pub async fn generate_data_key_without_plaintext(
        &self,
        caller: &Caller,
        req: pb::GenerateDataKeyWithoutPlaintextRequest,
    ) -> KmsResult<pb::GenerateDataKeyWithoutPlaintextResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let ctx = context(req.encryption_context);
        let action = Action::GenerateDataKeyWithoutPlaintext;
        let authz = crypto_authz(caller, action, Some(req.key_id.as_str()), &ctx, &req.grant_tokens);
        let (key, _, blob, material_id) =
            self.data_key(&req.key_id, req.key_spec, req.number_of_bytes, &ctx, req.dry_run, &authz).await?;
        self.record_use(&key, "GenerateDataKeyWithoutPlaintext");
        Ok(pb::GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: blob,
            key_id: self.key_arn(&key.key_id),
            key_material_id: material_id,
        })
    }

    pub async fn generate_random(
        &self,
        caller: &Caller,
        req: pb::GenerateRandomRequest,
    ) -> KmsResult<pb::GenerateRandomResponse> {
        self.authorize_without_key(caller, Action::GenerateRandom)?;
        if req.custom_key_store_id.is_some() {
            return Err(KmsError::unsupported("custom key stores are not supported by this server"));
        }
        if req.recipient.is_some() {
            return Err(KmsError::unsupported("Recipient (Nitro Enclaves attestation) is not supported"));
        }
        let n = req.number_of_bytes.ok_or_else(|| KmsError::validation("NumberOfBytes is required"))?;
        let bytes = kms_crypto::random_bytes(random_len(n)?).map_err(crypto_error)?;
        Ok(pb::GenerateRandomResponse {
            plaintext: bytes.expose().to_vec(),
            ciphertext_for_recipient: Vec::new(),
        })
    }

    /// A key the caller may use as `authz` asks, that may compute MACs with `algorithm_raw`,
    /// and its unsealed material.
    async fn mac_key<'a>(
        &self,
        key_id: &'a str,
        algorithm_raw: i32,
        message: &[u8],
        authz: Authz<'a>,
    ) -> KmsResult<(Arc<KeyRecord>, MacAlgorithm, Arc<Unsealed>)> {
        check_blob_len("message", message, MAX_PLAINTEXT)?;
        let algorithm = enum_in::<pb::MacAlgorithmSpec, MacAlgorithm>("MacAlgorithm", algorithm_raw)?
            .ok_or_else(|| KmsError::validation("MacAlgorithm is required"))?;
        let key = self.key(key_id, true).await?;
        let authz = authz.named(key_id).condition(keys::MAC_ALGORITHM, Some(algorithm));
        self.authorize(&key, &authz).await?;
        check_crypto_key(&key, KeyUsage::GenerateVerifyMac, authz.operation())?;
        if key.key_spec.mac_algorithm() != Some(algorithm) {
            return Err(KmsError::invalid_key_usage(format!(
                "MacAlgorithm {algorithm} is not valid for key {} ({})",
                key.key_id, key.key_spec
            )));
        }
        let secret = self.unsealed(&key, key.current_material()?)?;
        Ok((key, algorithm, secret))
    }

    pub async fn generate_mac(
        &self,
        caller: &Caller,
        req: pb::GenerateMacRequest,
    ) -> KmsResult<pb::GenerateMacResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let authz = Authz::new(caller, Action::GenerateMac).tokens(&req.grant_tokens);
        let (key, algorithm, secret) =
            self.mac_key(&req.key_id, req.mac_algorithm, &req.message, authz).await?;
        dry_run_gate(req.dry_run)?;
        let mac =
            kms_crypto::generate_mac(engine::mac_algorithm(algorithm), secret.mac()?.expose(), &req.message);
        self.record_use(&key, "GenerateMac");
        Ok(pb::GenerateMacResponse {
            mac,
            mac_algorithm: enum_out::<pb::MacAlgorithmSpec>(algorithm),
            key_id: self.key_arn(&key.key_id),
        })
    }

    pub async fn verify_mac(
        &self,
        caller: &Caller,
        req: pb::VerifyMacRequest,
    ) -> KmsResult<pb::VerifyMacResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        check_blob_len("mac", &req.mac, MAX_CIPHERTEXT)?;
        let authz = Authz::new(caller, Action::VerifyMac).tokens(&req.grant_tokens);
        let (key, algorithm, secret) =
            self.mac_key(&req.key_id, req.mac_algorithm, &req.message, authz).await?;
        dry_run_gate(req.dry_run)?;
        let secret = secret.mac()?;
        if !kms_crypto::verify_mac(engine::mac_algorithm(algorithm), secret.expose(), &req.message, &req.mac)
        {
            return Err(KmsError::invalid_mac("the MAC does not match the message and key"));
        }
        self.record_use(&key, "VerifyMac");
        Ok(pb::VerifyMacResponse {
            key_id: self.key_arn(&key.key_id),
            mac_valid: true,
            mac_algorithm: enum_out::<pb::MacAlgorithmSpec>(algorithm),
        })
    }
}

/// The authorization question of a cryptographic operation on a symmetric key: the key as
/// named, the encryption context and the grant tokens.
pub(crate) fn crypto_authz<'a>(
    caller: &'a Caller,
    action: Action,
    key_ref: Option<&'a str>,
    ctx: &'a EncryptionContext,
    grant_tokens: &'a [String],
) -> Authz<'a> {
    Authz::new(caller, action).named_if(key_ref).context(ctx).tokens(grant_tokens)
}

/// `kms:EncryptionAlgorithm`: SYMMETRIC_DEFAULT when the request names none.
fn algorithm_name(algorithm: Option<EncryptionAlgorithm>) -> &'static str {
    algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault).as_str()
}

/// NumberOfBytes of GenerateDataKey and GenerateRandom: 1..=1024.
fn random_len(n: i32) -> KmsResult<usize> {
    if (1..=1024).contains(&n) {
        Ok(n as usize)
    } else {
        Err(KmsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy \
             constraint: Member must have value between 1 and 1024, inclusive"
        )))
    }
}
