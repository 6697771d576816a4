//! Authentication: turning what a connection and a request present into a principal.
//!
//! A gRPC request is authenticated by, in this order:
//! 1. a bearer token (`authorization: Bearer <token>`), when present. A token that matches no
//!    configured principal is refused even if a client certificate was also presented, so a typo
//!    in a token never silently falls back to another identity;
//! 2. the client certificate of the TLS connection (verified against the cluster CA by the TLS
//!    layer before any request is read): its first URI SAN, else its subject CN;
//! 3. otherwise the request is anonymous, which only a node without TLS and without tokens
//!    accepts (`kmsd dev` and loopback test setups).
//!
//! Tokens are kept as SHA-256 digests, so the configuration file is not a secret, and compared in
//! constant time. Node certificates carry the URI SAN `kms://<region>/node` ([`node_principal`]);
//! that identity may use the cluster admin API, and the Raft port accepts nothing else.

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;

/// The principal that a region's node certificates carry (as a URI SAN).
pub fn node_principal(region: &str) -> String {
    format!("kms://{region}/node")
}

/// The identity a certificate names: its first URI SAN, else its subject's common name.
pub fn certificate_principal(certificate: &[u8]) -> Result<String, AuthnError> {
    let bad = |why: String| AuthnError::BadCertificate(why);
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| bad(format!("the client certificate cannot be parsed: {e}")))?;
    let uri = parsed
        .subject_alternative_name()
        .map_err(|e| bad(format!("the client certificate's subjectAltName cannot be parsed: {e}")))?
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
                _ => None,
            })
        });
    if let Some(uri) = uri.filter(|uri| !uri.is_empty()) {
        return Ok(uri);
    }
    parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad("the client certificate has neither a URI SAN nor a subject CN".into()))
}

/// Why a request could not be authenticated. The messages name no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnError {
    /// Nothing was presented and this node does not accept anonymous requests.
    Missing,
    /// The bearer token matches no configured principal.
    UnknownToken,
    /// The `authorization` header is not `Bearer <token>`.
    MalformedAuthorization,
    BadCertificate(String),
}

impl AuthnError {
    /// The AWS exception name the front ends report (the names AWS uses for the same failures).
    pub fn exception(&self) -> &'static str {
        match self {
            AuthnError::Missing => "MissingAuthenticationTokenException",
            AuthnError::UnknownToken | AuthnError::BadCertificate(_) => "UnrecognizedClientException",
            AuthnError::MalformedAuthorization => "IncompleteSignatureException",
        }
    }
}

impl std::fmt::Display for AuthnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthnError::Missing => f.write_str(
                "Request is missing authentication: present a client certificate issued by the \
                 cluster CA, or a bearer token (authorization: Bearer <token>)",
            ),
            AuthnError::UnknownToken => f.write_str("The bearer token is not valid for this region"),
            AuthnError::MalformedAuthorization => {
                f.write_str("The authorization header must be 'Bearer <token>'")
            }
            AuthnError::BadCertificate(why) => f.write_str(why),
        }
    }
}

/// What a request presented.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// The verified client certificate chain of the connection, leaf first.
    pub certificates: Option<&'a [CertificateDer<'static>]>,
    /// The `authorization` header value.
    pub authorization: Option<&'a str>,
}

/// One configured bearer token: who it stands for and the SHA-256 of its value.
#[derive(Clone)]
struct Token {
    principal: String,
    digest: [u8; 32],
}

/// A node's authentication settings.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Vec<Token>,
    allow_anonymous: bool,
    admins: BTreeSet<String>,
    node_principal: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.iter().map(|t| t.principal.as_str()).collect::<Vec<_>>())
            .field("allow_anonymous", &self.allow_anonymous)
            .field("admins", &self.admins)
            .finish()
    }
}

impl Authenticator {
    /// Everyone is `anonymous`: a node without TLS and without tokens (dev mode, loopback).
    pub fn anonymous(region: &str) -> Self {
        Self {
            tokens: Vec::new(),
            allow_anonymous: true,
            admins: BTreeSet::new(),
            node_principal: node_principal(region),
        }
    }

    /// Only authenticated requests: by client certificate or by one of `tokens`.
    pub fn required(region: &str) -> Self {
        Self { allow_anonymous: false, ..Self::anonymous(region) }
    }

    /// Accepts the token whose SHA-256 digest is `digest` as `principal`.
    pub fn with_token_digest(mut self, principal: impl Into<String>, digest: [u8; 32]) -> Self {
        self.tokens.push(Token { principal: principal.into(), digest });
        self
    }

