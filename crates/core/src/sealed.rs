//! Secrets at rest (upstream servers' credential headers): XChaCha20-Poly1305 with a random
//! 24-byte nonce per value, bound by associated data to where the value belongs, so a
//! ciphertext copied to another row does not open.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;

/// Length of a sealing key, in bytes.
pub const SEAL_KEY_LEN: usize = 32;
/// Length of a nonce, in bytes.
pub const NONCE_LEN: usize = 24;

/// Why a key could not be read or a value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key text is not 32 bytes in base64 (or 64 hex digits).
    #[error("the secret key must be 32 bytes, written as base64 or 64 hex digits")]
    BadKey,
    /// The value was sealed with another key, or changed, or moved to another row.
    #[error("a stored secret could not be decrypted (wrong TESSERA_SECRET_KEY or tampered data)")]
    Open,
}

/// The key that seals secrets at rest. Its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SealKey([u8; SEAL_KEY_LEN]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

impl SealKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Self {
        let mut key = [0u8; SEAL_KEY_LEN];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Reads a key written as base64 (padded or not) or hex.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == SEAL_KEY_LEN * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| SealError::BadKey)?
        } else {
            STANDARD_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| SealError::BadKey)?
        };
        Ok(Self(bytes.try_into().map_err(|_| SealError::BadKey)?))
    }

    /// The key as unpadded base64, for the key file.
    pub fn to_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.0)
    }

    /// Seals `plaintext` for the place named by `context` (e.g. server id and header name).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        // Encryption with a valid key and nonce length cannot fail; keep no panic path anyway.
        let ciphertext =
            cipher.encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context }).unwrap_or_default();
        Sealed { nonce: nonce.to_vec(), ciphertext }
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().map_err(|_| SealError::Open)?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: context })
            .map_err(|_| SealError::Open)
    }
}

/// A sealed value as stored: its nonce and ciphertext (with the tag).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and authentication tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_context() {
        let key = SealKey::generate();
        let sealed = key.seal(b"Bearer upstream-secret", b"s1/authorization");
        assert_eq!(key.open(&sealed, b"s1/authorization").unwrap(), b"Bearer upstream-secret");
    }

    #[test]
    fn the_ciphertext_does_not_contain_the_plaintext() {
        let sealed = SealKey::generate().seal(b"upstream-secret-value", b"ctx");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn another_key_or_context_does_not_open_it() {
        let key = SealKey::generate();
        let sealed = key.seal(b"v", b"s1/x-api-key");
        assert_eq!(SealKey::generate().open(&sealed, b"s1/x-api-key"), Err(SealError::Open));
        assert_eq!(key.open(&sealed, b"s2/x-api-key"), Err(SealError::Open));
    }

    #[test]
    fn keys_read_back_from_base64_and_hex() {
        let key = SealKey::generate();
        assert_eq!(SealKey::parse(&key.to_base64()).unwrap().0, key.0);
        assert_eq!(SealKey::parse(&hex::encode(key.0)).unwrap().0, key.0);
        assert_eq!(SealKey::parse("short").unwrap_err(), SealError::BadKey);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SealKey::generate();
        assert_eq!(format!("{key:?}"), "SealKey([redacted])");
    }
}
