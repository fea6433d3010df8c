//! Encoding and strict decoding of Tessera JWTs.
//!
//! The header is inspected by us before any signature work, so a token can never choose
//! its own algorithm or key; time-based claims are checked against the caller's `now`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ErrorCode;
use crate::claims::{Audience, Claims};
use crate::keys::KeyRing;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// The `typ` header of every Tessera token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";

/// What a valid token must say about who issued it and for whom.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    /// Expected `iss`.
    pub issuer: String,
    /// This resource; `aud` must contain it.
    pub audience: String,
    /// Allowed clock skew, in seconds.
    pub leeway_secs: i64,
}

impl VerifyPolicy {
    /// A policy with 30 s of leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), audience: audience.into(), leeway_secs: 30 }
    }
}

/// Why a token failed to decode or verify. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than 4 KiB")]
    TooLarge,
    /// Not a well-formed JWT.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgorithmNone,
    /// The header's `alg` is not the one pinned to its key.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// No key with that `kid` (or no `kid`).
    #[error("the token was not signed by a known key")]
    UnknownKey,
    /// A `crit` header we do not understand.
    #[error("the token has critical header parameters that are not supported")]
    UnsupportedCritical,
    /// An embedded or referenced key (`jwk`, `jku`, `x5u`, `x5c`).
    #[error("tokens carrying their own keys are not accepted")]
    EmbeddedKey,
    /// `typ` is not `at+jwt`.
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Another issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// Not for this resource.
    #[error("the token is not meant for this resource")]
    WrongAudience,
    /// Signing failed (a key problem on our side).
    #[error("signing failed: {0}")]
    Signing(String),
}

impl CodecError {
    /// Stable snake_case reason code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge => ErrorCode::TooLarge,
            Self::Malformed | Self::MissingClaim(_) => ErrorCode::Malformed,
            Self::AlgorithmNone | Self::AlgorithmMismatch => ErrorCode::AlgorithmNotAllowed,
            Self::UnknownKey => ErrorCode::UnknownKey,
            Self::UnsupportedCritical => ErrorCode::UnsupportedCritical,
            Self::EmbeddedKey => ErrorCode::EmbeddedKey,
            Self::WrongType => ErrorCode::WrongType,
            Self::InvalidSignature => ErrorCode::InvalidSignature,
            Self::Expired => ErrorCode::Expired,
            Self::NotYetValid => ErrorCode::NotYetValid,
            Self::WrongIssuer => ErrorCode::WrongIssuer,
            Self::WrongAudience => ErrorCode::WrongAudience,
            Self::Signing(_) => ErrorCode::SigningFailed,
        }
    }
}

/// Signs `claims` with the ring's signing key.
pub fn encode(ring: &KeyRing, claims: &Claims) -> Result<String, CodecError> {
    let mut header = Header::new(ring.algorithm().jwt());
    header.typ = Some(TOKEN_TYPE.to_owned());
    header.kid = Some(ring.signing_kid().to_owned());
    jsonwebtoken::encode(&header, claims, ring.signing_key()).map_err(|e| CodecError::Signing(e.to_string()))
}

/// The header fields we look at; anything dangerous is refused by presence.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
    jwk: Option<serde_json::Value>,
    jku: Option<serde_json::Value>,
    x5u: Option<serde_json::Value>,
    x5c: Option<serde_json::Value>,
}

/// Claims as they may arrive: every field optional, so a missing one has a precise error.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<uuid::Uuid>,
    scope: Option<String>,
    client_id: Option<String>,
}

/// Verifies `token` against the ring and policy at `now` (seconds since the epoch).
pub fn decode(ring: &KeyRing, token: &str, policy: &VerifyPolicy, now: i64) -> Result<Claims, CodecError> {
    check_claims(verified_claims(ring, token)?, policy, Some(&policy.audience), now)
}

/// Verifies `token` like [`decode`] except for its audience: the token is ours, whichever
/// resource it was issued for. Only for the issuer's own bookkeeping (RFC 7009 revocation of
/// a grant for any resource); never to admit a request, which is [`decode`]'s job.
pub fn decode_any_audience(ring: &KeyRing, token: &str, issuer: &str, now: i64) -> Result<Claims, CodecError> {
    check_claims(verified_claims(ring, token)?, &VerifyPolicy::new(issuer, String::new()), None, now)
}

/// The claims of `token` once its header passed our checks and its signature verified.
fn verified_claims(ring: &KeyRing, token: &str) -> Result<RawClaims, CodecError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(CodecError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(CodecError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| CodecError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&header_json).map_err(|_| CodecError::Malformed)?;
    let alg = header.alg.ok_or(CodecError::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(CodecError::AlgorithmNone);
    }
    let key = header.kid.as_deref().and_then(|kid| ring.verify_key(kid)).ok_or(CodecError::UnknownKey)?;
    // The key decides the algorithm; the header must merely agree with it, byte for byte.
    if alg != key.alg.as_str() {
        return Err(CodecError::AlgorithmMismatch);
    }
    if header.crit.is_some() {
        return Err(CodecError::UnsupportedCritical);
    }
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
        return Err(CodecError::EmbeddedKey);
    }
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(CodecError::WrongType);
    }
    let mut validation = Validation::new(key.alg.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<RawClaims>(token, &key.key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => CodecError::InvalidSignature,
        _ => CodecError::Malformed,
    })?;
    Ok(data.claims)
}

/// Checks the claims against `policy`; `aud` must contain `audience` when one is given.
fn check_claims(raw: RawClaims, policy: &VerifyPolicy, audience: Option<&str>, now: i64) -> Result<Claims, CodecError> {
    let exp = raw.exp.ok_or(CodecError::MissingClaim("exp"))?;
    let iss = raw.iss.ok_or(CodecError::MissingClaim("iss"))?;
    let aud = raw.aud.ok_or(CodecError::MissingClaim("aud"))?;
    let sub = raw.sub.ok_or(CodecError::MissingClaim("sub"))?;
    let jti = raw.jti.ok_or(CodecError::MissingClaim("jti"))?;
    let iat = raw.iat.unwrap_or(0);
    let nbf = raw.nbf.unwrap_or(iat);
    if exp <= now - policy.leeway_secs {
        return Err(CodecError::Expired);
    }
    if nbf > now + policy.leeway_secs {
        return Err(CodecError::NotYetValid);
    }
    if iss != policy.issuer {
        return Err(CodecError::WrongIssuer);
    }
    if audience.is_some_and(|audience| !aud.contains(audience)) {
        return Err(CodecError::WrongAudience);
    }
    Ok(Claims {
        iss,
        sub,
        aud,
        exp,
        iat,
        nbf,
        jti,
        scope: raw.scope.unwrap_or_default(),
        client_id: raw.client_id.unwrap_or_default(),
    })
}

/// SHA-256 of the token text: what the database stores and caches are keyed by.
pub fn token_sha256(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// The SHA-256 of a bearer token: stored and compared in its place. Equality is constant
/// time, so a comparison against a stored hash leaks nothing through its duration.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// A hash read back from storage; `None` unless it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

// Hashing the bytes agrees with the equality above (equal hashes have equal bytes).
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths: the one
/// comparison of secrets and their hashes (token hashes, CSRF tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
