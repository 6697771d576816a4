//! Randomness from the operating system's CSPRNG, and nothing else: no userspace generator whose
//! state could be cloned by a fork or a VM snapshot.

use crate::{CryptoError, SecretBytes};

/// `n` random bytes from the OS CSPRNG, in a zeroizing buffer (they are usually key material).
pub fn random_bytes(n: usize) -> Result<SecretBytes, CryptoError> {
    let mut out = SecretBytes::zeroed(n);
    fill(out.expose_mut())?;
    Ok(out)
}

/// A random array that is not secret (nonces).
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    // getrandom's error names the OS failure (an errno), which reveals nothing secret.
    getrandom::fill(buf).map_err(|e| CryptoError::Internal(format!("OS random number generator failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_distinct_outputs() {
        assert_eq!(random_bytes(0).unwrap().len(), 0);
        let a = random_bytes(32).unwrap();
        let b = random_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        // 2^-256 chance of a false failure.
        assert!(!a.ct_eq(b.expose()));
        assert_ne!(random_array::<12>().unwrap(), random_array::<12>().unwrap());
    }
}
