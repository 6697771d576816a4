//! Parsing of argument values the way the AWS CLI v2 parses them: blobs (`fileb://`, `file://`,
//! base64 text), text parameters (`file://`), maps in shorthand (`k=v,k2=v2`) or JSON, tags in
//! shorthand (`TagKey=k,TagValue=v`) or JSON, and enums by their AWS names.
//!
//! Every parser returns `Result<_, String>` so clap can use it as a `value_parser` and report a
//! usage error (exit status 252).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_proto::v1;

/// A blob argument: raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

/// `fileb://path` → the file's bytes; `file://path` → the file's text, base64-decoded;
/// anything else → base64-decoded (AWS CLI v2's default `cli_binary_format=base64`).
pub fn parse_blob(s: &str) -> Result<Blob, String> {
    if let Some(path) = s.strip_prefix("fileb://") {
        return read_file(path).map(Blob);
    }
    let text = match s.strip_prefix("file://") {
        Some(path) => String::from_utf8(read_file(path)?)
            .map_err(|_| format!("{path} is not UTF-8 text; use fileb://"))?,
        None => s.to_string(),
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map(Blob).map_err(|e| {
        format!("Invalid base64 ({e}); pass base64 text, or fileb://<path> for raw bytes from a file")
    })
}

/// A text argument: `file://path` → the file's text (for policies, JSON documents); otherwise the
/// argument itself.
pub fn parse_text(s: &str) -> Result<String, String> {
    match s.strip_prefix("file://") {
        Some(path) => String::from_utf8(read_file(path)?).map_err(|_| format!("{path} is not UTF-8 text")),
        None => Ok(s.to_string()),
    }
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("Unable to load paramfile {path}: {e}"))
}

/// An encryption context (or any string map): `k=v,k2=v2`, or a JSON object, or `file://` to
/// either. Several occurrences of the flag are merged by the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringMap(pub Vec<(String, String)>);

pub fn parse_string_map(s: &str) -> Result<StringMap, String> {
    let s = parse_text(s)?;
    let trimmed = s.trim();
    if trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON: {e}"))?;
        let obj = value.as_object().ok_or("expected a JSON object")?;
        return obj
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(v) => Ok((k.clone(), v.to_string())),
                None => Err(format!("value of '{k}' must be a string")),
            })
            .collect::<Result<_, _>>()
            .map(StringMap);
    }
    if trimmed.is_empty() {
        return Ok(StringMap(Vec::new()));
    }
    trimmed
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!(
                "expected key=value pairs separated by commas (e.g. purpose=test,team=a), got '{pair}'"
            )),
        })
        .collect::<Result<_, _>>()
        .map(StringMap)
}

/// Merges several `--encryption-context` occurrences; a later key replaces an earlier one.
pub fn merge_maps(maps: &[StringMap]) -> std::collections::HashMap<String, String> {
    maps.iter().flat_map(|m| m.0.iter().cloned()).collect()
}

/// One `--tags` value: `TagKey=k,TagValue=v`, or a JSON list of `{"TagKey":..,"TagValue":..}`
/// (or a single such object), or `file://` to JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(pub Vec<v1::Tag>);

pub fn parse_tags(s: &str) -> Result<Tags, String> {
    let s = parse_text(s)?;
    let trimmed = s.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON: {e}"))?;
        let items = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        return items.iter().map(json_tag).collect::<Result<_, _>>().map(Tags);
    }
    let mut key = None;
    let mut value = None;
    for part in trimmed.split(',') {
        match part.split_once('=') {
            Some(("TagKey", v)) => key = Some(v.to_string()),
            Some(("TagValue", v)) => value = Some(v.to_string()),
            _ => return Err(format!("expected TagKey=<key>,TagValue=<value>, got '{part}'")),
        }
    }
    let tag_key = key.ok_or("missing TagKey= (expected TagKey=<key>,TagValue=<value>)")?;
    Ok(Tags(vec![v1::Tag { tag_key, tag_value: value.unwrap_or_default() }]))
}

fn json_tag(v: &serde_json::Value) -> Result<v1::Tag, String> {
    let field = |name: &str| v.get(name).and_then(|x| x.as_str()).map(str::to_string);
    Ok(v1::Tag {
        tag_key: field("TagKey").ok_or("each tag needs a string TagKey")?,
        tag_value: field("TagValue").unwrap_or_default(),
    })
}

