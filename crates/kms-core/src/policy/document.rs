//! The policy document: parsing and validating AWS's JSON grammar, and evaluating a request
//! against it (an explicit deny wins over an allow, and nothing allowed is denied).

use super::condition::{self, Condition};
use super::principal::PrincipalPattern;
use super::wildcard;
use super::{Decision, MAX_POLICY_BYTES, Request};
use crate::error::{KmsError, KmsResult};
use serde_json::{Map, Value};

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list from a `X` or `NotX` element: the statement applies when an entry matches (`X`) or
/// when none does (`NotX`).
#[derive(Debug, Clone, PartialEq)]
struct Entries<T> {
    items: Vec<T>,
    negated: bool,
}

impl<T> Entries<T> {
    fn applies(&self, matches: impl Fn(&T) -> bool) -> bool {
        self.items.iter().any(matches) != self.negated
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    principals: Entries<PrincipalPattern>,
    /// Lower-cased patterns: action names are case-insensitive.
    actions: Entries<String>,
    resources: Entries<String>,
    conditions: Vec<Condition>,
}

/// A parsed, valid key policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

fn malformed(message: impl Into<String>) -> KmsError {
    KmsError::malformed_policy(message)
}

const TOP_LEVEL: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl PolicyDocument {
    /// Parses and validates a policy document. Too long: LimitExceededException; anything
    /// else wrong: MalformedPolicyDocumentException saying what.
    pub fn parse(text: &str) -> KmsResult<Self> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(KmsError::limit_exceeded(format!(
                "the key policy is {} bytes; a key policy may have at most {MAX_POLICY_BYTES} bytes",
                text.len()
            )));
        }
        let json: Value = serde_json::from_str(text)
            .map_err(|err| malformed(format!("the policy is not valid JSON: {err}")))?;
        let Value::Object(top) = json else {
            return Err(malformed("the policy must be a JSON object"));
        };
        check_elements(&top, TOP_LEVEL, "the policy")?;
        match top.get("Version") {
            None => {}
            Some(Value::String(version)) if version == "2012-10-17" || version == "2008-10-17" => {}
            Some(other) => {
                return Err(malformed(format!("Version {other} is not 2012-10-17 or 2008-10-17")));
            }
        }
        if top.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(malformed("Id must be a string"));
        }
        let statements = match top.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            _ => {
                return Err(malformed("the policy needs a Statement: an object or a non-empty list of them"));
            }
        };
        let statements =
            statements.iter().enumerate().map(|(i, s)| parse_statement(i, s)).collect::<KmsResult<_>>()?;
        Ok(Self { statements })
    }

    /// Whether any statement has a condition, and so reads the request's context.
    pub fn has_conditions(&self) -> bool {
        self.statements.iter().any(|statement| !statement.conditions.is_empty())
    }

    /// Evaluates `request`: a matching Deny statement denies explicitly, else a matching Allow
    /// allows, else the request is implicitly denied.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let action = request.action.name().to_ascii_lowercase();
        let mut allowed = false;
        for statement in &self.statements {
            if statement.applies(request, &action) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed { Decision::Allow } else { Decision::ImplicitDeny }
    }
}

impl Statement {
    fn applies(&self, request: &Request<'_>, action: &str) -> bool {
        self.principals.applies(|p| p.matches(request.principal))
            && self.actions.applies(|pattern| wildcard::matches(pattern, action))
            && self.resources.applies(|pattern| wildcard::matches(pattern, request.resource))
            && self.conditions.iter().all(|c| c.matches(request.context))
    }
}

fn check_elements(object: &Map<String, Value>, allowed: &[&str], what: &str) -> KmsResult<()> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(unknown) => Err(malformed(format!("{what} has an unknown element '{unknown}'"))),
        None => Ok(()),
    }
}

/// Exactly one of `X` and `NotX`.
fn one_of<'a>(
    statement: &'a Map<String, Value>,
    name: &str,
    negated_name: &str,
    what: &str,
) -> KmsResult<(&'a Value, bool)> {
    match (statement.get(name), statement.get(negated_name)) {
        (Some(value), None) => Ok((value, false)),
        (None, Some(value)) => Ok((value, true)),
        (Some(_), Some(_)) => Err(malformed(format!("{what} has both {name} and {negated_name}"))),
        (None, None) => Err(malformed(format!("{what} needs {name} or {negated_name}"))),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, element: &str, what: &str) -> KmsResult<Vec<String>> {
    let invalid = || malformed(format!("{what}: {element} must be a string or a non-empty list of strings"));
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(list) if !list.is_empty() => {
            list.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(invalid)).collect()
        }
        _ => Err(invalid()),
    }
}

