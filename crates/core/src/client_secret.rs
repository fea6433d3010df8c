//! Introspection credentials of direct servers (issue #15): a client id and a 256-bit secret,
//! kept only as its SHA-256 (the secret is random, so no password stretching is needed) and
//! compared in constant time.

use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::codec::constant_time_eq;

/// Prefix of a client id, so it is recognisable in logs and configs.
const CLIENT_ID_PREFIX: &str = "tsc_";
/// Prefix of a secret, so secret scanners can find leaked ones.
const SECRET_PREFIX: &str = "tss_";

/// A freshly made pair; the secret is shown once and then only its hash is kept.
#[derive(Clone)]
pub struct ClientCredential {
    /// Public client id.
    pub client_id: String,
    /// The secret, in the clear.
    pub secret: String,
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredential").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl ClientCredential {
    /// A new random pair.
    pub fn generate() -> Self {
        let mut id = [0u8; 12];
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(&mut secret);
        Self {
            client_id: format!("{CLIENT_ID_PREFIX}{}", hex::encode(id)),
            secret: format!("{SECRET_PREFIX}{}", hex::encode(secret)),
        }
    }
}

/// What is stored of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` is the one whose hash is `stored`, in time independent of where they differ.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    constant_time_eq(&hash_secret(secret), stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_matches_its_hash_and_no_other() {
        let c = ClientCredential::generate();
        let stored = hash_secret(&c.secret);
        assert!(secret_matches(&c.secret, &stored));
        assert!(!secret_matches("tss_wrong", &stored));
        assert!(!format!("{c:?}").contains(&c.secret));
    }
}
