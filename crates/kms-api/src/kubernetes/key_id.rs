//! The plugin's `key_id`: which key encryption key (KEK) sealed a Kubernetes DEK seed.
//!
//! Format: `<key ARN>/v<material version>`, e.g.
//! `arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/v2`. The ARN
//! names the backing KMS key (an alias is resolved to it), the version its key material, which
//! is exactly what a ciphertext blob's header records. Rotation (automatic or
//! RotateKeyOnDemand) adds a material version, so the `key_id` changes and kube-apiserver
//! generates a new seed; versions only grow and key ids are unique UUIDs, so a `key_id` is never
//! reused for different material. Neither part is secret.

use std::fmt;

/// A parsed plugin `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginKeyId {
    /// The backing key's ARN.
    pub key_arn: String,
    /// The key material version within that key.
    pub material_version: u32,
}

const SEPARATOR: &str = "/v";

impl PluginKeyId {
    /// Parses a `key_id` this plugin issued; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (key_arn, version) = text.rsplit_once(SEPARATOR)?;
        // `u32::from_str` accepts a leading '+': insist on digits only, so one version has one
        // spelling.
        if !key_arn.starts_with("arn:") || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let material_version = version.parse().ok()?;
        Some(Self { key_arn: key_arn.to_string(), material_version })
    }
}

impl fmt::Display for PluginKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.key_arn, self.material_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn round_trips_and_changes_with_the_version() {
        let v0 = PluginKeyId { key_arn: ARN.into(), material_version: 0 };
        let v1 = PluginKeyId { key_arn: ARN.into(), material_version: 1 };
        assert_eq!(v1.to_string(), format!("{ARN}/v1"));
        assert_eq!(PluginKeyId::parse(&v1.to_string()), Some(v1.clone()));
        assert_ne!(v0.to_string(), v1.to_string());
    }

    #[test]
    fn refuses_what_it_did_not_issue() {
        for bad in [
            "",
            ARN,
            "alias/kubernetes/v1",
            &format!("{ARN}/v"),
            &format!("{ARN}/v+1"),
            &format!("{ARN}/v-1"),
            &format!("{ARN}/v1x"),
            &format!("{ARN}/v99999999999"),
        ] {
            assert_eq!(PluginKeyId::parse(bad), None, "{bad}");
        }
    }
}
