//! Principals: who a request runs as, in the ARN terms policies speak, and the entries of a
//! statement's `Principal` element.
//!
//! Our principals are names (a certificate identity such as `spiffe://...` or `app1`, an AWS
//! endpoint credential's principal). A name that already is an ARN is its own ARN; any other name
//! `p` is the IAM user `arn:<partition>:iam::<account>:user/p` of the region's account.

use crate::error::{KmsError, KmsResult};
use crate::ids::RegionScope;

/// The identity a request is authorized as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN (`aws:PrincipalArn`).
    pub arn: String,
    /// The caller's account (`kms:CallerAccount`, `aws:PrincipalAccount`).
    pub account: String,
}

impl Principal {
    /// The principal a caller's name stands for in `scope`'s account.
    pub fn from_name(name: &str, scope: &RegionScope) -> Self {
        if name.starts_with("arn:") {
            let account = arn_account(name).filter(|a| !a.is_empty()).unwrap_or(&scope.account);
            Self { arn: name.to_string(), account: account.to_string() }
        } else {
            Self {
                arn: format!("arn:{}:iam::{}:user/{name}", scope.partition, scope.account),
                account: scope.account.clone(),
            }
        }
    }

    /// Whether `name` (a grantee or retiring principal as a grant stores it: a principal name,
    /// an ARN, an account id or an account's root ARN) names this principal. An account or its
    /// root stands for every principal of the account, as in policies.
    pub fn is_named_by(&self, name: &str, scope: &RegionScope) -> bool {
        match PrincipalPattern::from_grant_principal(name, scope) {
            PrincipalPattern::Account(account) => account == self.account,
            PrincipalPattern::Arn(arn) => arn == self.arn,
            PrincipalPattern::Everyone | PrincipalPattern::Service(_) => false,
        }
    }
}

/// The account field of an ARN (`arn:partition:service:region:account:resource`).
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The account whose root `arn` is (`arn:<partition>:iam::<account>:root`), if it is one.
fn root_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "iam", "", account, "root"] if is_account_id(account) => Some(account),
        _ => None,
    }
}

/// One entry of a statement's `Principal` / `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalPattern {
    /// `"*"` or `{"AWS": "*"}`: anyone.
    Everyone,
    /// An account id or its root ARN: every principal of that account.
    Account(String),
    /// One principal's ARN, matched exactly (AWS allows no wildcards here).
    Arn(String),
    /// A service principal (`{"Service": "..."}`). No AWS service calls this KMS, so it never
    /// matches a caller; it is accepted so that policies written for AWS still load.
    Service(String),
}

fn invalid_principal(entry: &str) -> KmsError {
    KmsError::malformed_policy(format!(
        "Policy contains a statement with one or more invalid principals: '{entry}' is neither \"*\", \
         a 12-digit account id nor an ARN without wildcards"
    ))
}

impl PrincipalPattern {
    /// An `AWS` principal entry: `*`, an account id, or an ARN without wildcards.
    pub(crate) fn parse_aws(entry: &str) -> KmsResult<Self> {
        if entry == "*" {
            return Ok(Self::Everyone);
        }
        if is_account_id(entry) {
            return Ok(Self::Account(entry.to_string()));
        }
        let parts: Vec<&str> = entry.splitn(6, ':').collect();
        let well_formed = matches!(parts[..], ["arn", partition, service, _, _, resource]
            if !partition.is_empty() && !service.is_empty() && !resource.is_empty());
        if !well_formed || entry.contains(['*', '?']) {
            return Err(invalid_principal(entry));
        }
        Ok(match root_account(entry) {
            Some(account) => Self::Account(account.to_string()),
            None => Self::Arn(entry.to_string()),
        })
    }

    /// A `Service` principal entry, e.g. `logs.amazonaws.com`.
    pub(crate) fn parse_service(entry: &str) -> KmsResult<Self> {
        let valid = !entry.is_empty()
            && entry.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(invalid_principal(entry));
        }
        Ok(Self::Service(entry.to_string()))
    }

    /// A grant's grantee or retiring principal, which may also be one of our principal names.
    fn from_grant_principal(name: &str, scope: &RegionScope) -> Self {
        if is_account_id(name) {
            return Self::Account(name.to_string());
        }
        match root_account(name) {
            Some(account) => Self::Account(account.to_string()),
            None => Self::Arn(Principal::from_name(name, scope).arn),
        }
    }

    pub(crate) fn matches(&self, principal: &Principal) -> bool {
        match self {
            Self::Everyone => true,
            Self::Account(account) => *account == principal.account,
            Self::Arn(arn) => *arn == principal.arn,
            Self::Service(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn scope() -> RegionScope {
        RegionScope::new("dev-1", "111122223333")
    }

    #[test]
    fn names_become_iam_users_of_the_account_and_arns_stay() {
        let alice = Principal::from_name("alice", &scope());
        assert_eq!(alice.arn, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(alice.account, "111122223333");
        let spiffe = Principal::from_name("spiffe://cluster/ns/a/sa/b", &scope());
        assert_eq!(spiffe.arn, "arn:aws:iam::111122223333:user/spiffe://cluster/ns/a/sa/b");
        let role = Principal::from_name("arn:aws:iam::444455556666:role/ops", &scope());
        assert_eq!(
            (role.arn.as_str(), role.account.as_str()),
            ("arn:aws:iam::444455556666:role/ops", "444455556666")
        );
    }

    #[test]
    fn policy_principals() {
        let alice = Principal::from_name("alice", &scope());
        let bob = Principal::from_name("bob", &scope());
        let root = PrincipalPattern::parse_aws("arn:aws:iam::111122223333:root").unwrap();
        assert_eq!(root, PrincipalPattern::Account("111122223333".into()));
        assert!(root.matches(&alice) && root.matches(&bob));
        let exact = PrincipalPattern::parse_aws("arn:aws:iam::111122223333:user/alice").unwrap();
        assert!(exact.matches(&alice) && !exact.matches(&bob));
        let other = PrincipalPattern::parse_aws("444455556666").unwrap();
        assert!(!other.matches(&alice));
        assert!(PrincipalPattern::parse_aws("*").unwrap().matches(&bob));
        for bad in ["alice", "arn:aws:iam::111122223333:user/*", "arn:aws", "12345", ""] {
            let err = PrincipalPattern::parse_aws(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException, "{bad}");
        }
        assert!(!PrincipalPattern::parse_service("logs.amazonaws.com").unwrap().matches(&alice));
    }

    #[test]
    fn grant_principals_accept_names_arns_and_accounts() {
        let s = scope();
        let alice = Principal::from_name("alice", &s);
        assert!(alice.is_named_by("alice", &s));
        assert!(alice.is_named_by("arn:aws:iam::111122223333:user/alice", &s));
        assert!(alice.is_named_by("111122223333", &s));
        assert!(alice.is_named_by("arn:aws:iam::111122223333:root", &s));
        assert!(!alice.is_named_by("bob", &s));
        assert!(!alice.is_named_by("444455556666", &s));
    }
}
