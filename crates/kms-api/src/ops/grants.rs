//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
//!
//! Who may do what (AWS's rules): CreateGrant needs kms:CreateGrant in the key policy, or a
//! grant with the CreateGrant operation whose operations and constraints cover the new grant.
//! ListGrants and RevokeGrant need the key policy. RetireGrant is for the grant's retiring
//! principal, its grantee when it includes the RetireGrant operation, or whoever the key policy
//! allows kms:RetireGrant. ListRetirableGrants names no key and is open to every caller.

use super::crypto::{check_grant_tokens, dry_run_gate};
use super::{page_end, page_limit};
use crate::authz::Authz;
use crate::caller::Caller;
use crate::convert::{enum_in, enum_out, timestamp};
use crate::kms::{Kms, crypto_error, replication_error};
use kms_core::command::{Command, CommandOutput};
use kms_core::grant::{
    GRANT_ID_BYTES, Grant, GrantConstraints, parse_grant_token, validate_grant_id, validate_name,
    validate_principal,
};
use kms_core::policy::{Action, Principal};
use kms_core::spec::GrantOperation;
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use kms_crypto::EncryptionContext;
use kms_proto::v1 as pb;

/// Service principals stand for AWS services, which never call this KMS.
fn no_service_principals(grantee: &Option<String>, retiring: &Option<String>) -> KmsResult<()> {
    if grantee.is_some() || retiring.is_some() {
        return Err(KmsError::unsupported(
            "service principals (GranteeServicePrincipal, RetiringServicePrincipal) are not supported \
             by this service; name the principal itself",
        ));
    }
    Ok(())
}

fn required<'a>(field: &str, value: &'a Option<String>) -> KmsResult<&'a str> {
    value.as_deref().ok_or_else(|| {
        KmsError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: \
             Member must not be null"
        ))
    })
}

/// The operations of a CreateGrant request, sorted and without repeats.
fn operations_in(raw: &[i32]) -> KmsResult<Vec<GrantOperation>> {
    let mut operations = Vec::with_capacity(raw.len());
    for value in raw {
        let operation = enum_in::<pb::GrantOperation, GrantOperation>("operations", *value)?
            .ok_or_else(|| KmsError::validation("Operations may not contain an unset value"))?;
        operations.push(operation);
    }
    operations.sort();
    operations.dedup();
    Ok(operations)
}

fn constraints_in(constraints: Option<pb::GrantConstraints>) -> KmsResult<GrantConstraints> {
    let Some(constraints) = constraints else {
        return Ok(GrantConstraints::default());
    };
    if !constraints.source_arn.is_empty() {
        return Err(KmsError::unsupported("the SourceArn grant constraint is not supported by this service"));
    }
    Ok(GrantConstraints {
        encryption_context_subset: constraints.encryption_context_subset.into_iter().collect(),
        encryption_context_equals: constraints.encryption_context_equals.into_iter().collect(),
    })
}

/// Whether two principal names name the same principal (a name and its ARN do).
fn same_principal(a: &str, b: &str, kms: &Kms) -> bool {
    a == b || Principal::from_name(a, &kms.scope).arn == Principal::from_name(b, &kms.scope).arn
}

/// One page of `grants` (sorted by `id_of`), starting at the grant whose id is `marker`.
fn page_of(
    grants: Vec<Grant>,
    marker: Option<&str>,
    limit: usize,
    id_of: impl Fn(&Grant) -> String,
) -> KmsResult<(Vec<Grant>, Option<String>)> {
    if marker.is_some_and(|m| m.is_empty() || m.len() > 1024) {
        return Err(KmsError::invalid_marker("marker is not one this service returned"));
    }
    let mut rest: Vec<Grant> =
        grants.into_iter().filter(|g| marker.is_none_or(|m| id_of(g).as_str() >= m)).collect();
    let next = rest.get(limit).map(&id_of);
    rest.truncate(limit);
    Ok((rest, next))
}

