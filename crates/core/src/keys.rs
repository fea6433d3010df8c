//! Signing keys and the key ring: verification keys by `kid`, one signing key, and the
//! algorithm pinned per key so a token's header never chooses it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// PKCS#8 v1 DER prefix of an Ed25519 private key; jsonwebtoken's rust_crypto signer reads
/// the key with `SigningKey::from_pkcs8_der`, so the raw seed is wrapped in this.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key as long as the hash.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// A signing algorithm Tessera supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 signatures; the default.
    EdDSA,
    /// HMAC-SHA256 with a shared secret (`TESSERA_JWT_SECRET`).
    HS256,
}

impl Algorithm {
    /// The JOSE `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
        }
    }

    /// The matching jsonwebtoken algorithm.
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    /// Exact match only: `alg` values are case-sensitive (RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "HS256" => Ok(Self::HS256),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

/// Secret key material; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for persisting or signing.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A key as Postgres persists it: Ed25519 32-byte seed and 32-byte raw public key.
#[derive(Clone)]
pub struct StoredKey {
    /// Key id, carried in each token's header.
    pub kid: String,
    /// The algorithm pinned to this key.
    pub alg: Algorithm,
    /// The 32-byte Ed25519 seed.
    pub private_key: SecretBytes,
    /// The 32-byte raw Ed25519 public key.
    pub public_key: Vec<u8>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &self.private_key)
            .field("public_key", &hex::encode(&self.public_key))
            .finish()
    }
}

/// Why a key or key ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The signing kid names no key in the ring.
    #[error("signing key `{0}` is not among the keys")]
    UnknownSigningKey(String),
    /// Key bytes of the wrong length or not matching each other.
    #[error("key `{kid}` is invalid: {reason}")]
    InvalidKey {
        /// The offending key.
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two keys share a kid.
    #[error("duplicate key id `{0}`")]
    DuplicateKid(String),
    /// An algorithm name Tessera does not support.
    #[error("unsupported algorithm `{0}`; supported: EdDSA, HS256")]
    UnsupportedAlgorithm(String),
    /// An HS256 secret too short to resist brute force.
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes, got {0}")]
    WeakSecret(usize),
}

/// Generates a fresh Ed25519 key from the OS random source.
pub fn generate_ed25519(kid: String) -> StoredKey {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let public_key = SigningKey::from_bytes(&seed).verifying_key().to_bytes().to_vec();
    StoredKey { kid, alg: Algorithm::EdDSA, private_key: SecretBytes::new(seed.to_vec()), public_key }
}

/// A new key id that sorts by creation day, e.g. `k20250101-a1b2c3`.
pub fn new_kid(now: DateTime<Utc>) -> String {
    let mut suffix = [0u8; 3];
    OsRng.fill_bytes(&mut suffix);
    format!("k{}-{}", now.format("%Y%m%d"), hex::encode(suffix))
}

/// A verification key with its pinned algorithm.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    /// Raw Ed25519 public key for the JWKS; empty for HS256 so the secret is never published.
    public: Vec<u8>,
}

/// Verification keys by kid plus the one key new tokens are signed with.
#[derive(Clone)]
pub struct KeyRing {
    verify: BTreeMap<String, VerifyKey>,
    signing_kid: String,
    signing_alg: Algorithm,
    signing_key: EncodingKey,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing_kid", &self.signing_kid)
            .field("algorithm", &self.signing_alg)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

fn invalid(kid: &str, reason: &'static str) -> KeyError {
    KeyError::InvalidKey { kid: kid.to_owned(), reason }
}

/// Checks a stored Ed25519 key and returns its public key, and its seed when present.
fn check_ed25519(key: &StoredKey) -> Result<([u8; 32], Option<[u8; 32]>), KeyError> {
    if key.alg != Algorithm::EdDSA {
        return Err(invalid(&key.kid, "not an EdDSA key"));
    }
    let public: [u8; 32] =
        key.public_key.as_slice().try_into().map_err(|_| invalid(&key.kid, "public key must be 32 bytes"))?;
    // A point that does not decode would make every verification fail later; refuse it now.
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| invalid(&key.kid, "public key is not a valid point"))?;
    let private = key.private_key.expose();
    if private.is_empty() {
        // Retired keys may be kept for verification only.
        return Ok((public, None));
    }
    let seed: [u8; 32] = private.try_into().map_err(|_| invalid(&key.kid, "private key must be a 32-byte seed"))?;
    if SigningKey::from_bytes(&seed).verifying_key().to_bytes() != public {
        return Err(invalid(&key.kid, "public key does not match private key"));
    }
    Ok((public, Some(seed)))
}

