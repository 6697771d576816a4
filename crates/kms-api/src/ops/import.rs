//! Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial, and the expiry of imported material the maintenance loop drives.
//!
//! The wrapping key pair's private half is sealed under the root key and replicated
//! (`Command::PutImportParameters`); the import token names it by a random id and is
//! authenticated under a key derived from the root key, bound to the key id and its expiry.
//! Unwrapped material is sealed like generated material before it is proposed, together with a
//! keyed fingerprint; the state machine refuses material whose fingerprint differs from the
//! first import's (IncorrectKeyMaterialException).

use crate::authz::{Authz, wire_name};
use crate::caller::Caller;
use crate::convert::{enum_in, timestamp};
use crate::kms::{Kms, crypto_error, replication_error};
use crate::ops::crypto::check_blob_len;
use base16ct::lower::encode_string as hex;
use kms_core::command::{Command, CommandOutput};
use kms_core::key::{
    IMPORT_PARAMETERS_VALIDITY_MILLIS, ImportParameters, KeyChange, MaterialImport, MaterialVersion,
};
use kms_core::policy::{Action, keys};
use kms_core::spec::{ExpirationModel, Origin, WrappingAlgorithm, WrappingKeySpec};
use kms_core::state::Keys;
use kms_core::{ErrorKind, KmsError, KmsResult};
use kms_crypto::asymmetric::AsymmetricKeySpec;
use kms_crypto::import as wrap;
use kms_proto::v1 as pb;

/// ImportToken and EncryptedKeyMaterial: 1 to 6144 bytes (§2.3).
const MAX_IMPORT_BLOB: usize = 6144;
/// ValidTo may be at most 365 days ahead.
const MAX_VALID_TO_MILLIS: u64 = 365 * kms_core::key::DAY_MILLIS;

fn wrapping_algorithm(algorithm: WrappingAlgorithm) -> KmsResult<wrap::WrappingAlgorithm> {
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 => Ok(wrap::WrappingAlgorithm::RsaesOaepSha1),
        WrappingAlgorithm::RsaesOaepSha256 => Ok(wrap::WrappingAlgorithm::RsaesOaepSha256),
        WrappingAlgorithm::RsaAesKeyWrapSha1 => Ok(wrap::WrappingAlgorithm::RsaAesKeyWrapSha1),
        WrappingAlgorithm::RsaAesKeyWrapSha256 => Ok(wrap::WrappingAlgorithm::RsaAesKeyWrapSha256),
        WrappingAlgorithm::RsaesPkcs1V15 => Err(KmsError::unsupported(
            "WrappingAlgorithm RSAES_PKCS1_V1_5 is deprecated and not supported by this server; \
             use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256",
        )),
        WrappingAlgorithm::Sm2pke => {
            Err(KmsError::unsupported("WrappingAlgorithm SM2PKE is not supported by this server"))
        }
    }
}

fn wrapping_key_spec(spec: WrappingKeySpec) -> KmsResult<AsymmetricKeySpec> {
    match spec {
        WrappingKeySpec::Rsa2048 => Ok(AsymmetricKeySpec::Rsa2048),
        WrappingKeySpec::Rsa3072 => Ok(AsymmetricKeySpec::Rsa3072),
        WrappingKeySpec::Rsa4096 => Ok(AsymmetricKeySpec::Rsa4096),
        WrappingKeySpec::Sm2 => {
            Err(KmsError::unsupported("WrappingKeySpec SM2 is not supported by this server"))
        }
    }
}

fn required<T>(field: &str, value: Option<T>) -> KmsResult<T> {
    value.ok_or_else(|| {
        KmsError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: \
             Member must not be null"
        ))
    })
}

fn millis(ts: &prost_types::Timestamp) -> KmsResult<u64> {
    let ms = ts.seconds.checked_mul(1000).and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)));
    ms.and_then(|ms| u64::try_from(ms).ok()).ok_or_else(|| KmsError::validation("ValidTo is out of range"))
}