fn parse_statement(index: usize, value: &Value) -> KmsResult<Statement> {
    let Value::Object(statement) = value else {
        return Err(malformed(format!("statement {} is not a JSON object", index + 1)));
    };
    let what = match statement.get("Sid") {
        None => format!("statement {}", index + 1),
        Some(Value::String(sid)) => format!("statement {} ({sid})", index + 1),
        Some(_) => return Err(malformed(format!("statement {}: Sid must be a string", index + 1))),
    };
    check_elements(statement, STATEMENT_ELEMENTS, &what)?;
    let effect = match statement.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(malformed(format!("{what}: Effect must be \"Allow\" or \"Deny\""))),
    };
    let (principal, negated) = one_of(statement, "Principal", "NotPrincipal", &what)?;
    let principals = Entries { items: principals(principal, &what)?, negated };
    let (action, negated) = one_of(statement, "Action", "NotAction", &what)?;
    let actions = strings(action, "Action", &what)?
        .iter()
        .map(|a| action_pattern(a, &what))
        .collect::<KmsResult<_>>()?;
    let (resource, negated_resource) = one_of(statement, "Resource", "NotResource", &what)?;
    let resources = strings(resource, "Resource", &what)?
        .into_iter()
        .map(|r| resource_pattern(r, &what))
        .collect::<KmsResult<_>>()?;
    let conditions = match statement.get("Condition") {
        Some(block) => {
            condition::parse_block(block).map_err(|err| malformed(format!("{what}: {}", err.message)))?
        }
        None => Vec::new(),
    };
    Ok(Statement {
        effect,
        principals,
        actions: Entries { items: actions, negated },
        resources: Entries { items: resources, negated: negated_resource },
        conditions,
    })
}

/// `"*"`, or an object of `AWS` and `Service` entries.
fn principals(value: &Value, what: &str) -> KmsResult<Vec<PrincipalPattern>> {
    match value {
        Value::String(star) if star == "*" => Ok(vec![PrincipalPattern::Everyone]),
        Value::Object(kinds) if !kinds.is_empty() => {
            let mut patterns = Vec::new();
            for (kind, entries) in kinds {
                let parse: fn(&str) -> KmsResult<PrincipalPattern> = match kind.as_str() {
                    "AWS" => PrincipalPattern::parse_aws,
                    "Service" => PrincipalPattern::parse_service,
                    other => {
                        return Err(malformed(format!(
                            "{what}: principal type '{other}' is not supported; use AWS or Service"
                        )));
                    }
                };
                for entry in strings(entries, "Principal", what)? {
                    patterns
                        .push(parse(&entry).map_err(|err| malformed(format!("{what}: {}", err.message)))?);
                }
            }
            Ok(patterns)
        }
        _ => Err(malformed(format!("{what}: Principal must be \"*\" or an object such as {{\"AWS\": ...}}"))),
    }
}

/// `*` or `service:name` where the name may have wildcards; only `kms:` actions ever match here.
fn action_pattern(action: &str, what: &str) -> KmsResult<String> {
    let valid = action == "*"
        || action.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        });
    if !valid {
        return Err(malformed(format!(
            "{what}: Policy contains a statement with one or more invalid actions: '{action}'"
        )));
    }
    Ok(action.to_ascii_lowercase())
}

