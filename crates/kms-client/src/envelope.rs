//! Envelope encryption of streams (see the crate documentation).