fn invalid_token(key_id: &str) -> KmsError {
    KmsError::invalid_import_token(format!("the import token is not valid for key {key_id}"))
}

impl Kms {
    pub async fn get_parameters_for_import(
        &self,
        caller: &Caller,
        req: pb::GetParametersForImportRequest,
    ) -> KmsResult<pb::GetParametersForImportResponse> {
        let key = self.key(&req.key_id, false).await?;
        let authz = Authz::new(caller, Action::GetParametersForImport)
            .condition(keys::WRAPPING_ALGORITHM, wire_name::<pb::AlgorithmSpec>(req.wrapping_algorithm))
            .condition(keys::WRAPPING_KEY_SPEC, wire_name::<pb::WrappingKeySpec>(req.wrapping_key_spec));
        self.authorize(&key, &authz).await?;
        let algorithm = required(
            "wrappingAlgorithm",
            enum_in::<pb::AlgorithmSpec, WrappingAlgorithm>("WrappingAlgorithm", req.wrapping_algorithm)?,
        )?;
        let key_spec = required(
            "wrappingKeySpec",
            enum_in::<pb::WrappingKeySpec, WrappingKeySpec>("WrappingKeySpec", req.wrapping_key_spec)?,
        )?;
        key.check_importable("GetParametersForImport")?;
        wrapping_algorithm(algorithm)?;
        let rsa_spec = wrapping_key_spec(key_spec)?;

        // RSA generation takes up to seconds: off the async runtime.
        let (private, public) = tokio::task::spawn_blocking(move || {
            let private = kms_crypto::generate_private_key(rsa_spec)?;
            let public = kms_crypto::public_key_der(rsa_spec, private.expose())?;
            Ok((private, public))
        })
        .await
        .map_err(|err| KmsError::internal(format!("wrapping key generation task failed: {err}")))?
        .map_err(crypto_error)?;

        let token_id: [u8; wrap::TOKEN_ID_LEN] = kms_crypto::random_bytes(wrap::TOKEN_ID_LEN)
            .map_err(crypto_error)?
            .expose()
            .try_into()
            .map_err(|_| KmsError::internal("random token id has the wrong length"))?;
        let token_id_hex = hex(&token_id);
        let now = self.now();
        let valid_to = now + IMPORT_PARAMETERS_VALIDITY_MILLIS;
        let sealed_private_key =
            wrap::seal_wrapping_key(self.root_keys.active(), &key.key_id, &token_id_hex, private.expose())
                .map_err(crypto_error)?;
        let params = ImportParameters {
            key_id: key.key_id.clone(),
            token_id: token_id_hex,
            wrapping_algorithm: algorithm,
            wrapping_key_spec: key_spec,
            sealed_private_key,
            created: now,
            valid_to,
        };
        self.propose(Command::PutImportParameters { params, now }).await?;
        let token = wrap::seal_import_token(
            self.root_keys.active(),
            &key.key_id,
            &wrap::ImportToken { token_id, valid_to },
        );
        tracing::info!(key_id = %key.key_id, %algorithm, %key_spec, "issued import parameters");
        Ok(pb::GetParametersForImportResponse {
            key_id: self.key_arn(&key.key_id),
            import_token: token,
            public_key: public,
            parameters_valid_to: Some(timestamp(valid_to)),
        })
    }

