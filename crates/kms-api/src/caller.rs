//! Who is calling, and about which request. Every `Kms` method takes the caller so that
//! authorization and audit plug in without changing any operation's signature.

use std::net::SocketAddr;

/// The authenticated identity behind a request, with what audit needs to name the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable principal name: a client certificate's URI SAN or CN, a bearer token's principal,
    /// an AWS access key's principal, or `anonymous` in dev mode.
    pub principal: String,
    /// The network peer the request came from, when the front end knows it.
    pub source: Option<SocketAddr>,
    /// Unique per request; returned to the client (`x-amzn-RequestId`, `x-kms-request-id`).
    pub request_id: String,
}

impl Caller {
    /// A caller with a fresh request id.
    pub fn new(principal: impl Into<String>) -> Self {
        Self { principal: principal.into(), source: None, request_id: uuid::Uuid::new_v4().to_string() }
    }

    /// The identity of unauthenticated local calls (dev mode on loopback).
    pub fn anonymous() -> Self {
        Self::new("anonymous")
    }

    pub fn with_source(mut self, source: Option<SocketAddr>) -> Self {
        self.source = source;
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }
}
