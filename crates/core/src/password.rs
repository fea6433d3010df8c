//! Password hashing with argon2id.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A password in memory; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: String) -> Self {
        Self(p)
    }

    /// The text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(p: String) -> Self {
        Self(p)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Hashing failed (only on a broken random source).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// Hashes with argon2id and a random salt; returns the PHC string.
pub fn hash_password(p: &Password) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(p.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Whether `p` matches the PHC string (false for a malformed hash).
pub fn verify_password(p: &Password, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(p.0.as_bytes(), &h).is_ok())
}

/// Spends about as long as a real check, so unknown accounts cannot be told by timing.
pub fn dummy_verify(p: &Password) {
    let _ = verify_password(p, DUMMY_PHC);
}

/// A well-formed hash with the default parameters, so checking against it costs a full
/// argon2id run; a test keeps its parameters equal to those real hashes use.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Lw7Hpg7l6XoZ3Fs9tCGyCCmQG8kK4Sj3t5w8tC8GmM";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let p = Password::new("correct horse".into());
        let h = hash_password(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&p, &h));
    }

    #[test]
    fn wrong_password_does_not_verify() {
        let h = hash_password(&Password::new("right".into())).unwrap();
        assert!(!verify_password(&Password::new("wrong".into()), &h));
    }

    #[test]
    fn dummy_hash_costs_the_same_as_a_real_one() {
        let dummy = PasswordHash::new(DUMMY_PHC).unwrap();
        let real_phc = hash_password(&Password::new("x".into())).unwrap();
        let real = PasswordHash::new(&real_phc).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(argon2::Params::try_from(&dummy).unwrap(), argon2::Params::try_from(&real).unwrap());
        dummy_verify(&Password::new("anything".into()));
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Password::new("hunter2".into())), "Password([redacted])");
    }

    #[test]
    fn malformed_hash_does_not_verify() {
        assert!(!verify_password(&Password::new("x".into()), "not-a-hash"));
    }
}