/// `*` or an ARN pattern (the key's ARN; wildcards allowed).
fn resource_pattern(resource: String, what: &str) -> KmsResult<String> {
    if resource == "*" || resource.starts_with("arn:") {
        Ok(resource)
    } else {
        Err(malformed(format!("{what}: Resource '{resource}' must be \"*\" or an ARN")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ids::RegionScope;
    use crate::policy::{Action, Principal, RequestContext, default_policy};
    use serde_json::json;

    const KEY_ARN: &str = "arn:aws:kms:dev-1:111122223333:key/k1";

    fn scope() -> RegionScope {
        RegionScope::new("dev-1", "111122223333")
    }

    fn decide(policy: &PolicyDocument, who: &str, action: Action, context: &RequestContext) -> Decision {
        let principal = Principal::from_name(who, &scope());
        policy.evaluate(&Request { principal: &principal, action, resource: KEY_ARN, context })
    }

    fn parse(policy: Value) -> PolicyDocument {
        PolicyDocument::parse(&policy.to_string()).unwrap()
    }

    #[test]
    fn the_default_policy_lets_every_principal_of_the_account_do_everything() {
        let policy = PolicyDocument::parse(&default_policy(&scope())).unwrap();
        let none = RequestContext::new();
        for action in Action::ALL {
            assert_eq!(decide(&policy, "anyone", *action, &none), Decision::Allow, "{action}");
        }
        assert_eq!(
            decide(&policy, "arn:aws:iam::444455556666:user/mallory", Action::Decrypt, &none),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn explicit_deny_beats_allow_and_nothing_allowed_is_denied() {
        let policy = parse(json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "NoDecryptForBob", "Effect": "Deny",
                 "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"},
                 "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*"}
            ]
        }));
        let none = RequestContext::new();
        assert_eq!(decide(&policy, "alice", Action::Decrypt, &none), Decision::Allow);
        assert_eq!(decide(&policy, "bob", Action::Encrypt, &none), Decision::Allow);
        assert_eq!(decide(&policy, "bob", Action::Decrypt, &none), Decision::ExplicitDeny);
        assert_eq!(decide(&policy, "bob", Action::ReEncryptFrom, &none), Decision::ExplicitDeny);

        let alice_only = parse(json!({"Statement": {
            "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice"]},
            "Action": "kms:Encrypt", "Resource": "*"}}));
        assert_eq!(decide(&alice_only, "alice", Action::Encrypt, &none), Decision::Allow);
        assert_eq!(decide(&alice_only, "alice", Action::Decrypt, &none), Decision::ImplicitDeny);
        assert_eq!(decide(&alice_only, "bob", Action::Encrypt, &none), Decision::ImplicitDeny);
    }

    #[test]
    fn not_elements_and_resources() {
        let policy = parse(json!({"Statement": [
            {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/bob"},
             "NotAction": "kms:*Key*", "Resource": KEY_ARN},
            {"Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey",
             "Resource": "arn:aws:kms:*:111122223333:key/other"}
        ]}));
        let none = RequestContext::new();
        assert_eq!(decide(&policy, "alice", Action::Encrypt, &none), Decision::Allow);
        assert_eq!(decide(&policy, "alice", Action::DescribeKey, &none), Decision::ImplicitDeny);
        assert_eq!(decide(&policy, "bob", Action::Encrypt, &none), Decision::ImplicitDeny);
    }

    #[test]
    fn conditions_on_the_encryption_context() {
        let policy = parse(json!({"Statement": {
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "42"}}}}));
        let mut matching = RequestContext::new();
        matching.add("kms:EncryptionContext:tenant", "42");
        let mut other = RequestContext::new();
        other.add("kms:EncryptionContext:tenant", "43");
        assert_eq!(decide(&policy, "alice", Action::Decrypt, &matching), Decision::Allow);
        assert_eq!(decide(&policy, "alice", Action::Decrypt, &other), Decision::ImplicitDeny);
        assert_eq!(decide(&policy, "alice", Action::Decrypt, &RequestContext::new()), Decision::ImplicitDeny);
    }

    #[test]
    fn malformed_documents_say_so() {
        let statement = json!({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"});
        let with = |key: &str, value: Value| {
            let mut s = statement.clone();
            s[key] = value;
            json!({"Statement": [s]}).to_string()
        };
        let without = |key: &str| {
            let mut s = statement.clone();
            s.as_object_mut().unwrap().remove(key);
            json!({"Statement": [s]}).to_string()
        };
        for bad in [
            "not json".to_string(),
            "[]".to_string(),
            json!({"Statement": []}).to_string(),
            json!({"Version": "2020-01-01", "Statement": [statement.clone()]}).to_string(),
            json!({"Statement": [statement.clone()], "Extra": 1}).to_string(),
            with("Effect", json!("allow")),
            with("Principal", json!("alice")),
            with("Principal", json!({"AWS": "alice"})),
            with("Principal", json!({"Federated": "x"})),
            with("NotPrincipal", json!("*")),
            with("Action", json!("Encrypt")),
            with("Action", json!([])),
            with("Resource", json!("key/1")),
            with("Condition", json!({"Bogus": {"a": "b"}})),
            with("Sid", json!(5)),
            with("Surprise", json!("x")),
            without("Effect"),
            without("Principal"),
            without("Action"),
            without("Resource"),
        ] {
            let err = PolicyDocument::parse(&bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException, "{bad}: {}", err.message);
        }
        let huge = format!("{{\"Statement\": [], \"Id\": \"{}\"}}", "x".repeat(MAX_POLICY_BYTES));
        assert_eq!(PolicyDocument::parse(&huge).unwrap_err().kind, ErrorKind::LimitExceededException);
    }
}
