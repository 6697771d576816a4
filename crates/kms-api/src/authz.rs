//! Authorization: may this caller do this to this key?
//!
//! Every operation on a key asks [`Kms::authorize`] once it has resolved the key and before it
//! touches key material or proposes a change. The key policy decides first (AWS semantics: an
//! explicit deny wins, an allow allows, anything else is denied); a request the policy does not
//! allow may still be allowed by one of the key's grants. The answer to "no" is
//! AccessDeniedException, and the operation has changed nothing.
//!
//! Operations without a key (CreateKey, ListKeys, ListAliases, GenerateRandom,
//! ListRetirableGrants, the custom key store operations) are governed by IAM alone in AWS. This
//! service has no IAM, so every authenticated caller may call them ([`Kms::authorize_without_key`]).

use crate::caller::Caller;
use crate::derived_cache::DerivedCache;
use crate::kms::{Kms, replication_error};
use kms_core::grant::{Grant, GrantTokenRef, parse_grant_token};
use kms_core::ids::{KeyRef, RegionScope};
use kms_core::key::KeyRecord;
use kms_core::policy::{
    self, Action, Decision, PolicyDocument, Principal, Request, RequestContext, current_time, keys,
};
use kms_core::state::Keys;
use kms_core::{KmsError, KmsResult};
use kms_crypto::EncryptionContext;
use kms_proto::AwsEnum;
use std::sync::{Arc, OnceLock};

/// One authorization question: may `caller` perform `action`, with what the request offers as
/// condition keys and grant tokens.
pub(crate) struct Authz<'a> {
    caller: &'a Caller,
    action: Action,
    /// The KeyId as the caller gave it: an alias there is `kms:RequestAlias`.
    key_ref: Option<&'a str>,
    encryption_context: Option<&'a EncryptionContext>,
    grant_tokens: &'a [String],
    conditions: Vec<(String, String)>,
    /// CreateGrant: the grant asked for, which a grant-based permission must cover.
    new_grant: Option<&'a Grant>,
    /// False where grants must not count (RetireGrant: a grant's RetireGrant operation lets its
    /// grantee retire that grant only, which the operation checks itself).
    grants_count: bool,
}

impl<'a> Authz<'a> {
    pub(crate) fn new(caller: &'a Caller, action: Action) -> Self {
        Self {
            caller,
            action,
            key_ref: None,
            encryption_context: None,
            grant_tokens: &[],
            conditions: Vec::new(),
            new_grant: None,
            grants_count: true,
        }
    }

    /// The key as the request named it (an alias name or ARN becomes `kms:RequestAlias`).
    pub(crate) fn named(self, key_ref: &'a str) -> Self {
        self.named_if(Some(key_ref))
    }

    /// The key as the request named it, when it named one (Decrypt's KeyId is optional).
    pub(crate) fn named_if(mut self, key_ref: Option<&'a str>) -> Self {
        self.key_ref = key_ref;
        self
    }

    pub(crate) fn caller(&self) -> &'a Caller {
        self.caller
    }

    /// The operation name for messages (`Encrypt` for `kms:Encrypt`).
    pub(crate) fn operation(&self) -> &'static str {
        self.action.name().trim_start_matches("kms:")
    }

    /// The request's encryption context (`kms:EncryptionContext:*`, grant constraints).
    pub(crate) fn context(mut self, context: &'a EncryptionContext) -> Self {
        self.encryption_context = Some(context);
        self
    }

    pub(crate) fn tokens(mut self, grant_tokens: &'a [String]) -> Self {
        self.grant_tokens = grant_tokens;
        self
    }

    /// An operation-specific condition key (e.g. `kms:SigningAlgorithm`); `None` adds nothing.
    pub(crate) fn condition(mut self, key: &str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.conditions.push((key.to_string(), value.to_string()));
        }
        self
    }

    /// A tag the request sets (`aws:RequestTag/<key>`).
    pub(crate) fn tag(self, key: &str, value: &str) -> Self {
        self.condition(&format!("{}{key}", keys::REQUEST_TAG_PREFIX), Some(value))
    }

    /// CreateGrant's condition keys, and the grant a grant-based permission must cover.
    pub(crate) fn grant(mut self, grant: &'a Grant, scope: &RegionScope) -> Self {
        for operation in &grant.operations {
            self = self.condition(keys::GRANT_OPERATIONS, Some(operation));
        }
        let retiring = grant.retiring_principal.as_deref().map(|p| principal_condition(p, scope));
        self = self
            .condition(keys::GRANTEE_PRINCIPAL, Some(principal_condition(&grant.grantee_principal, scope)))
            .condition(keys::RETIRING_PRINCIPAL, retiring)
            .condition(keys::GRANT_IS_FOR_AWS_RESOURCE, Some(false));
        self.new_grant = Some(grant);
        self
    }

    /// Only the key policy decides.
    pub(crate) fn policy_only(mut self) -> Self {
        self.grants_count = false;
        self
    }
}

