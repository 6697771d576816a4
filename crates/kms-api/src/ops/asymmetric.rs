//! Asymmetric operations: GetPublicKey, Sign, Verify, DeriveSharedSecret, GenerateDataKeyPair,
//! GenerateDataKeyPairWithoutPlaintext. (RSA Encrypt/Decrypt share the paths in `crypto.rs`.)

use super::crypto::{
    MAX_CIPHERTEXT, MAX_PLAINTEXT, check_blob_len, check_crypto_key, check_grant_tokens, context,
    crypto_authz, dry_run_gate,
};
use crate::authz::{Authz, wire_name};
use crate::caller::Caller;
use crate::convert::{enum_in, enum_out};
use crate::engine;
use crate::kms::{Kms, crypto_error};
use kms_core::key::KeyRecord;
use kms_core::policy::{Action, keys};
use kms_core::spec::{
    KeyAgreementAlgorithm, KeyAlgorithms, KeyFamily, KeySpec, KeyUsage, MessageType, SigningAlgorithm,
};
use kms_core::{KmsError, KmsResult};
use kms_crypto::asymmetric as asym;
use kms_crypto::{EncryptionContext, SecretBytes};
use kms_proto::v1 as pb;
use std::sync::Arc;

const MAX_PEER_PUBLIC_KEY: usize = 8192;

fn check_asymmetric(key: &KeyRecord, operation: &str) -> KmsResult<()> {
    if key.key_spec.family() != KeyFamily::Asymmetric {
        return Err(KmsError::unsupported(format!(
            "{operation} is supported only for asymmetric keys; key {} is {}",
            key.key_id, key.key_spec
        )));
    }
    Ok(())
}

/// The signing algorithm of a Sign/Verify request, which must be one the key offers.
fn signing_algorithm(key: &KeyRecord, raw: i32) -> KmsResult<SigningAlgorithm> {
    let algorithm = enum_in::<pb::SigningAlgorithmSpec, SigningAlgorithm>("signingAlgorithm", raw)?
        .ok_or_else(|| KmsError::validation("SigningAlgorithm is required"))?;
    if !KeyAlgorithms::for_key(key.key_spec, key.key_usage).signing.contains(&algorithm) {
        return Err(KmsError::invalid_key_usage(format!(
            "SigningAlgorithm {algorithm} is not valid for key {} ({})",
            key.key_id, key.key_spec
        )));
    }
    Ok(algorithm)
}

/// The message type (RAW by default) and message checks shared by Sign and Verify.
fn signing_input(algorithm: SigningAlgorithm, raw_type: i32, message: &[u8]) -> KmsResult<asym::MessageType> {
    check_blob_len("message", message, MAX_PLAINTEXT)?;
    let message_type =
        enum_in::<pb::MessageType, MessageType>("messageType", raw_type)?.unwrap_or(MessageType::Raw);
    let crypto_type = engine::message_type(message_type);
    if !engine::signing_algorithm(algorithm)?.message_types().contains(&crypto_type) {
        return Err(KmsError::validation(format!(
            "MessageType {message_type} is not valid with SigningAlgorithm {algorithm}"
        )));
    }
    Ok(crypto_type)
}

impl Kms {
    /// A key for an asymmetric operation, gated on authorization, state, usage and family.
    async fn asymmetric_key(
        &self,
        key_id: &str,
        usage: KeyUsage,
        authz: &Authz<'_>,
    ) -> KmsResult<Arc<KeyRecord>> {
        let operation = authz.operation();
        let key = self.key(key_id, true).await?;
        self.authorize(&key, authz).await?;
        // Usage first: AWS answers Sign with a symmetric key with InvalidKeyUsageException.
        check_crypto_key(&key, usage, operation)?;
        check_asymmetric(&key, operation)?;
        Ok(key)
    }

