//! The access keys the AWS endpoint accepts: access key id -> secret access key and the
//! principal a verified request runs as. Secrets never appear in `Debug` output or logs.

use std::collections::HashMap;
use std::fmt;
use zeroize::Zeroizing;

/// The fixed credential of `kmsd dev` (loopback only). Never configured by `kmsd run`.
pub const DEV_ACCESS_KEY_ID: &str = "kmsdev";
pub const DEV_SECRET_ACCESS_KEY: &str = "kmsdevsecret";
pub const DEV_PRINCIPAL: &str = "dev";

/// One access key's secret and principal.
pub struct Credential {
    secret: Zeroizing<String>,
    principal: String,
}

impl Credential {
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// The access keys, by access key id.
#[derive(Default)]
pub struct Credentials {
    by_access_key: HashMap<String, Credential>,
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// The dev credential alone.
    pub fn dev() -> Self {
        let mut credentials = Self::new();
        credentials.insert(DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, DEV_PRINCIPAL);
        credentials
    }

    pub fn insert(&mut self, access_key_id: &str, secret_access_key: &str, principal: &str) {
        self.by_access_key.insert(
            access_key_id.to_string(),
            Credential {
                secret: Zeroizing::new(secret_access_key.to_string()),
                principal: principal.to_string(),
            },
        );
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Credential> {
        self.by_access_key.get(access_key_id)
    }

    pub fn len(&self) -> usize {
        self.by_access_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_access_key.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.by_access_key.iter().map(|(k, c)| (k, &c.principal)).collect();
        keys.sort();
        f.debug_struct("Credentials").field("access_keys (secrets redacted)", &keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut credentials = Credentials::dev();
        credentials.insert("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "alice");
        let text = format!("{credentials:?}");
        assert!(text.contains("AKIDEXAMPLE") && text.contains("alice"), "{text}");
        assert!(!text.contains("wJalr") && !text.contains(DEV_SECRET_ACCESS_KEY), "{text}");
    }
}
