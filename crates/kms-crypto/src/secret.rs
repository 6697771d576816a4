//! Secret byte strings: wiped from memory on drop and never printed.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes that must not outlive their use or end up in a log: key material, plaintext, unwrapped
/// data keys.
///
/// The buffer is overwritten with zeros when the value is dropped. `Debug` prints only the
/// length; there is deliberately no `Display`, `PartialEq` (use [`SecretBytes::ct_eq`], which
/// does not leak a matching prefix through timing) or serde support.
///
/// Zeroizing cannot reach copies made before the bytes were handed over (for example by a `Vec`
/// that reallocated while being filled): build the `Vec` at its final capacity before wrapping.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when the `SecretBytes` is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A zero-filled secret of `len` bytes, to be filled in place (no reallocation later).
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0; len])
    }

    /// Borrow the secret bytes. Named so that every use is easy to find in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access, for filling a buffer in place.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Shorten in place. The cut-off tail stays in the allocation until drop, where the whole
    /// capacity is wiped.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compare with other bytes in time independent of where they differ (it does depend on the
    /// lengths, which are not secret here).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::new(vec![0xAB; 5]);
        let shown = format!("{s:?} {s:#?}");
        assert!(shown.contains("SecretBytes(<redacted 5 bytes>)"));
        assert!(!shown.to_lowercase().contains("ab"));
        assert!(!shown.contains("171"));
    }

    #[test]
    fn ct_eq_compares_contents_and_length() {
        let s = SecretBytes::new(vec![1, 2, 3]);
        assert!(s.ct_eq(&[1, 2, 3]));
        assert!(!s.ct_eq(&[1, 2, 4]));
        assert!(!s.ct_eq(&[1, 2]));
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        let mut s = SecretBytes::new(vec![7; 8]);
        s.zeroize();
        assert!(s.expose().iter().all(|&b| b == 0));
    }
}
