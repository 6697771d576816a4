//! The `Condition` element: operators, their `...IfExists` and `ForAnyValue:` / `ForAllValues:`
//! forms, and how they compare a request's condition keys with the policy's values.
//!
//! AWS's rules, which this follows:
//! - operators in a block, and keys under an operator, must all match (AND); the values listed
//!   for one key are alternatives (OR), and a negated operator (`StringNotEquals`, ...) matches
//!   when none of them does;
//! - a key the request does not have (or that this service does not know) makes a positive
//!   operator false and a negated one true; `...IfExists` makes it true; `ForAllValues:` is true
//!   and `ForAnyValue:` false on an absent or empty key; `Null` tests for absence itself.

use super::context::RequestContext;
use super::{time, wildcard};
use crate::error::{KmsError, KmsResult};
use serde_json::Value;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

use Comparison as C;

/// Every operator AWS defines: its name, what it compares, and whether it is the negation.
const OPERATORS: &[(&str, Comparison, bool)] = &[
    ("StringEquals", C::StringEquals, false),
    ("StringNotEquals", C::StringEquals, true),
    ("StringEqualsIgnoreCase", C::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", C::StringEqualsIgnoreCase, true),
    ("StringLike", C::StringLike, false),
    ("StringNotLike", C::StringLike, true),
    ("NumericEquals", C::NumericEquals, false),
    ("NumericNotEquals", C::NumericEquals, true),
    ("NumericLessThan", C::NumericLessThan, false),
    ("NumericLessThanEquals", C::NumericLessThanEquals, false),
    ("NumericGreaterThan", C::NumericGreaterThan, false),
    ("NumericGreaterThanEquals", C::NumericGreaterThanEquals, false),
    ("DateEquals", C::DateEquals, false),
    ("DateNotEquals", C::DateEquals, true),
    ("DateLessThan", C::DateLessThan, false),
    ("DateLessThanEquals", C::DateLessThanEquals, false),
    ("DateGreaterThan", C::DateGreaterThan, false),
    ("DateGreaterThanEquals", C::DateGreaterThanEquals, false),
    ("Bool", C::Bool, false),
    ("BinaryEquals", C::BinaryEquals, false),
    ("IpAddress", C::IpAddress, false),
    ("NotIpAddress", C::IpAddress, true),
    // AWS lets both ARN operators use wildcards.
    ("ArnEquals", C::ArnLike, false),
    ("ArnLike", C::ArnLike, false),
    ("ArnNotEquals", C::ArnLike, true),
    ("ArnNotLike", C::ArnLike, true),
    ("Null", C::Null, false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    /// No qualifier: for a multivalued key, a positive operator needs one matching value and a
    /// negated one needs every value to pass.
    None,
    ForAnyValue,
    ForAllValues,
}

/// One operator applied to one condition key, with the policy's values for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    comparison: Comparison,
    negated: bool,
    if_exists: bool,
    qualifier: SetQualifier,
    key: String,
    values: Vec<String>,
}

fn malformed(message: String) -> KmsError {
    KmsError::malformed_policy(message)
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let at = text.len().checked_sub(suffix.len())?;
    let tail = text.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..at])
}