    /// Principals allowed to change the cluster (besides the region's own nodes).
    pub fn with_admins(mut self, admins: impl IntoIterator<Item = String>) -> Self {
        self.admins.extend(admins);
        self
    }

    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The principal behind a request.
    pub fn authenticate(&self, presented: Presented<'_>) -> Result<String, AuthnError> {
        if let Some(header) = presented.authorization {
            return self.token_principal(header);
        }
        if let Some(leaf) = presented.certificates.and_then(|chain| chain.first()) {
            return certificate_principal(leaf);
        }
        if self.allow_anonymous { Ok("anonymous".to_string()) } else { Err(AuthnError::Missing) }
    }

    fn token_principal(&self, header: &str) -> Result<String, AuthnError> {
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthnError::MalformedAuthorization)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, so the time taken does not say which one matched.
        let mut found = None;
        for entry in &self.tokens {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry.principal.clone());
            }
        }
        found.ok_or(AuthnError::UnknownToken)
    }

    /// Whether `principal` may use the cluster admin API: the region's nodes and the configured
    /// admins, or anyone on a node that accepts anonymous requests (nothing is authenticated
    /// there, so refusing would protect nothing).
    pub fn may_administer(&self, principal: &str) -> bool {
        self.allow_anonymous || principal == self.node_principal || self.admins.contains(principal)
    }
}

/// The SHA-256 digest of a token, as `[tokens]` stores it (`sha256:<hex>`).
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(params: rcgen::CertificateParams) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_uri_san_wins_over_the_common_name() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "billing");
        params.subject_alt_names.push(rcgen::SanType::URI("spiffe://corp/billing".try_into().unwrap()));
        assert_eq!(certificate_principal(&certificate(params)).unwrap(), "spiffe://corp/billing");
    }

    #[test]
    fn the_common_name_names_a_certificate_without_a_uri_san() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "billing");
        assert_eq!(certificate_principal(&certificate(params)).unwrap(), "billing");
    }

    #[test]
    fn a_certificate_without_a_name_or_garbage_is_refused() {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let mut params = params;
        params.distinguished_name = rcgen::DistinguishedName::new();
        assert!(matches!(certificate_principal(&certificate(params)), Err(AuthnError::BadCertificate(_))));
        assert!(matches!(certificate_principal(b"not a certificate"), Err(AuthnError::BadCertificate(_))));
    }

    #[test]
    fn tokens_name_their_principal_and_unknown_tokens_are_refused() {
        let auth = Authenticator::required("eu-1").with_token_digest("app1", token_digest("s3cret"));
        let with = |authorization| Presented { certificates: None, authorization: Some(authorization) };
        assert_eq!(auth.authenticate(with("Bearer s3cret")).unwrap(), "app1");
        assert_eq!(auth.authenticate(with("Bearer s3cre")), Err(AuthnError::UnknownToken));
        assert_eq!(auth.authenticate(with("Basic s3cret")), Err(AuthnError::MalformedAuthorization));
        assert_eq!(auth.authenticate(with("Bearer ")), Err(AuthnError::MalformedAuthorization));
        assert_eq!(auth.authenticate(Presented::default()), Err(AuthnError::Missing));
    }

    #[test]
    fn a_bad_token_is_refused_even_with_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "billing");
        let chain = vec![certificate(params)];
        let auth = Authenticator::required("eu-1");
        let presented = Presented { certificates: Some(&chain), authorization: Some("Bearer nope") };
        assert_eq!(auth.authenticate(presented), Err(AuthnError::UnknownToken));
        let presented = Presented { certificates: Some(&chain), authorization: None };
        assert_eq!(auth.authenticate(presented).unwrap(), "billing");
    }

    #[test]
    fn only_nodes_and_admins_administer_unless_everyone_is_anonymous() {
        let auth = Authenticator::required("eu-1").with_admins(["ops".to_string()]);
        assert!(auth.may_administer("kms://eu-1/node"));
        assert!(auth.may_administer("ops"));
        assert!(!auth.may_administer("kms://eu-2/node"));
        assert!(!auth.may_administer("app1"));
        assert!(Authenticator::anonymous("eu-1").may_administer("anonymous"));
        assert_eq!(Authenticator::anonymous("eu-1").authenticate(Presented::default()).unwrap(), "anonymous");
    }
}
