//! CreateKey's idempotency token (`IdempotencyToken`, not in AWS KMS): the API side. The state
//! machine decides (`kms_core::idempotency`); this turns a request into the claim it checks and
//! answers a retry from this node's applied state when it can, before any material is made.

use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::KmsResult;
use kms_core::idempotency::{self, CreateKeyToken};
use kms_core::key::KeyRecord;
use kms_proto::v1 as pb;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

impl Kms {
    /// The token claim of a CreateKey request, if it carries a token: validated, scoped to the
    /// caller, with a fingerprint of every other parameter.
    pub(super) fn create_key_token(
        &self,
        caller: &Caller,
        req: &pb::CreateKeyRequest,
    ) -> KmsResult<Option<CreateKeyToken>> {
        let Some(token) = &req.idempotency_token else { return Ok(None) };
        idempotency::validate_token(token)?;
        Ok(Some(CreateKeyToken {
            principal: caller.principal.clone(),
            token: token.clone(),
            fingerprint: parameters_fingerprint(req),
        }))
    }

    /// The key an earlier CreateKey with this token created, if this node has applied it (an
    /// error if the parameters differ). `None` proves nothing: the state machine checks again
    /// when the new key's command is applied, against the committed state.
    pub(super) fn key_created_with(&self, claim: &CreateKeyToken) -> KmsResult<Option<KeyRecord>> {
        let reader = self.region().reader();
        idempotency::find(&reader, claim, self.now())?
            .map(|record| idempotency::replay(&reader, claim, &record))
            .transpose()
    }
}

/// SHA-256 over the request's protobuf encoding without the token. prost encodes fields in
/// field-number order, so the same parameters give the same bytes; a client retrying sends the
/// very same request, so tags in another order count as other parameters.
fn parameters_fingerprint(req: &pb::CreateKeyRequest) -> String {
    let parameters = pb::CreateKeyRequest { idempotency_token: None, ..req.clone() };
    base16ct::lower::encode_string(&Sha256::digest(parameters.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_the_token_and_sees_every_parameter() {
        let request = pb::CreateKeyRequest {
            description: Some("app".into()),
            idempotency_token: Some("t-1".into()),
            ..Default::default()
        };
        let other_token = pb::CreateKeyRequest { idempotency_token: Some("t-2".into()), ..request.clone() };
        assert_eq!(parameters_fingerprint(&request), parameters_fingerprint(&other_token));
        let other_description = pb::CreateKeyRequest { description: Some("other".into()), ..request.clone() };
        assert_ne!(parameters_fingerprint(&request), parameters_fingerprint(&other_description));
        let multi_region = pb::CreateKeyRequest { multi_region: Some(true), ..request.clone() };
        assert_ne!(parameters_fingerprint(&request), parameters_fingerprint(&multi_region));
    }
}