/// Parses a statement's `Condition` object.
pub(crate) fn parse_block(block: &Value) -> KmsResult<Vec<Condition>> {
    let Value::Object(operators) = block else {
        return Err(malformed("Condition must be an object of operators".into()));
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let (comparison, negated, if_exists, qualifier) = parse_operator(operator)?;
        let keys = match keys {
            Value::Object(keys) if !keys.is_empty() => keys,
            _ => {
                return Err(malformed(format!(
                    "Condition operator {operator} must map condition keys to values"
                )));
            }
        };
        for (key, values) in keys {
            if key.is_empty() {
                return Err(malformed(format!("Condition operator {operator} names an empty condition key")));
            }
            let values = condition_values(operator, key, values)?;
            for value in &values {
                check_value(comparison, operator, value)?;
            }
            conditions.push(Condition {
                comparison,
                negated,
                if_exists,
                qualifier,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(conditions)
}

fn parse_operator(name: &str) -> KmsResult<(Comparison, bool, bool, SetQualifier)> {
    let (qualifier, rest) = if let Some(rest) = strip_prefix_ci(name, "ForAnyValue:") {
        (SetQualifier::ForAnyValue, rest)
    } else if let Some(rest) = strip_prefix_ci(name, "ForAllValues:") {
        (SetQualifier::ForAllValues, rest)
    } else {
        (SetQualifier::None, name)
    };
    let (rest, if_exists) = match strip_suffix_ci(rest, "IfExists") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (_, comparison, negated) =
        OPERATORS.iter().find(|(known, ..)| known.eq_ignore_ascii_case(rest)).ok_or_else(|| {
            malformed(format!("Condition operator '{name}' is not a policy condition operator"))
        })?;
    if *comparison == C::Null && (if_exists || qualifier != SetQualifier::None) {
        return Err(malformed(format!(
            "Condition operator '{name}': Null takes no IfExists or set qualifier"
        )));
    }
    Ok((*comparison, *negated, if_exists, qualifier))
}

/// A key's value(s): a string, number or boolean, or a non-empty list of them.
fn condition_values(operator: &str, key: &str, values: &Value) -> KmsResult<Vec<String>> {
    let scalar = |value: &Value| match value {
        Value::String(text) => Ok(text.clone()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Number(number) => Ok(number.to_string()),
        _ => {
            Err(malformed(format!("Condition {operator} {key}: values must be strings, numbers or booleans")))
        }
    };
    match values {
        Value::Array(list) if list.is_empty() => {
            Err(malformed(format!("Condition {operator} {key} has an empty list of values")))
        }
        Value::Array(list) => list.iter().map(scalar).collect(),
        single => Ok(vec![scalar(single)?]),
    }
}

/// Values an operator could never compare are a malformed policy, not a silent mismatch.
fn check_value(comparison: Comparison, operator: &str, value: &str) -> KmsResult<()> {
    let valid = match comparison {
        C::NumericEquals
        | C::NumericLessThan
        | C::NumericLessThanEquals
        | C::NumericGreaterThan
        | C::NumericGreaterThanEquals => value.parse::<f64>().is_ok(),
        C::DateEquals
        | C::DateLessThan
        | C::DateLessThanEquals
        | C::DateGreaterThan
        | C::DateGreaterThanEquals => time::parse_millis(value).is_some(),
        C::Bool | C::Null => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        C::IpAddress => parse_cidr(value).is_some(),
        C::StringEquals | C::StringEqualsIgnoreCase | C::StringLike | C::BinaryEquals | C::ArnLike => true,
    };
    if valid {
        Ok(())
    } else {
        Err(malformed(format!("Condition {operator}: '{value}' is not a valid value for this operator")))
    }
}

impl Condition {
    /// Whether the request satisfies this condition.
    pub(crate) fn matches(&self, context: &RequestContext) -> bool {
        let request = context.get(&self.key);
        if self.comparison == C::Null {
            let absent = request.is_none();
            return self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(request) = request else {
            return self.if_exists
                || match self.qualifier {
                    SetQualifier::ForAllValues => true,
                    SetQualifier::ForAnyValue => false,
                    SetQualifier::None => self.negated,
                };
        };
        // The operator's verdict on one request value: any policy value matches it (positive),
        // or none does (negated).
        let passes = |value: &String| {
            self.values.iter().any(|policy| compare(self.comparison, value, policy)) != self.negated
        };
        match self.qualifier {
            SetQualifier::None if self.negated => request.iter().all(passes),
            SetQualifier::None | SetQualifier::ForAnyValue => request.iter().any(passes),
            SetQualifier::ForAllValues => request.iter().all(passes),
        }
    }
}

fn compare(comparison: Comparison, request: &str, policy: &str) -> bool {
    let numbers = || request.parse::<f64>().ok().zip(policy.parse::<f64>().ok());
    let dates = || time::parse_millis(request).zip(time::parse_millis(policy));
    match comparison {
        C::StringEquals | C::BinaryEquals => request == policy,
        C::StringEqualsIgnoreCase => request.to_lowercase() == policy.to_lowercase(),
        C::StringLike => wildcard::matches(policy, request),
        C::NumericEquals => numbers().is_some_and(|(r, p)| r == p),
        C::NumericLessThan => numbers().is_some_and(|(r, p)| r < p),
        C::NumericLessThanEquals => numbers().is_some_and(|(r, p)| r <= p),
        C::NumericGreaterThan => numbers().is_some_and(|(r, p)| r > p),
        C::NumericGreaterThanEquals => numbers().is_some_and(|(r, p)| r >= p),
        C::DateEquals => dates().is_some_and(|(r, p)| r == p),
        C::DateLessThan => dates().is_some_and(|(r, p)| r < p),
        C::DateLessThanEquals => dates().is_some_and(|(r, p)| r <= p),
        C::DateGreaterThan => dates().is_some_and(|(r, p)| r > p),
        C::DateGreaterThanEquals => dates().is_some_and(|(r, p)| r >= p),
        C::Bool => request.eq_ignore_ascii_case(policy),
        C::IpAddress => match (request.parse::<IpAddr>(), parse_cidr(policy)) {
            (Ok(ip), Some((network, prefix))) => in_network(ip, network, prefix),
            _ => false,
        },
        C::ArnLike => arn_matches(policy, request),
        C::Null => false,
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some((address, prefix))
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// ARN patterns match segment by segment (AWS checks each of the six colon-separated parts on
/// its own), so a `*` never spans the colons between segments, except inside the last, the
/// resource. A lone `*` matches any ARN.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn_parts: Vec<&str> = arn.splitn(6, ':').collect();
    pattern_parts.len() == 6
        && arn_parts.len() == 6
        && pattern_parts.iter().zip(&arn_parts).all(|(p, a)| wildcard::matches(p, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn condition(block: Value) -> Vec<Condition> {
        parse_block(&block).unwrap()
    }

    fn holds(block: Value, context: &RequestContext) -> bool {
        condition(block).iter().all(|c| c.matches(context))
    }

    fn ctx(pairs: &[(&str, &str)]) -> RequestContext {
        let mut context = RequestContext::new();
        for (key, value) in pairs {
            context.add(key, *value);
        }
        context
    }

    #[test]
    fn string_operators_and_missing_keys() {
        let c = ctx(&[("kms:EncryptionContext:dept", "IT")]);
        assert!(
            holds(json!({"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}), &c),
            "key names ignore case"
        );
        assert!(!holds(json!({"StringEquals": {"kms:EncryptionContext:dept": "it"}}), &c), "values do not");
        assert!(holds(json!({"StringEqualsIgnoreCase": {"kms:EncryptionContext:dept": "it"}}), &c));
        assert!(
            holds(json!({"StringEquals": {"kms:EncryptionContext:dept": ["HR", "IT"]}}), &c),
            "values are OR"
        );
        assert!(!holds(json!({"StringNotEquals": {"kms:EncryptionContext:dept": ["HR", "IT"]}}), &c));
        assert!(holds(json!({"StringLike": {"kms:EncryptionContext:dept": "I?"}}), &c));
        assert!(holds(json!({"StringNotLike": {"kms:EncryptionContext:dept": "H*"}}), &c));
        // Absent keys: positive false, negated true, IfExists true.
        let empty = RequestContext::new();
        assert!(!holds(json!({"StringEquals": {"kms:ViaService": "x"}}), &empty));
        assert!(holds(json!({"StringNotEquals": {"kms:ViaService": "x"}}), &empty));
        assert!(holds(json!({"StringEqualsIfExists": {"kms:ViaService": "x"}}), &empty));
        assert!(!holds(json!({"StringEqualsIfExists": {"kms:EncryptionContext:dept": "HR"}}), &c));
        // Two keys under one operator, and two operators: AND.
        let both = ctx(&[("a", "1"), ("b", "2")]);
        assert!(holds(json!({"StringEquals": {"a": "1", "b": "2"}}), &both));
        assert!(!holds(json!({"StringEquals": {"a": "1", "b": "3"}}), &both));
        assert!(!holds(json!({"StringEquals": {"a": "1"}, "StringLike": {"b": "x*"}}), &both));
    }

    #[test]
    fn set_qualifiers_on_multivalued_keys() {
        let keys = ctx(&[("kms:EncryptionContextKeys", "dept"), ("kms:EncryptionContextKeys", "app")]);
        let any = json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "dept"}});
        let all = json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["dept", "app", "x"]}});
        let all_narrow = json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "dept"}});
        assert!(holds(any.clone(), &keys));
        assert!(holds(all.clone(), &keys));
        assert!(!holds(all_narrow, &keys));
        let none = RequestContext::new();
        assert!(!holds(any, &none), "ForAnyValue on an absent key is false");
        assert!(holds(all, &none), "ForAllValues on an absent key is true");
        assert!(holds(json!({"Null": {"kms:EncryptionContextKeys": "true"}}), &none));
        assert!(!holds(json!({"Null": {"kms:EncryptionContextKeys": "false"}}), &none));
        assert!(holds(json!({"Null": {"kms:EncryptionContextKeys": false}}), &keys));
        let ops = ctx(&[("kms:GrantOperations", "Encrypt"), ("kms:GrantOperations", "Decrypt")]);
        assert!(!holds(
            json!({"ForAnyValue:StringNotEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}}),
            &ops
        ));
        assert!(holds(json!({"ForAnyValue:StringNotEquals": {"kms:GrantOperations": "Encrypt"}}), &ops));
        assert!(
            !holds(json!({"StringNotEquals": {"kms:GrantOperations": "Encrypt"}}), &ops),
            "unqualified negation: no value may match"
        );
    }

    #[test]
    fn numbers_dates_bools_ips_and_arns() {
        let c = ctx(&[
            ("n", "7"),
            ("aws:CurrentTime", "2025-06-01T00:00:00Z"),
            ("kms:GrantIsForAWSResource", "false"),
            ("aws:SourceIp", "10.1.2.3"),
            ("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice"),
        ]);
        assert!(holds(json!({"NumericLessThan": {"n": 10}, "NumericGreaterThanEquals": {"n": "7"}}), &c));
        assert!(!holds(json!({"NumericNotEquals": {"n": 7}}), &c));
        assert!(holds(json!({"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}), &c));
        assert!(!holds(json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01"}}), &c));
        assert!(holds(json!({"Bool": {"kms:GrantIsForAWSResource": false}}), &c));
        assert!(holds(json!({"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}}), &c));
        assert!(holds(json!({"NotIpAddress": {"aws:SourceIp": "10.1.2.4/32"}}), &c));
        assert!(holds(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}}), &c));
        assert!(!holds(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam:*:user/alice"}}), &c));
        assert!(holds(
            json!({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/bob"}}),
            &c
        ));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        for bad in [
            json!({"StringEqualz": {"a": "b"}}),
            json!({"StringEquals": {}}),
            json!({"StringEquals": "a"}),
            json!({"StringEquals": {"a": []}}),
            json!({"StringEquals": {"a": {"b": "c"}}}),
            json!({"NumericEquals": {"a": "seven"}}),
            json!({"DateLessThan": {"aws:CurrentTime": "soon"}}),
            json!({"Bool": {"a": "yes"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
            json!({"NullIfExists": {"a": "true"}}),
            json!({"ForAnyValue:Null": {"a": "true"}}),
            json!(["StringEquals"]),
        ] {
            let err = parse_block(&bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::MalformedPolicyDocumentException, "{bad}");
        }
        assert!(parse_block(&json!({"forallvalues:stringequalsifexists": {"a": "b"}})).is_ok());
    }
}
