//! The validator's decision, as a pure function of the claims, the row, and the clock.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::ErrorCode;
use crate::claims::Claims;
use crate::codec::{CodecError, TokenHash};
use crate::scope::ScopeSet;

/// Why a token stopped being valid before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// Revoked by a person or script.
    Revoked,
    /// Replaced by rotation.
    Rotated,
}

impl RevocationKind {
    /// The stored text (`revocations.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Rotated => "rotated",
        }
    }

    /// The kind stored as `s`; anything unknown counts as a revocation, the safe reading.
    pub fn from_stored(s: &str) -> Self {
        if s == "rotated" { Self::Rotated } else { Self::Revoked }
    }
}

/// A revocation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Revoked or rotated.
    pub kind: RevocationKind,
    /// When it takes effect (a rotation's grace end).
    pub effective_at: DateTime<Utc>,
}

/// What the database says about a token now.
#[derive(Debug, Clone)]
pub struct TokenState {
    /// Token id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Human name.
    pub name: String,
    /// SHA-256 of the secret.
    pub token_sha256: TokenHash,
    /// Currently granted scopes (may be narrower than the JWT's).
    pub scopes: ScopeSet,
    /// Current expiry (may be earlier than the JWT's).
    pub expires_at: DateTime<Utc>,
    /// Requests per hour.
    pub rate_limit_per_hour: Option<i32>,
    /// Requests per hour shared by all of the owner's tokens.
    pub user_rate_limit_per_hour: Option<i32>,
    /// Revocation, if any.
    pub revocation: Option<Revocation>,
    /// Whether the owner's account is disabled.
    pub user_disabled: bool,
}

/// An accepted token: who it acts for and what it may do.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// Token id.
    pub token_id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Token name.
    pub name: String,
    /// Granted scopes: the JWT's, narrowed by the row.
    pub granted: ScopeSet,
    /// Granted scopes expanded by inheritance.
    pub effective: ScopeSet,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour.
    pub rate_limit_per_hour: Option<i32>,
    /// Requests per hour shared by all of the owner's tokens.
    pub user_rate_limit_per_hour: Option<i32>,
}

/// Why a well-signed token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No row: revoked and deleted, or never issued here.
    NotFound,
    /// The row belongs to another secret.
    HashMismatch,
    /// The row belongs to another user.
    SubjectMismatch,
    /// Past the row's expiry.
    Expired,
    /// Revoked.
    Revoked,
    /// Rotated and past the grace period.
    Rotated,
    /// The owner's account is disabled.
    UserDisabled,
}

impl DenyReason {
    /// Stable snake_case reason code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::HashMismatch => ErrorCode::HashMismatch,
            Self::SubjectMismatch => ErrorCode::SubjectMismatch,
            Self::Expired => ErrorCode::Expired,
            Self::Revoked => ErrorCode::Revoked,
            Self::Rotated => ErrorCode::Rotated,
            Self::UserDisabled => ErrorCode::UserDisabled,
        }
    }

    /// Human sentence.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "token not found (revoked or deleted)",
            Self::HashMismatch | Self::SubjectMismatch => "the token does not match its record",
            Self::Expired => "the token has expired",
            Self::Revoked => "the token has been revoked",
            Self::Rotated => "the token was rotated and its grace period has ended",
            Self::UserDisabled => "the token's owner is disabled",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for DenyReason {}

/// Every reason a token can be refused, from either stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The JWT itself is bad.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The row says no.
    #[error(transparent)]
    Denied(#[from] DenyReason),
}

impl Rejection {
    /// Stable snake_case reason code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Codec(e) => e.code(),
            Self::Denied(r) => r.code(),
        }
    }

    /// Human sentence (never containing the token).
    pub fn message(&self) -> String {
        match self {
            Self::Codec(e) => e.to_string(),
            Self::Denied(r) => r.message().to_owned(),
        }
    }
}

/// Decides whether a token whose signature and claims verified is active at `now`.
pub fn decide(
    claims: &Claims,
    presented_sha256: &TokenHash,
    state: Option<&TokenState>,
    now: DateTime<Utc>,
) -> Result<Principal, DenyReason> {
    let state = state.ok_or(DenyReason::NotFound)?;
    if *presented_sha256 != state.token_sha256 {
        return Err(DenyReason::HashMismatch);
    }
    if claims.sub.parse::<Uuid>().ok() != Some(state.user_id) || claims.jti != state.id {
        return Err(DenyReason::SubjectMismatch);
    }
    if state.user_disabled {
        return Err(DenyReason::UserDisabled);
    }
    // A rotation's grace end lies in the future: until then the old token still works.
    if let Some(revocation) = &state.revocation
        && revocation.effective_at <= now
    {
        return Err(match revocation.kind {
            RevocationKind::Revoked => DenyReason::Revoked,
            RevocationKind::Rotated => DenyReason::Rotated,
        });
    }
    if state.expires_at <= now {
        return Err(DenyReason::Expired);
    }
    // The row may narrow to anything the JWT implied (write:x narrowed to read:x), never more.
    let granted = ScopeSet::parse_lenient(&claims.scope).expand().intersection(&state.scopes);
    Ok(Principal {
        token_id: state.id,
        user_id: state.user_id,
        name: state.name.clone(),
        effective: granted.expand(),
        granted,
        expires_at: state.expires_at,
        rate_limit_per_hour: state.rate_limit_per_hour,
        user_rate_limit_per_hour: state.user_rate_limit_per_hour,
    })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