impl Kms {
    pub async fn create_grant(
        &self,
        caller: &Caller,
        req: pb::CreateGrantRequest,
    ) -> KmsResult<pb::CreateGrantResponse> {
        check_grant_tokens(&req.grant_tokens)?;
        no_service_principals(&req.grantee_service_principal, &req.retiring_service_principal)?;
        let grantee = required("granteePrincipal", &req.grantee_principal)?;
        validate_principal("granteePrincipal", grantee)?;
        if let Some(retiring) = &req.retiring_principal {
            validate_principal("retiringPrincipal", retiring)?;
        }
        if let Some(name) = &req.name {
            validate_name(name)?;
        }
        let operations = operations_in(&req.operations)?;
        let constraints = constraints_in(req.constraints)?;
        let key = self.key(&req.key_id, false).await?;
        let grant_id = kms_crypto::random_bytes(GRANT_ID_BYTES).map_err(crypto_error)?;
        let grant = Grant {
            grant_id: base16ct::lower::encode_string(grant_id.expose()),
            key_id: key.key_id.clone(),
            name: req.name,
            creation_date: self.now(),
            grantee_principal: grantee.to_string(),
            retiring_principal: req.retiring_principal,
            issuing_account: format!("arn:{}:iam::{}:root", self.scope.partition, self.scope.account),
            operations,
            constraints,
        };
        // kms:EncryptionContext:* of a CreateGrant request are the grant's constraints.
        let mut constrained: EncryptionContext = grant.constraints.encryption_context_subset.clone();
        constrained.extend(grant.constraints.encryption_context_equals.clone());
        let authz = Authz::new(caller, Action::CreateGrant)
            .tokens(&req.grant_tokens)
            .context(&constrained)
            .grant(&grant, &self.scope);
        self.authorize(&key, &authz).await?;
        key.check_usable()?;
        kms_core::grant::check_grant_terms(&key, &grant.operations, &grant.constraints)?;
        dry_run_gate(req.dry_run)?;
        let grant = match self.propose(Command::CreateGrant { grant }).await? {
            CommandOutput::Grant(grant) => *grant,
            other => {
                return Err(KmsError::internal(format!("state machine answered {other:?} to CreateGrant")));
            }
        };
        tracing::info!(key_id = %grant.key_id, grant_id = %grant.grant_id, "created grant");
        Ok(pb::CreateGrantResponse { grant_token: grant.token(), grant_id: grant.grant_id })
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        req: pb::ListGrantsRequest,
    ) -> KmsResult<pb::ListGrantsResponse> {
        let limit = page_limit(req.limit, 50, 100)?;
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::ListGrants)).await?;
        if let Some(grant_id) = &req.grant_id {
            validate_grant_id(grant_id)?;
        }
        if let Some(grantee) = &req.grantee_principal {
            validate_principal("granteePrincipal", grantee)?;
        }
        let grants: Vec<Grant> = Keys::new(&self.region.reader())
            .grants_of(&key.key_id)?
            .into_iter()
            .filter(|g| req.grant_id.as_ref().is_none_or(|id| *id == g.grant_id))
            .filter(|g| {
                req.grantee_principal.as_deref().is_none_or(|p| same_principal(p, &g.grantee_principal, self))
            })
            // No grant has a service principal (CreateGrant refuses them).
            .filter(|_| req.grantee_service_principal.is_none())
            .collect();
        let (page, next) = page_of(grants, req.marker.as_deref(), limit, |g| g.grant_id.clone())?;
        let (next_marker, truncated) = page_end(next);
        Ok(pb::ListGrantsResponse {
            grants: page.iter().map(|g| self.grant_entry(g)).collect(),
            next_marker,
            truncated,
        })
    }

    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        req: pb::ListRetirableGrantsRequest,
    ) -> KmsResult<pb::ListRetirableGrantsResponse> {
        self.authorize_without_key(caller, Action::ListRetirableGrants)?;
        let limit = page_limit(req.limit, 50, 100)?;
        no_service_principals(&None, &req.retiring_service_principal)?;
        let retiring = required("retiringPrincipal", &req.retiring_principal)?;
        validate_principal("retiringPrincipal", retiring)?;
        let principal = Principal::from_name(retiring, &self.scope);
        let grants: Vec<Grant> = Keys::new(&self.region.reader())
            .all_grants()?
            .into_iter()
            .filter(|g| {
                g.retiring_principal.as_deref().is_some_and(|r| principal.is_named_by(r, &self.scope))
            })
            .collect();
        let (page, next) =
            page_of(grants, req.marker.as_deref(), limit, |g| format!("{}/{}", g.key_id, g.grant_id))?;
        let (next_marker, truncated) = page_end(next);
        Ok(pb::ListRetirableGrantsResponse {
            grants: page.iter().map(|g| self.grant_entry(g)).collect(),
            next_marker,
            truncated,
        })
    }

    pub async fn retire_grant(
        &self,
        caller: &Caller,
        req: pb::RetireGrantRequest,
    ) -> KmsResult<pb::RetireGrantResponse> {
        let (key_id, grant_id) = match (req.grant_token, req.key_id, req.grant_id) {
            (Some(token), _, _) => {
                check_grant_tokens(std::slice::from_ref(&token))?;
                let named = parse_grant_token(&token)?;
                (named.key_id, named.grant_id)
            }
            (None, Some(key_id), Some(grant_id)) => {
                validate_grant_id(&grant_id)?;
                (key_id, grant_id)
            }
            _ => {
                return Err(KmsError::validation("RetireGrant needs a GrantToken, or a KeyId and a GrantId"));
            }
        };
        let key = self.key(&key_id, false).await?;
        let grant = self.existing_grant(&key.key_id, &grant_id).await?;
        if !grant.retirable_by(&self.principal(caller), &self.scope) {
            // A grant's RetireGrant operation lets its grantee retire that grant only.
            self.authorize(&key, &Authz::new(caller, Action::RetireGrant).policy_only()).await?;
        }
        dry_run_gate(req.dry_run)?;
        self.propose(Command::RetireGrant { key_id: key.key_id.clone(), grant_id }).await?;
        tracing::info!(key_id = %key.key_id, grant_id = %grant.grant_id, "retired grant");
        Ok(pb::RetireGrantResponse {})
    }

    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        req: pb::RevokeGrantRequest,
    ) -> KmsResult<pb::RevokeGrantResponse> {
        let key = self.key(&req.key_id, false).await?;
        self.authorize(&key, &Authz::new(caller, Action::RevokeGrant)).await?;
        validate_grant_id(&req.grant_id)?;
        self.existing_grant(&key.key_id, &req.grant_id).await?;
        dry_run_gate(req.dry_run)?;
        self.propose(Command::RevokeGrant { key_id: key.key_id.clone(), grant_id: req.grant_id.clone() })
            .await?;
        tracing::info!(key_id = %key.key_id, grant_id = %req.grant_id, "revoked grant");
        Ok(pb::RevokeGrantResponse {})
    }

    /// A grant of a key; a miss first catches up with the leader (it may have been created
    /// through another node a moment ago).
    async fn existing_grant(&self, key_id: &str, grant_id: &str) -> KmsResult<Grant> {
        let read = || Keys::new(&self.region.reader()).grant(key_id, grant_id);
        let grant = match read()? {
            Some(grant) => Some(grant),
            None => {
                self.region.sync_reads().await.map_err(replication_error)?;
                read()?
            }
        };
        grant
            .ok_or_else(|| KmsError::not_found(format!("Grant ID {grant_id} of key {key_id} does not exist")))
    }

    fn grant_entry(&self, grant: &Grant) -> pb::GrantListEntry {
        let constraints = &grant.constraints;
        pb::GrantListEntry {
            key_id: self.key_arn(&grant.key_id),
            grant_id: grant.grant_id.clone(),
            name: grant.name.clone().unwrap_or_default(),
            creation_date: Some(timestamp(grant.creation_date)),
            grantee_principal: grant.grantee_principal.clone(),
            retiring_principal: grant.retiring_principal.clone().unwrap_or_default(),
            issuing_account: grant.issuing_account.clone(),
            operations: grant.operations.iter().map(enum_out::<pb::GrantOperation>).collect(),
            constraints: (!constraints.is_empty()).then(|| pb::GrantConstraints {
                encryption_context_subset: constraints
                    .encryption_context_subset
                    .clone()
                    .into_iter()
                    .collect(),
                encryption_context_equals: constraints
                    .encryption_context_equals
                    .clone()
                    .into_iter()
                    .collect(),
                source_arn: String::new(),
            }),
            grantee_service_principal: String::new(),
            retiring_service_principal: String::new(),
        }
    }
}