fn pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + seed.len());
    der.extend_from_slice(&ED25519_PKCS8_PREFIX);
    der.extend_from_slice(seed);
    der
}

impl KeyRing {
    /// A ring of Ed25519 keys signing with `signing_kid`; the others only verify.
    pub fn ed25519(keys: &[StoredKey], signing_kid: &str) -> Result<Self, KeyError> {
        let mut verify = BTreeMap::new();
        let mut signing_key = None;
        for key in keys {
            let (public, seed) = check_ed25519(key)?;
            if key.kid == signing_kid {
                let seed = seed.ok_or_else(|| invalid(&key.kid, "signing key has no private key"))?;
                signing_key = Some(EncodingKey::from_ed_der(&pkcs8_der(&seed)));
            }
            // jsonwebtoken's EdDSA verifier takes the raw 32-byte public key.
            let entry =
                VerifyKey { alg: Algorithm::EdDSA, key: DecodingKey::from_ed_der(&public), public: public.to_vec() };
            if verify.insert(key.kid.clone(), entry).is_some() {
                return Err(KeyError::DuplicateKid(key.kid.clone()));
            }
        }
        let signing_key = signing_key.ok_or_else(|| KeyError::UnknownSigningKey(signing_kid.to_owned()))?;
        Ok(Self { verify, signing_kid: signing_kid.to_owned(), signing_alg: Algorithm::EdDSA, signing_key })
    }

