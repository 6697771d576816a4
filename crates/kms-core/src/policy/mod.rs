//! Key policies with AWS's policy semantics.
//!
//! A key policy is a JSON document of statements (Effect, Principal, Action, Resource,
//! Condition). [`PolicyDocument::parse`] validates one as AWS does; [`PolicyDocument::evaluate`]
//! decides a [`Request`]: an explicit deny wins, else an allow, else the request is denied. A key
//! without a policy of its own has AWS's default key policy for its account ([`default_policy`]),
//! which lets every principal of the account use and manage the key.

mod action;
mod condition;
mod context;
mod document;
mod principal;
mod time;
mod wildcard;

pub use action::Action;
pub use context::{RequestContext, keys};
pub use document::{Effect, PolicyDocument};
pub use principal::Principal;

use crate::ids::RegionScope;

/// The largest key policy (AWS's quota: 32 KiB).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// A key's one policy name.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched: nothing (no other statement, no grant) can allow it.
    ExplicitDeny,
    /// No statement allowed it; a grant still may.
    ImplicitDeny,
}

/// One request as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    /// The key's ARN.
    pub resource: &'a str,
    pub context: &'a RequestContext,
}

/// AWS's default key policy for keys of `scope`'s account, formatted as AWS returns it.
pub fn default_policy(scope: &RegionScope) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:{}:iam::{}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#,
        scope.partition, scope.account
    )
}

/// `aws:CurrentTime`'s text for a time in Unix milliseconds.
pub fn current_time(millis: u64) -> String {
    time::format_millis(millis)
}