    pub async fn get_public_key(
        &self,
        caller: &Caller,
        req: pb::GetPublicKeyRequest,
    ) -> KmsResult<pb::GetPublicKeyResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let key = self.key(&req.key_id, true).await?;
        self.authorize(
            &key,
            &Authz::new(caller, Action::GetPublicKey).named(&req.key_id).tokens(&req.grant_tokens),
        )
        .await?;
        check_asymmetric(&key, "GetPublicKey")?;
        key.check_usable()?;
        // The same fields DescribeKey shows, so the two can never disagree.
        let metadata = self.metadata(&key);
        Ok(pb::GetPublicKeyResponse {
            key_id: metadata.arn,
            public_key: key.public_key.clone(),
            customer_master_key_spec: metadata.customer_master_key_spec,
            key_spec: metadata.key_spec,
            key_usage: metadata.key_usage,
            encryption_algorithms: metadata.encryption_algorithms,
            signing_algorithms: metadata.signing_algorithms,
            key_agreement_algorithms: metadata.key_agreement_algorithms,
        })
    }

    pub async fn sign(&self, caller: &Caller, req: pb::SignRequest) -> KmsResult<pb::SignResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let authz = signing_authz(
            caller,
            Action::Sign,
            &req.key_id,
            &req.grant_tokens,
            req.signing_algorithm,
            req.message_type,
        );
        let key = self.asymmetric_key(&req.key_id, KeyUsage::SignVerify, &authz).await?;
        let algorithm = signing_algorithm(&key, req.signing_algorithm)?;
        let message_type = signing_input(algorithm, req.message_type, &req.message)?;
        dry_run_gate(req.dry_run)?;
        let private = self.unsealed(&key, key.current_material()?)?;
        let crypto_algorithm = engine::signing_algorithm(algorithm)?;
        let signature =
            private.private()?.sign(crypto_algorithm, message_type, &req.message).map_err(crypto_error)?;
        self.record_use(&key, "Sign");
        Ok(pb::SignResponse {
            key_id: self.key_arn(&key.key_id),
            signature,
            signing_algorithm: enum_out::<pb::SigningAlgorithmSpec>(algorithm),
        })
    }

    pub async fn verify(&self, caller: &Caller, req: pb::VerifyRequest) -> KmsResult<pb::VerifyResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        check_blob_len("signature", &req.signature, MAX_CIPHERTEXT)?;
        let authz = signing_authz(
            caller,
            Action::Verify,
            &req.key_id,
            &req.grant_tokens,
            req.signing_algorithm,
            req.message_type,
        );
        let key = self.asymmetric_key(&req.key_id, KeyUsage::SignVerify, &authz).await?;
        let algorithm = signing_algorithm(&key, req.signing_algorithm)?;
        let message_type = signing_input(algorithm, req.message_type, &req.message)?;
        dry_run_gate(req.dry_run)?;
        let spec = engine::asymmetric_spec(key.key_spec)?;
        let crypto_algorithm = engine::signing_algorithm(algorithm)?;
        let valid =
            asym::verify(spec, &key.public_key, crypto_algorithm, message_type, &req.message, &req.signature)
                .map_err(crypto_error)?;
        if !valid {
            // AWS never answers SignatureValid=false: a bad signature is an exception.
            return Err(KmsError::invalid_signature(
                "the signature does not verify with this key and message",
            ));
        }
        self.record_use(&key, "Verify");
        Ok(pb::VerifyResponse {
            key_id: self.key_arn(&key.key_id),
            signature_valid: true,
            signing_algorithm: enum_out::<pb::SigningAlgorithmSpec>(algorithm),
        })
    }

    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        req: pb::DeriveSharedSecretRequest,
    ) -> KmsResult<pb::DeriveSharedSecretResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        if req.recipient.is_some() {
            return Err(KmsError::unsupported("Recipient (Nitro Enclaves attestation) is not supported"));
        }
        enum_in::<pb::KeyAgreementAlgorithmSpec, KeyAgreementAlgorithm>(
            "keyAgreementAlgorithm",
            req.key_agreement_algorithm,
        )?
        .ok_or_else(|| KmsError::validation("KeyAgreementAlgorithm is required"))?;
        check_blob_len("publicKey", &req.public_key, MAX_PEER_PUBLIC_KEY)?;
        let authz = Authz::new(caller, Action::DeriveSharedSecret)
            .named(req.key_id.as_str())
            .tokens(&req.grant_tokens)
            .condition(
                keys::KEY_AGREEMENT_ALGORITHM,
                wire_name::<pb::KeyAgreementAlgorithmSpec>(req.key_agreement_algorithm),
            );
        let key = self.asymmetric_key(&req.key_id, KeyUsage::KeyAgreement, &authz).await?;
        dry_run_gate(req.dry_run)?;
        let private = self.unsealed(&key, key.current_material()?)?;
        let secret = private.private()?.derive_shared_secret(&req.public_key).map_err(crypto_error)?;
        self.record_use(&key, "DeriveSharedSecret");
        Ok(pb::DeriveSharedSecretResponse {
            key_id: self.key_arn(&key.key_id),
            shared_secret: secret.expose().to_vec(),
            ciphertext_for_recipient: Vec::new(),
            key_agreement_algorithm: pb::KeyAgreementAlgorithmSpec::Ecdh.into(),
            key_origin: enum_out::<pb::OriginType>(key.origin),
        })
    }

    /// The shared body of GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh
    /// pair whose private half is encrypted under a symmetric KMS key.
    async fn data_key_pair(
        &self,
        key_id: &str,
        raw_spec: i32,
        ctx: &EncryptionContext,
        dry_run: Option<bool>,
        authz: Authz<'_>,
    ) -> KmsResult<(Arc<KeyRecord>, KeySpec, SecretBytes, Vec<u8>, Vec<u8>, String)> {
        let pair_spec = pb::DataKeyPairSpec::try_from(raw_spec)
            .ok()
            .and_then(|spec| spec.aws_name())
            .ok_or_else(|| KmsError::validation("KeyPairSpec is required"))?
            .parse::<KeySpec>()?;
        if !pair_spec.is_data_key_pair_spec() {
            return Err(KmsError::validation(format!("{pair_spec} is not a data key pair spec")));
        }
        let authz = authz.condition(keys::DATA_KEY_PAIR_SPEC, Some(pair_spec));
        let key = self.symmetric_encryption_key(key_id, &authz).await?;
        dry_run_gate(dry_run)?;
        let (private, public) = engine::generate_data_key_pair(pair_spec).await?;
        let (blob, material_id) = self.seal_blob(&key, ctx, private.expose())?;
        Ok((key, pair_spec, private, public, blob, material_id))
    }

    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        req: pb::GenerateDataKeyPairRequest,
    ) -> KmsResult<pb::GenerateDataKeyPairResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        if req.recipient.is_some() {
            return Err(KmsError::unsupported("Recipient (Nitro Enclaves attestation) is not supported"));
        }
        let ctx = context(req.encryption_context);
        let authz = crypto_authz(
            caller,
            Action::GenerateDataKeyPair,
            Some(req.key_id.as_str()),
            &ctx,
            &req.grant_tokens,
        );
        let (key, spec, private, public, blob, material_id) =
            self.data_key_pair(&req.key_id, req.key_pair_spec, &ctx, req.dry_run, authz).await?;
        self.record_use(&key, "GenerateDataKeyPair");
        Ok(pb::GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: blob,
            private_key_plaintext: private.expose().to_vec(),
            public_key: public,
            key_id: self.key_arn(&key.key_id),
            key_pair_spec: spec_number(spec),
            ciphertext_for_recipient: Vec::new(),
            key_material_id: material_id,
        })
    }

    pub async fn generate_data_key_pair_without_plaintext(
        &self,
        caller: &Caller,
        req: pb::GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> KmsResult<pb::GenerateDataKeyPairWithoutPlaintextResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        let ctx = context(req.encryption_context);
        let action = Action::GenerateDataKeyPairWithoutPlaintext;
        let authz = crypto_authz(caller, action, Some(req.key_id.as_str()), &ctx, &req.grant_tokens);
        let (key, spec, _, public, blob, material_id) =
            self.data_key_pair(&req.key_id, req.key_pair_spec, &ctx, req.dry_run, authz).await?;
        self.record_use(&key, "GenerateDataKeyPairWithoutPlaintext");
        Ok(pb::GenerateDataKeyPairWithoutPlaintextResponse {
            private_key_ciphertext_blob: blob,
            public_key: public,
            key_id: self.key_arn(&key.key_id),
            key_pair_spec: spec_number(spec),
            key_material_id: material_id,
        })
    }
}

/// Sign and Verify: the key as named, the grant tokens, and the signing algorithm and message
/// type (RAW when not given) as condition keys.
fn signing_authz<'a>(
    caller: &'a Caller,
    action: Action,
    key_id: &'a str,
    grant_tokens: &'a [String],
    algorithm: i32,
    message_type: i32,
) -> Authz<'a> {
    Authz::new(caller, action)
        .named(key_id)
        .tokens(grant_tokens)
        .condition(keys::SIGNING_ALGORITHM, wire_name::<pb::SigningAlgorithmSpec>(algorithm))
        .condition(keys::MESSAGE_TYPE, Some(wire_name::<pb::MessageType>(message_type).unwrap_or("RAW")))
}

fn spec_number(spec: KeySpec) -> i32 {
    pb::DataKeyPairSpec::from_aws_name(spec.as_str()).map_or(0, Into::into)
}