    /// A ring with one HS256 shared secret of at least 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::WeakSecret(secret.len()));
        }
        let digest = hex::encode(Sha256::digest(secret));
        let kid = format!("hs256-{}", digest.get(..8).unwrap_or_default());
        let entry = VerifyKey { alg: Algorithm::HS256, key: DecodingKey::from_secret(secret), public: Vec::new() };
        Ok(Self {
            verify: BTreeMap::from([(kid.clone(), entry)]),
            signing_kid: kid,
            signing_alg: Algorithm::HS256,
            signing_key: EncodingKey::from_secret(secret),
        })
    }

    /// The kid new tokens carry.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// The signing key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.signing_alg
    }

    /// Every kid that verifies, sorted.
    pub fn kids(&self) -> Vec<String> {
        self.verify.keys().cloned().collect()
    }

    /// The public keys as a JWKS document; an HS256 ring publishes none.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .verify
            .iter()
            .filter(|(_, k)| k.alg == Algorithm::EdDSA)
            .map(|(kid, k)| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&k.public),
                    "kid": kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub(crate) fn verify_key(&self, kid: &str) -> Option<&VerifyKey> {
        self.verify.get(kid)
    }

    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.signing_key
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn generated_key_has_32_byte_seed_and_matching_public_key() {
        let key = generate_ed25519("k1".into());
        assert_eq!(key.private_key.expose().len(), 32);
        assert_eq!(key.public_key.len(), 32);
        assert!(check_ed25519(&key).is_ok());
    }

    #[test]
    fn pkcs8_wrapping_is_what_ed25519_dalek_reads() {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let key = generate_ed25519("k1".into());
        let seed: [u8; 32] = key.private_key.expose().try_into().unwrap();
        let parsed = SigningKey::from_pkcs8_der(&pkcs8_der(&seed)).unwrap();
        assert_eq!(parsed.verifying_key().to_bytes().to_vec(), key.public_key);
    }

    #[test]
    fn kid_carries_the_day_and_six_hex_chars() {
        let now = Utc.with_ymd_and_hms(2025, 3, 7, 12, 0, 0).unwrap();
        let kid = new_kid(now);
        assert!(kid.starts_with("k20250307-"), "{kid}");
        let suffix = kid.trim_start_matches("k20250307-");
        assert_eq!(suffix.len(), 6);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn ring_without_the_signing_kid_is_refused() {
        let key = generate_ed25519("k1".into());
        assert_eq!(KeyRing::ed25519(&[key], "k2").unwrap_err(), KeyError::UnknownSigningKey("k2".into()));
    }

    #[test]
    fn mismatched_key_pair_is_refused() {
        let mut key = generate_ed25519("k1".into());
        key.public_key = generate_ed25519("k2".into()).public_key;
        assert!(matches!(KeyRing::ed25519(&[key], "k1"), Err(KeyError::InvalidKey { .. })));
    }

    #[test]
    fn short_public_key_is_refused() {
        let mut key = generate_ed25519("k1".into());
        key.public_key.truncate(31);
        assert!(matches!(KeyRing::ed25519(&[key], "k1"), Err(KeyError::InvalidKey { .. })));
    }

    #[test]
    fn duplicate_kids_are_refused() {
        let a = generate_ed25519("k1".into());
        let b = generate_ed25519("k1".into());
        assert_eq!(KeyRing::ed25519(&[a, b], "k1").unwrap_err(), KeyError::DuplicateKid("k1".into()));
    }

    #[test]
    fn verification_only_key_needs_no_private_key() {
        let old = StoredKey { private_key: SecretBytes::new(Vec::new()), ..generate_ed25519("old".into()) };
        let new = generate_ed25519("new".into());
        let ring = KeyRing::ed25519(&[old, new], "new").unwrap();
        assert_eq!(ring.kids(), vec!["new".to_owned(), "old".to_owned()]);
    }

    #[test]
    fn short_hs256_secret_is_refused() {
        assert_eq!(KeyRing::hs256(&[7u8; 31]).unwrap_err(), KeyError::WeakSecret(31));
    }

    #[test]
    fn hs256_kid_is_derived_from_the_secret_hash() {
        let secret = [7u8; 32];
        let ring = KeyRing::hs256(&secret).unwrap();
        let expected = format!("hs256-{}", &hex::encode(Sha256::digest(secret))[..8]);
        assert_eq!(ring.signing_kid(), expected);
        assert_eq!(ring.algorithm(), Algorithm::HS256);
    }

    #[test]
    fn jwks_lists_every_ed25519_public_key() {
        let a = generate_ed25519("a".into());
        let b = generate_ed25519("b".into());
        let x = URL_SAFE_NO_PAD.encode(&a.public_key);
        let ring = KeyRing::ed25519(&[a, b], "b").unwrap();
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], "a");
        assert_eq!(keys[0]["x"], x.as_str());
        assert_eq!(keys[0]["kty"], "OKP");
        assert_eq!(keys[0]["crv"], "Ed25519");
        assert_eq!(keys[0]["alg"], "EdDSA");
        assert_eq!(keys[0]["use"], "sig");
    }

    #[test]
    fn hs256_jwks_publishes_nothing() {
        let ring = KeyRing::hs256(&[7u8; 32]).unwrap();
        assert_eq!(ring.jwks(), serde_json::json!({ "keys": [] }));
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let key = generate_ed25519("k1".into());
        let seed_hex = hex::encode(key.private_key.expose());
        let printed = format!("{key:?} {:?}", KeyRing::ed25519(std::slice::from_ref(&key), "k1").unwrap());
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains(&seed_hex));
    }

    #[test]
    fn algorithm_names_round_trip_exactly() {
        assert_eq!("EdDSA".parse::<Algorithm>().unwrap(), Algorithm::EdDSA);
        assert_eq!(Algorithm::HS256.as_str().parse::<Algorithm>().unwrap(), Algorithm::HS256);
        assert!("hs256".parse::<Algorithm>().is_err());
        assert!("none".parse::<Algorithm>().is_err());
    }
}