/// The AWS name of a request enum's raw value, for condition keys; `None` when unset or unknown.
pub(crate) fn wire_name<P: AwsEnum>(raw: i32) -> Option<&'static str> {
    P::try_from(raw).ok().and_then(AwsEnum::aws_name)
}

/// A grant's principal as policies name it: account ids and ARNs as given, names as ARNs.
fn principal_condition(name: &str, scope: &RegionScope) -> String {
    if name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.to_string()
    } else {
        Principal::from_name(name, scope).arn
    }
}

/// Parsed key policies, so a request does not parse its key's policy again. Entries are checked
/// against the stored text, so a changed policy is never answered from the cache.
pub(crate) struct PolicyCache {
    default: OnceLock<Arc<PolicyDocument>>,
    custom: DerivedCache<String, PolicyDocument>,
}

/// Keys with their own policy the cache holds at most (parsing a policy costs microseconds).
const MAX_CACHED_POLICIES: usize = 4096;

impl Default for PolicyCache {
    fn default() -> Self {
        Self { default: OnceLock::new(), custom: DerivedCache::new(MAX_CACHED_POLICIES) }
    }
}

impl PolicyCache {
    fn policy(&self, key: &KeyRecord, scope: &RegionScope) -> KmsResult<Arc<PolicyDocument>> {
        let Some(text) = &key.policy else {
            if let Some(default) = self.default.get() {
                return Ok(default.clone());
            }
            let default = Arc::new(PolicyDocument::parse(&policy::default_policy(scope))?);
            return Ok(self.default.get_or_init(|| default).clone());
        };
        // Stored policies were validated before they were stored; one that no longer parses is
        // our fault, not the caller's.
        self.custom.get_or_derive(key.key_id.as_str(), text.as_bytes(), || {
            PolicyDocument::parse(text).map_err(|err| {
                KmsError::internal(format!(
                    "the stored policy of key {} does not parse: {}",
                    key.key_id, err.message
                ))
            })
        })
    }
}

fn denied(principal: &Principal, action: Action, resource: &str, why: &str) -> KmsError {
    KmsError::access_denied(format!(
        "User: {} is not authorized to perform: {} on resource: {resource} {why}",
        principal.arn,
        action.name()
    ))
}

impl Kms {
    /// May the caller of `authz` perform its action on `key`? AccessDeniedException if not.
    pub(crate) async fn authorize(&self, key: &KeyRecord, authz: &Authz<'_>) -> KmsResult<()> {
        let tokens =
            authz.grant_tokens.iter().map(|t| parse_grant_token(t)).collect::<KmsResult<Vec<_>>>()?;
        let principal = self.principal(authz.caller);
        let policy = self.policies.policy(key, &self.scope)?;
        let why = match self.evaluate(&policy, &principal, key, authz) {
            Decision::Allow => return Ok(()),
            Decision::ExplicitDeny => "with an explicit deny in a resource-based policy".to_string(),
            Decision::ImplicitDeny => {
                if authz.grants_count && self.granted(&principal, key, authz, &tokens).await? {
                    return Ok(());
                }
                format!("because no resource-based policy allows the {} action", authz.action.name())
            }
        };
        tracing::debug!(
            principal = %principal.arn, action = %authz.action, key_id = %key.key_id, why, "access denied"
        );
        Err(denied(&principal, authz.action, &self.key_arn(&key.key_id), &why))
    }

    /// What `policy` says about the request `authz` describes on `key`.
    fn evaluate(
        &self,
        policy: &PolicyDocument,
        principal: &Principal,
        key: &KeyRecord,
        authz: &Authz<'_>,
    ) -> Decision {
        let resource = self.key_arn(&key.key_id);
        // A policy without conditions never reads the context, and building it costs a few
        // dozen allocations per request; the default key policy has none.
        let context = if policy.has_conditions() {
            self.request_context(principal, key, authz)
        } else {
            RequestContext::new()
        };
        policy.evaluate(&Request { principal, action: authz.action, resource: &resource, context: &context })
    }

