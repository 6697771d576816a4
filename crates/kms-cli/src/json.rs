//! A small ordered JSON value, printed like the AWS CLI prints (`--output json|text`).
//!
//! The AWS CLI keeps the members in the order of the service model, so the value keeps object
//! members in insertion order (serde_json's `Map` sorts them unless a crate-wide feature is on).

use std::fmt::Write as _;

/// A JSON value whose objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// Only produced by `--query` for a missing member.
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An empty object.
    pub fn obj() -> Self {
        Json::Obj(Vec::new())
    }

    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes member `key` from an object (no-op otherwise).
    pub fn remove(&mut self, key: &str) {
        if let Json::Obj(members) = self {
            members.retain(|(k, _)| k != key);
        }
    }

    /// True for an object without members: the AWS CLI prints nothing for it.
    pub fn is_empty_object(&self) -> bool {
        matches!(self, Json::Obj(m) if m.is_empty())
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Json::Null | Json::Bool(_) | Json::Int(_) | Json::Str(_))
    }

    /// Pretty JSON with a 4-space indent, as `aws --output json` prints.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| out.push_str(&"    ".repeat(d));
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Str(s) => out.push_str(&quote(s)),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Obj(members) if members.is_empty() => out.push_str("{}"),
            Json::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, depth + 1);
                    item.write_pretty(out, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push(']');
            }
            Json::Obj(members) => {
                out.push_str("{\n");
                for (i, (k, v)) in members.iter().enumerate() {
                    pad(out, depth + 1);
                    out.push_str(&quote(k));
                    out.push_str(": ");
                    v.write_pretty(out, depth + 1);
                    out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }

    /// Tab-separated text in the style of `aws --output text`: the scalars of an object on one
    /// line (nested objects prefixed by their upper-cased member name), then its lists and
    /// objects, recursively.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(None, &mut out);
        out
    }

    fn write_text(&self, identifier: Option<&str>, out: &mut String) {
        match self {
            Json::Obj(members) => {
                let mut scalars: Vec<String> = identifier.map(str::to_uppercase).into_iter().collect();
                let before = scalars.len();
                for (_, v) in members.iter().filter(|(_, v)| v.is_scalar()) {
                    scalars.push(v.text_scalar());
                }
                if scalars.len() > before {
                    out.push_str(&scalars.join("\t"));
                    out.push('\n');
                }
                for (k, v) in members.iter().filter(|(_, v)| !v.is_scalar()) {
                    v.write_text(Some(k), out);
                }
            }
            Json::Arr(items) if items.iter().all(Json::is_scalar) => {
                if items.is_empty() {
                    return;
                }
                let mut line: Vec<String> = identifier.map(str::to_uppercase).into_iter().collect();
                line.extend(items.iter().map(Json::text_scalar));
                out.push_str(&line.join("\t"));
                out.push('\n');
            }
            Json::Arr(items) => {
                for item in items {
                    item.write_text(identifier, out);
                }
            }
            scalar => {
                out.push_str(&scalar.text_scalar());
                out.push('\n');
            }
        }
    }

    fn text_scalar(&self) -> String {
        match self {
            // The AWS CLI is Python: booleans print as True / False in text output.
            Json::Null => "None".to_string(),
            Json::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
            Json::Int(i) => i.to_string(),
            Json::Str(s) => s.clone(),
            other => other.to_pretty(),
        }
    }

    /// Applies a `--query` expression. Supported subset of JMESPath: member names joined by dots,
    /// each optionally followed by `[N]` (index, negative from the end) or `[]` (project over a
    /// list), e.g. `CiphertextBlob`, `KeyMetadata.Arn`, `Keys[].KeyId`, `Aliases[0].AliasName`.
    pub fn query(&self, expr: &str) -> Result<Json, String> {
        let mut current = vec![self.clone()];
        let mut projected = false;
        for segment in expr.split('.') {
            let (name, rest) = match segment.find('[') {
                Some(i) => (&segment[..i], &segment[i..]),
                None => (segment, ""),
            };
            if !name.is_empty() {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("unsupported --query segment '{segment}'"));
                }
                current = current.iter().map(|v| v.get(name).cloned().unwrap_or(Json::Null)).collect();
            }
            let mut rest = rest;
            while !rest.is_empty() {
                let close = rest.find(']').ok_or_else(|| format!("unclosed '[' in --query '{expr}'"))?;
                let inner = &rest[1..close];
                rest = &rest[close + 1..];
                if inner.is_empty() {
                    projected = true;
                    current = current
                        .into_iter()
                        .flat_map(|v| match v {
                            Json::Arr(items) => items,
                            _ => Vec::new(),
                        })
                        .collect();
                } else {
                    let index: i64 =
                        inner.parse().map_err(|_| format!("unsupported index '[{inner}]' in --query"))?;
                    current = current
                        .into_iter()
                        .map(|v| match v {
                            Json::Arr(items) => {
                                let len = items.len() as i64;
                                let i = if index < 0 { len + index } else { index };
                                usize::try_from(i)
                                    .ok()
                                    .and_then(|i| items.into_iter().nth(i))
                                    .unwrap_or(Json::Null)
                            }
                            _ => Json::Null,
                        })
                        .collect();
                }
            }
        }
        if projected {
            Ok(Json::Arr(current.into_iter().filter(|v| *v != Json::Null).collect()))
        } else {
            Ok(current.into_iter().next().unwrap_or(Json::Null))
        }
    }
}

/// JSON string literal with escapes.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Json {
        Json::Obj(vec![
            ("KeyId".into(), Json::Str("k1".into())),
            ("Enabled".into(), Json::Bool(true)),
            (
                "Keys".into(),
                Json::Arr(vec![
                    Json::Obj(vec![("KeyId".into(), Json::Str("a".into()))]),
                    Json::Obj(vec![("KeyId".into(), Json::Str("b".into()))]),
                ]),
            ),
        ])
    }

    #[test]
    fn pretty_keeps_order_and_indents_by_four() {
        let s = Json::Obj(vec![
            ("Z".into(), Json::Int(1)),
            ("A".into(), Json::Arr(vec![Json::Str("x\"y".into())])),
            ("E".into(), Json::Arr(vec![])),
        ])
        .to_pretty();
        assert_eq!(s, "{\n    \"Z\": 1,\n    \"A\": [\n        \"x\\\"y\"\n    ],\n    \"E\": []\n}");
    }

    #[test]
    fn text_output_like_aws() {
        assert_eq!(sample().to_text(), "k1\tTrue\nKEYS\ta\nKEYS\tb\n");
        let list = Json::Obj(vec![("PolicyNames".into(), Json::Arr(vec![Json::Str("default".into())]))]);
        assert_eq!(list.to_text(), "POLICYNAMES\tdefault\n");
    }

    #[test]
    fn query_subset() {
        let s = sample();
        assert_eq!(s.query("KeyId"), Ok(Json::Str("k1".into())));
        assert_eq!(
            s.query("Keys[].KeyId"),
            Ok(Json::Arr(vec![Json::Str("a".into()), Json::Str("b".into())]))
        );
        assert_eq!(s.query("Keys[-1].KeyId"), Ok(Json::Str("b".into())));
        assert_eq!(s.query("Missing"), Ok(Json::Null));
        assert!(s.query("Keys[x]").is_err());
        assert!(s.query("a|b").is_err());
    }
}