/// `--constraints` of create-grant: JSON `{"EncryptionContextSubset":{..},
/// "EncryptionContextEquals":{..}, "SourceArn":".."}` (or `file://` to it).
pub fn parse_constraints(s: &str) -> Result<v1::GrantConstraints, String> {
    let text = parse_text(s)?;
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("expected a JSON object ({e})"))?;
    let obj = value.as_object().ok_or("expected a JSON object")?;
    let mut out = v1::GrantConstraints::default();
    for (k, v) in obj {
        match k.as_str() {
            "EncryptionContextSubset" | "EncryptionContextEquals" => {
                let map = parse_string_map(&v.to_string())?;
                let target = if k == "EncryptionContextSubset" {
                    &mut out.encryption_context_subset
                } else {
                    &mut out.encryption_context_equals
                };
                target.extend(map.0);
            }
            "SourceArn" => out.source_arn = v.as_str().ok_or("SourceArn must be a string")?.to_string(),
            other => {
                return Err(format!(
                    "unknown member '{other}' (expected EncryptionContextSubset, EncryptionContextEquals, SourceArn)"
                ));
            }
        }
    }
    Ok(out)
}

/// A timestamp: epoch seconds, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)`
/// (UTC offsets other than zero are accepted as `+HH:MM` / `-HH:MM`).
pub fn parse_timestamp(s: &str) -> Result<prost_types::Timestamp, String> {
    let bad = || {
        format!("invalid timestamp '{s}': use epoch seconds, YYYY-MM-DD or RFC 3339 (2030-01-01T00:00:00Z)")
    };
    if let Ok(seconds) = s.parse::<i64>() {
        return Ok(prost_types::Timestamp { seconds, nanos: 0 });
    }
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => (num(y)?, num(m)?, num(d)?),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut seconds = days_from_civil(y, m, d) * 86_400;
    let mut nanos = 0;
    if let Some(time) = time {
        let (clock, offset) = if let Some(t) = time.strip_suffix('Z') {
            (t, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (h, mi) = time[i + 1..].split_once(':').ok_or_else(bad)?;
            let sign = if time.as_bytes()[i] == b'-' { -1 } else { 1 };
            (&time[..i], sign * (num(h)? * 3600 + num(mi)? * 60))
        } else {
            (time, 0)
        };
        let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let hms: Vec<&str> = clock.split(':').collect();
        let [h, mi, sec] = hms.as_slice() else { return Err(bad()) };
        seconds += num(h)? * 3600 + num(mi)? * 60 + num(sec)? - offset;
        if !frac.is_empty() {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            nanos = digits.parse::<i32>().map_err(|_| bad())?;
        }
    }
    Ok(prost_types::Timestamp { seconds, nanos })
}

/// (year, month, day) → days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub use kms_proto::AwsEnum;

/// Parses an enum by its AWS name (exact first, then ignoring ASCII case).
pub fn parse_enum<E: AwsEnum>(s: &str) -> Result<E, String> {
    E::from_aws_name(s)
        .or_else(|| E::AWS_NAMES.iter().find(|n| n.eq_ignore_ascii_case(s)).and_then(|n| E::from_aws_name(n)))
        .ok_or_else(|| format!("valid values: {}", E::AWS_NAMES.join(", ")))
}

/// An optional enum argument as the proto field value (0 = not given).
pub fn enum_field<E: AwsEnum>(e: Option<E>) -> i32 {
    e.map_or(0, Into::into)
}

/// `--flag` / `--no-flag` pairs → `Some(true)` / `Some(false)` / `None`.
pub fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn blob_from_base64_and_files() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(parse_blob("aGVsbG8="), Ok(Blob(b"hello".to_vec())));
        assert_eq!(parse_blob("aGVs\nbG8="), Ok(Blob(b"hello".to_vec())));
        assert!(parse_blob("not base64!").is_err_and(|e| e.contains("fileb://")));

        let mut raw = tempfile_path("raw")?;
        raw.1.write_all(&[0, 159, 255, 10])?;
        assert_eq!(parse_blob(&format!("fileb://{}", raw.0)), Ok(Blob(vec![0, 159, 255, 10])));

        let mut b64 = tempfile_path("b64")?;
        b64.1.write_all(b"aGVsbG8=\n")?;
        assert_eq!(parse_blob(&format!("file://{}", b64.0)), Ok(Blob(b"hello".to_vec())));

        assert!(parse_blob("fileb:///nonexistent/x").is_err_and(|e| e.contains("Unable to load paramfile")));
        std::fs::remove_file(&raw.0)?;
        std::fs::remove_file(&b64.0)?;
        Ok(())
    }

    fn tempfile_path(tag: &str) -> std::io::Result<(String, std::fs::File)> {
        let path = std::env::temp_dir().join(format!("kmsctl-test-{}-{tag}", std::process::id()));
        let file = std::fs::File::create(&path)?;
        Ok((path.display().to_string(), file))
    }

    #[test]
    fn string_map_shorthand_and_json() {
        let m = parse_string_map("purpose=test,team=a b").map(|m| m.0);
        assert_eq!(m, Ok(vec![("purpose".into(), "test".into()), ("team".into(), "a b".into())]));
        let m = parse_string_map(r#"{"k":"v=1"}"#).map(|m| m.0);
        assert_eq!(m, Ok(vec![("k".into(), "v=1".into())]));
        assert!(parse_string_map("novalue").is_err());
        assert!(parse_string_map(r#"{"k":1}"#).is_err());
        let merged = merge_maps(&[
            StringMap(vec![("a".into(), "1".into())]),
            StringMap(vec![("b".into(), "2".into()), ("a".into(), "3".into())]),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.get("a").map(String::as_str), Some("3"));
    }

    #[test]
    fn tags_shorthand_and_json() {
        let t = parse_tags("TagKey=env,TagValue=prod").map(|t| t.0);
        assert_eq!(t, Ok(vec![v1::Tag { tag_key: "env".into(), tag_value: "prod".into() }]));
        let t =
            parse_tags(r#"[{"TagKey":"a","TagValue":"1"},{"TagKey":"b","TagValue":""}]"#).map(|t| t.0.len());
        assert_eq!(t, Ok(2));
        assert!(parse_tags("Key=env,Value=prod").is_err());
        assert!(parse_tags("TagValue=x").is_err());
    }

    #[test]
    fn timestamps() {
        let t = |s: &str| parse_timestamp(s).map(|t| (t.seconds, t.nanos));
        assert_eq!(t("1714558830"), Ok((1_714_558_830, 0)));
        assert_eq!(t("2024-05-01T10:20:30Z"), Ok((1_714_558_830, 0)));
        assert_eq!(t("2024-05-01T10:20:30.5+00:00"), Ok((1_714_558_830, 500_000_000)));
        assert_eq!(t("2024-05-01T12:20:30+02:00"), Ok((1_714_558_830, 0)));
        assert_eq!(t("2000-03-01"), Ok((951_868_800, 0)));
        assert!(t("2024-13-01").is_err());
        assert!(t("tomorrow").is_err());
    }

    #[test]
    fn grant_constraints() {
        let c = parse_constraints(r#"{"EncryptionContextSubset":{"app":"x"},"SourceArn":"arn:s"}"#);
        assert!(
            c.as_ref().is_ok_and(|c| c.encryption_context_subset.get("app").map(String::as_str) == Some("x"))
        );
        assert!(c.is_ok_and(|c| c.source_arn == "arn:s" && c.encryption_context_equals.is_empty()));
        assert!(parse_constraints(r#"{"Bogus":{}}"#).is_err());
        assert!(parse_constraints("app=x").is_err());
    }

    #[test]
    fn enums_by_aws_name() {
        assert_eq!(parse_enum::<v1::KeySpec>("RSA_2048"), Ok(v1::KeySpec::Rsa2048));
        assert_eq!(parse_enum::<v1::KeySpec>("symmetric_default"), Ok(v1::KeySpec::SymmetricDefault));
        assert_eq!(parse_enum::<v1::GrantOperation>("ReEncryptFrom"), Ok(v1::GrantOperation::ReEncryptFrom));
        assert!(parse_enum::<v1::DataKeySpec>("AES_512").is_err_and(|e| e.contains("AES_256")));
        assert_eq!(enum_field(Some(v1::KeyUsage::SignVerify)), v1::KeyUsage::SignVerify as i32);
        assert_eq!(enum_field::<v1::KeyUsage>(None), 0);
        assert_eq!(flag(false, true), Some(false));
        assert_eq!(flag(false, false), None);
    }
}