    /// Operations without a key resource: AWS decides them by IAM policies alone, and this
    /// service has no IAM, so every authenticated caller may. Called anyway, so that every
    /// operation states its authorization in the same place.
    pub(crate) fn authorize_without_key(&self, _caller: &Caller, _action: Action) -> KmsResult<()> {
        Ok(())
    }

    pub(crate) fn principal(&self, caller: &Caller) -> Principal {
        Principal::from_name(&caller.principal, &self.scope)
    }

    /// Whether one of the key's grants allows the request. Grant tokens name grants this node
    /// may not have applied yet: then it first catches up with the leader.
    async fn granted(
        &self,
        principal: &Principal,
        key: &KeyRecord,
        authz: &Authz<'_>,
        tokens: &[GrantTokenRef],
    ) -> KmsResult<bool> {
        let read = || Keys::new(&self.region.reader()).grants_of(&key.key_id);
        let mut grants = read()?;
        let unseen =
            tokens.iter().any(|t| t.key_id == key.key_id && !grants.iter().any(|g| g.grant_id == t.grant_id));
        if unseen {
            self.region.sync_reads().await.map_err(replication_error)?;
            grants = read()?;
        }
        let empty = EncryptionContext::new();
        let context = authz.encryption_context.unwrap_or(&empty);
        Ok(grants.iter().any(|grant| {
            grant.allows(principal, &self.scope, authz.action, context)
                && authz.new_grant.is_none_or(|child| {
                    child.operations.iter().all(|op| grant.operations.contains(op))
                        && child.constraints.at_least_as_strict_as(&grant.constraints)
                })
        }))
    }

    /// The condition keys of a request: who asks and from where, the key's properties, and
    /// what the operation adds.
    fn request_context(&self, principal: &Principal, key: &KeyRecord, authz: &Authz<'_>) -> RequestContext {
        let mut context = RequestContext::new();
        let now = self.now();
        context
            .add(keys::CALLER_ACCOUNT, principal.account.as_str())
            .add(keys::PRINCIPAL_ACCOUNT, principal.account.as_str())
            .add(keys::PRINCIPAL_ARN, principal.arn.as_str())
            .add(keys::CURRENT_TIME, current_time(now))
            .add(keys::EPOCH_TIME, (now / 1000).to_string())
            .add(keys::KEY_SPEC, key.key_spec.as_str())
            .add(keys::KEY_USAGE, key.key_usage.as_str())
            .add(keys::KEY_ORIGIN, key.origin.as_str())
            .add(keys::KEY_MANAGER, key.key_manager.as_str())
            .add(keys::MULTI_REGION, key.multi_region.to_string());
        if let Some(source) = authz.caller.source {
            context.add(keys::SOURCE_IP, source.ip().to_string());
        }
        for (tag, value) in &key.tags {
            context.add(&format!("{}{tag}", keys::RESOURCE_TAG_PREFIX), value.as_str());
        }
        if let Some(KeyRef::Alias(alias_name)) =
            authz.key_ref.and_then(|r| self.scope.parse_key_ref(r, true).ok())
        {
            context.add(keys::REQUEST_ALIAS, alias_name);
        }
        if let Some(encryption_context) = authz.encryption_context {
            context.add_encryption_context(encryption_context);
        }
        for (key, value) in &authz.conditions {
            context.add(key, value.as_str());
        }
        context
    }

    /// A new key policy (CreateKey, PutKeyPolicy): valid, and unless the caller bypasses the
    /// lockout safety check, one under which this caller could still change the policy.
    pub(crate) fn check_new_policy(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        text: &str,
        bypass: bool,
    ) -> KmsResult<()> {
        if text.is_empty() {
            return Err(KmsError::validation("Policy must not be empty"));
        }
        let document = PolicyDocument::parse(text)?;
        if bypass {
            return Ok(());
        }
        let principal = self.principal(caller);
        let authz =
            Authz::new(caller, Action::PutKeyPolicy).condition(keys::BYPASS_LOCKOUT_CHECK, Some(false));
        if self.evaluate(&document, &principal, key, &authz) != Decision::Allow {
            return Err(KmsError::malformed_policy(format!(
                "The new key policy will not allow you to update the key policy in the future \
                 ({} could not call kms:PutKeyPolicy under it); set BypassPolicyLockoutSafetyCheck \
                 to apply it anyway",
                principal.arn
            )));
        }
        Ok(())
    }
}