    pub async fn import_key_material(
        &self,
        caller: &Caller,
        req: pb::ImportKeyMaterialRequest,
    ) -> KmsResult<pb::ImportKeyMaterialResponse> {
        let key = self.key(&req.key_id, false).await?;
        let model = wire_name::<pb::ExpirationModelType>(req.expiration_model);
        let authz = Authz::new(caller, Action::ImportKeyMaterial)
            .condition(keys::EXPIRATION_MODEL, Some(model.unwrap_or("KEY_MATERIAL_DOES_NOT_EXPIRE")));
        self.authorize(&key, &authz).await?;
        check_blob_len("importToken", &req.import_token, MAX_IMPORT_BLOB)?;
        check_blob_len("encryptedKeyMaterial", &req.encrypted_key_material, MAX_IMPORT_BLOB)?;
        let now = self.now();
        let model =
            enum_in::<pb::ExpirationModelType, ExpirationModel>("ExpirationModel", req.expiration_model)?
                .unwrap_or(ExpirationModel::KeyMaterialDoesNotExpire);
        let valid_to = match (model, req.valid_to.as_ref()) {
            (ExpirationModel::KeyMaterialExpires, Some(ts)) => {
                let valid_to = millis(ts)?;
                if valid_to <= now || valid_to > now + MAX_VALID_TO_MILLIS {
                    return Err(KmsError::validation(
                        "ValidTo must be in the future and at most 365 days ahead",
                    ));
                }
                Some(valid_to)
            }
            (ExpirationModel::KeyMaterialExpires, None) => {
                return Err(KmsError::validation("ExpirationModel KEY_MATERIAL_EXPIRES needs ValidTo"));
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
                return Err(KmsError::validation(
                    "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
                ));
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, None) => None,
        };
        if req.import_type == i32::from(pb::ImportType::NewKeyMaterial) && key.import.is_some() {
            return Err(KmsError::unsupported(
                "ImportType NEW_KEY_MATERIAL (rotation of imported material) is not supported by this \
                 server; import the key's existing material",
            ));
        }
        if let Some(material_id) = req.key_material_id.as_deref()
            && key.import.as_ref().is_some_and(|i| i.material_id != material_id)
        {
            return Err(KmsError::validation(format!(
                "KeyMaterialId {material_id} is not the key material of key {}",
                key.key_id
            )));
        }
        key.check_importable("ImportKeyMaterial")?;

        let token = wrap::open_import_token(&self.root_keys, &key.key_id, &req.import_token)
            .ok_or_else(|| invalid_token(&key.key_id))?;
        if token.valid_to <= now {
            return Err(KmsError::expired_import_token(format!(
                "the import token for key {} has expired; call GetParametersForImport again",
                key.key_id
            )));
        }
        let token_id = hex(&token.token_id);
        let params = match self.import_parameters(&key.key_id, &token_id).await? {
            Some(params) => params,
            None => return Err(invalid_token(&key.key_id)),
        };
        let algorithm = wrapping_algorithm(params.wrapping_algorithm)?;
        let rsa_spec = wrapping_key_spec(params.wrapping_key_spec)?;
        let private =
            wrap::unseal_wrapping_key(&self.root_keys, &key.key_id, &token_id, &params.sealed_private_key)
                .map_err(crypto_error)?;
        let wrapped = req.encrypted_key_material;
        let material = tokio::task::spawn_blocking(move || {
            wrap::unwrap_key_material(algorithm, rsa_spec, private.expose(), &wrapped)
        })
        .await
        .map_err(|err| KmsError::internal(format!("unwrapping task failed: {err}")))?
        .map_err(|err| match err {
            kms_crypto::CryptoError::InvalidCiphertext => KmsError::invalid_ciphertext(
                "the encrypted key material could not be unwrapped with these import parameters",
            ),
            other => crypto_error(other),
        })?;

        // Invariant: check_importable above refused specs without an importable length.
        let lengths = key.key_spec.importable_material_len().unwrap_or(0..=0);
        if !lengths.contains(&material.len()) {
            return Err(KmsError::incorrect_key_material(format!(
                "key material for a {} key must be {} to {} bytes long",
                key.key_spec,
                lengths.start(),
                lengths.end()
            )));
        }
        let fingerprint = self.import_fingerprint(&key, material.expose());
        // Imported keys hold one material, version 0: old ciphertexts name it, so re-importing
        // the same material makes them decrypt again.
        let sealed = kms_crypto::seal(self.root_keys.active(), &key.key_id, 0, material.expose())
            .map_err(crypto_error)?;
        let material_id = match &key.import {
            Some(import) => import.material_id.clone(),
            None => hex(kms_crypto::random_bytes(32).map_err(crypto_error)?.expose()),
        };
        let import = MaterialImport {
            material: MaterialVersion { version: 0, material_id, sealed, created: now, rotation_type: None },
            fingerprint,
            valid_to,
        };
        let command = Command::ImportKeyMaterial { key_id: key.key_id.clone(), token_id, import, now };
        let key = self.propose_key(command).await?;
        tracing::info!(key_id = %key.key_id, expires = valid_to.is_some(), "imported key material");
        Ok(pb::ImportKeyMaterialResponse {
            key_id: self.key_arn(&key.key_id),
            key_material_id: key.import.map(|i| i.material_id).unwrap_or_default(),
        })
    }

    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        req: pb::DeleteImportedKeyMaterialRequest,
    ) -> KmsResult<pb::DeleteImportedKeyMaterialResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::DeleteImportedKeyMaterial)).await?;
        if key.origin != Origin::External {
            return Err(KmsError::unsupported(format!(
                "DeleteImportedKeyMaterial needs a key with origin EXTERNAL; key {} has origin {}",
                key.key_id, key.origin
            )));
        }
        let material_id = key.import.as_ref().map(|i| i.material_id.clone()).unwrap_or_default();
        if let Some(requested) = req.key_material_id.as_deref()
            && requested != material_id
        {
            return Err(KmsError::not_found(format!(
                "key material {requested} does not exist for key {}",
                key.key_id
            )));
        }
        let key = self.apply_key_change(&key, KeyChange::DeleteImportedMaterial).await?;
        tracing::info!(key_id = %key.key_id, "deleted imported key material");
        Ok(pb::DeleteImportedKeyMaterialResponse {
            key_id: self.key_arn(&key.key_id),
            key_material_id: material_id,
        })
    }

    /// The parameters a token names; a miss first catches up with the leader (the parameters
    /// may have been issued through another node a moment ago).
    async fn import_parameters(&self, key_id: &str, token_id: &str) -> KmsResult<Option<ImportParameters>> {
        if let Some(params) = Keys::new(&self.region.reader()).import_parameters(key_id, token_id)? {
            return Ok(Some(params));
        }
        self.region.sync_reads().await.map_err(replication_error)?;
        Keys::new(&self.region.reader()).import_parameters(key_id, token_id)
    }

    /// The fingerprint of `material` for `key`: under the root key that fingerprinted the key's
    /// first import when the ring still holds it and the material is the same (so a re-import
    /// after a root key rotation is recognised), else under the active root key.
    fn import_fingerprint(&self, key: &kms_core::key::KeyRecord, material: &[u8]) -> Vec<u8> {
        use subtle::ConstantTimeEq as _;
        let under = |root| wrap::material_fingerprint(root, &key.key_id, material);
        let Some(import) = &key.import else { return under(self.root_keys.active()) };
        self.root_keys
            .keys()
            .map(under)
            .find(|candidate| bool::from(candidate.as_slice().ct_eq(&import.fingerprint)))
            .unwrap_or_else(|| under(self.root_keys.active()))
    }

    /// Deletes expired imported material (`material_expired`: a key's is) and import
    /// parameters, if any is due. Returns the keys whose material expired.
    pub(crate) async fn expire_imports(&self, material_expired: bool, now: u64) -> KmsResult<Vec<String>> {
        let due = material_expired
            || Keys::new(&self.region.reader()).all_import_parameters()?.iter().any(|p| p.valid_to <= now);
        if !due {
            return Ok(Vec::new());
        }
        match self.propose(Command::ExpireImports { now }).await? {
            CommandOutput::Expired(ids) => Ok(ids),
            other => Err(KmsError::new(
                ErrorKind::KMSInternalException,
                format!("state machine answered {other:?} to ExpireImports"),
            )),
        }
    }
}
