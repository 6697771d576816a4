//! Who is calling. Every `Kms` method takes the caller so that authorization and audit (a later
//! layer) plug in without changing any operation's signature.

/// The authenticated identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable principal name, e.g. a certificate subject or `anonymous` in dev mode.
    pub principal: String,
}

impl Caller {
    /// The identity of unauthenticated local calls (dev mode on loopback).
    pub fn anonymous() -> Self {
        Self { principal: "anonymous".into() }
    }
}
