//! The size and shape rules of the Kubernetes KMS v2 contract, checked on what the plugin
//! receives and on what it answers. The numbers are kube-apiserver's: it refuses an Encrypt
//! answer that breaks them (and then reports the plugin unhealthy), so the plugin refuses first,
//! with a message that says which rule.

use std::collections::HashMap;
use std::fmt;

/// Largest `ciphertext` kube-apiserver stores (bytes).
pub const MAX_CIPHERTEXT: usize = 1024;
/// Largest `key_id` kube-apiserver accepts (bytes).
pub const MAX_KEY_ID: usize = 1024;
/// Largest total of `len(key) + len(value)` over all annotations (bytes).
pub const MAX_ANNOTATIONS: usize = 32 * 1024;
/// Largest plaintext Encrypt looks at: a ciphertext is always longer than its plaintext, so
/// anything longer could never fit [`MAX_CIPHERTEXT`]. kube-apiserver sends 32-byte seeds.
pub const MAX_PLAINTEXT: usize = MAX_CIPHERTEXT;

/// A broken rule, described for the caller (never carrying the data itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError(String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `field` must hold 1 to `max` bytes.
pub fn check_len(field: &str, len: usize, max: usize) -> Result<(), LimitError> {
    if len == 0 {
        return Err(LimitError(format!("{field} is empty")));
    }
    if len > max {
        return Err(LimitError(format!(
            "{field} is {len} bytes, more than the {max} bytes Kubernetes allows"
        )));
    }
    Ok(())
}

/// Every key a fully qualified domain name, and keys plus values at most [`MAX_ANNOTATIONS`].
pub fn check_annotations(annotations: &HashMap<String, Vec<u8>>) -> Result<(), LimitError> {
    let mut total = 0usize;
    for (key, value) in annotations {
        if !is_fully_qualified_domain_name(key) {
            return Err(LimitError(format!(
                "annotation key '{}' is not a fully qualified domain name (RFC 1123, e.g. \
                 kms.example.io)",
                key.escape_debug()
            )));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATIONS {
        return Err(LimitError(format!(
            "annotations total {total} bytes (keys plus values), more than the {MAX_ANNOTATIONS} bytes \
             Kubernetes allows"
        )));
    }
    Ok(())
}

/// The rule kube-apiserver applies to annotation keys (apimachinery's
/// `IsFullyQualifiedDomainName`): an optional trailing dot, then at least two dot-separated
/// RFC 1123 labels (lowercase letters, digits and inner hyphens, 1–63 characters), 253 characters
/// at most.
pub fn is_fully_qualified_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|label| is_dns1123_label(label))
}

fn is_dns1123_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && alphanumeric(first)
                && alphanumeric(last)
                && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded_on_both_sides() {
        assert!(check_len("ciphertext", 1, MAX_CIPHERTEXT).is_ok());
        assert!(check_len("ciphertext", MAX_CIPHERTEXT, MAX_CIPHERTEXT).is_ok());
        let too_long = check_len("ciphertext", MAX_CIPHERTEXT + 1, MAX_CIPHERTEXT).unwrap_err();
        assert_eq!(
            too_long.to_string(),
            "ciphertext is 1025 bytes, more than the 1024 bytes Kubernetes allows"
        );
        assert_eq!(check_len("key_id", 0, MAX_KEY_ID).unwrap_err().to_string(), "key_id is empty");
    }

    #[test]
    fn annotation_keys_must_be_fully_qualified_domain_names() {
        for good in ["kms.example.io", "a.b", "version.encryption.remote.io.", "x-1.example-2.io", "0.9"] {
            assert!(is_fully_qualified_domain_name(good), "{good}");
        }
        let long_label = format!("{}.io", "a".repeat(64));
        let long_name = format!("{}.io", ["a"; 126].join("."));
        for bad in [
            "",
            ".",
            "example",
            "Kms.example.io",
            "kms..example.io",
            "-kms.example.io",
            "kms-.example.io",
            "kms_x.example.io",
            "kms.example.io/key",
            ".example.io",
            "kms.example.io..",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_fully_qualified_domain_name(bad), "{bad}");
        }
        assert!(is_fully_qualified_domain_name(&format!("{}.io", "a".repeat(63))));
    }

    #[test]
    fn annotations_are_checked_for_keys_and_total_size() {
        assert!(check_annotations(&HashMap::new()).is_ok());
        let fits = HashMap::from([("kms.example.io".to_string(), vec![0u8; MAX_ANNOTATIONS - 14])]);
        assert!(check_annotations(&fits).is_ok());
        let over = HashMap::from([("kms.example.io".to_string(), vec![0u8; MAX_ANNOTATIONS - 13])]);
        let err = check_annotations(&over).unwrap_err().to_string();
        assert!(err.contains("32769 bytes"), "{err}");
        let split = HashMap::from([
            ("a.example.io".to_string(), vec![0u8; MAX_ANNOTATIONS / 2]),
            ("b.example.io".to_string(), vec![0u8; MAX_ANNOTATIONS / 2]),
        ]);
        assert!(check_annotations(&split).is_err(), "the limit is on the sum");
        let bad_key = HashMap::from([("not_a_domain".to_string(), Vec::new())]);
        assert!(check_annotations(&bad_key).unwrap_err().to_string().contains("'not_a_domain'"));
    }
}
