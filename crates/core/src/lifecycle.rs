//! The token lifecycle's rules: who may see, issue, change, rotate and revoke which token.
//! Pure functions of the requester, the token's facts and `now`, each failing with a
//! [`TokenRuleViolation`] that every face maps in one place.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::scope::ScopeSet;
use crate::values::RateLimit;

/// A bearer token acting as an API credential: the bounds of whatever it makes.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The credential token's id (the maker of what it mints).
    pub token_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its effective (inheritance-expanded) scopes.
    pub effective: ScopeSet,
    /// Its expiry: nothing it makes outlives it.
    pub expires_at: DateTime<Utc>,
    /// Its rate limit: nothing it makes is looser. `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// Who asks for a lifecycle change.
#[derive(Debug, Clone)]
pub enum Requester {
    /// The operator at the command line: every user's tokens, `mcp:admin` grantable.
    Cli,
    /// A person signed in to the web UI; admins see every user's tokens.
    Person {
        /// The account.
        user_id: Uuid,
        /// Whether the account is an administrator.
        is_admin: bool,
    },
    /// A script with a bearer token; cross-user power only with `mcp:admin` in the token.
    Token(Credential),
}

impl Requester {
    /// The acting user, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::Cli => None,
            Self::Person { user_id, .. } => Some(*user_id),
            Self::Token(c) => Some(c.user_id),
        }
    }

    /// The token acting as credential, if any.
    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            Self::Token(c) => Some(c.token_id),
            _ => None,
        }
    }

    /// Whether the requester sees and manages every user's tokens.
    pub fn sees_everyone(&self) -> bool {
        match self {
            Self::Cli => true,
            Self::Person { is_admin, .. } => *is_admin,
            // An admin's ordinary tokens are ordinary: the token itself must carry mcp:admin.
            Self::Token(c) => c.effective.has_admin(),
        }
    }

    /// Whether the requester may see (and so act on) a token owned by `owner`.
    pub fn can_see(&self, owner: Uuid) -> bool {
        self.sees_everyone() || self.user_id() == Some(owner)
    }

    /// The owner whose tokens a listing is limited to; `None` for everyone's.
    pub fn list_scope(&self) -> Option<Uuid> {
        if self.sees_everyone() { None } else { self.user_id() }
    }
}

/// Why a lifecycle change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRuleViolation {
    /// The token is expired, revoked or rotated.
    #[error("only an active token can be changed or rotated")]
    Inactive,
    /// The token was already replaced by rotation.
    #[error("this token was already rotated; rotate its replacement instead")]
    AlreadyRotated,
    /// A change would add scopes the token was not granted.
    #[error("scopes can only be narrowed; not granted to this token: {}", missing.join(" "))]
    WidensScopes {
        /// The scopes it would add.
        missing: Vec<String>,
    },
    /// A change would move the expiry later.
    #[error("expiry can only be shortened; issue a new token for a longer life")]
    ExtendsExpiry,
    /// A new expiry at or before now.
    #[error("the new expiry must be in the future; revoke the token to end it now")]
    ExpiryInPast,
    /// `mcp:admin` asked for through the API or UI.
    #[error("mcp:admin cannot be granted through the API; it is granted by the CLI only (`tessera user promote`)")]
    AdminScopeViaApi,
    /// A token credential asked for scopes it does not hold.
    #[error("this token cannot grant scopes it does not hold: {}", missing.join(" "))]
    ExceedsCredential {
        /// The scopes beyond the credential's.
        missing: Vec<String>,
    },
    /// A token credential asked to set a looser rate limit than its own.
    #[error("a token cannot set a rate limit looser than its own ({credential_limit} per hour)")]
    LooserThanCredential {
        /// The credential's own limit.
        credential_limit: RateLimit,
    },
    /// Rotation of a token owned by someone else: its new secret would be another identity's.
    #[error("only a token's owner can rotate it (the new secret would act as another user); revoke it instead")]
    RotateOthersToken,
    /// An expiry computation left the calendar.
    #[error("the expiry is out of range")]
    ExpiryOutOfRange,
    /// An OAuth grant's secret belongs to its client, which renews it with its refresh token.
    #[error("an OAuth grant can't be rotated: its client renews its access tokens itself; revoke it to end it")]
    RotateOAuthGrant,
    /// Scopes of a direct server together with scopes for anything else. A direct server
    /// sees the token itself, so a token good for more than direct servers would let it
    /// replay the token there.
    #[error(
        "a token for a direct server ({}) can carry only direct servers' scopes, because that server sees the token; issue a separate token for: {}",
        direct.join(", "),
        others.join(" ")
    )]
    DirectServerScopesMixed {
        /// The direct servers the scopes name.
        direct: Vec<String>,
        /// The scopes that are not a direct server's.
        others: Vec<String>,
    },
    /// Scopes beyond what the owner's teams allow them to hold.
    #[error("beyond what the owner may hold (teams' allowances bound it; mcp:admin and scim are for administrators only): {}", missing.join(" "))]
    NotAllowed {
        /// The scopes outside the allowance.
        missing: Vec<String>,
    },
}

/// A revocation Tessera makes by itself; a person's reason is a free-text
/// [`RevokeReason`](crate::values::RevokeReason). Its reason is stored and sent like theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomaticRevocation {
    /// A token that minted this one was revoked (revocation cascades).
    MakerRevoked,
    /// An OAuth grant whose used refresh token came back (reuse detection).
    RefreshReused,
    /// The OAuth client revoked its own grant (RFC 7009).
    ClientRevoked,
    /// An authorization code was presented twice: the grant it made is revoked.
    CodeReplayed,
    /// The same person granted the same client access to the same resource again.
    GrantReplaced,
    /// The owner's allowance shrank and left the token no scope.
    AllowanceLost,
    /// The owner's account was deactivated.
    OwnerDeactivated,
}

impl AutomaticRevocation {
    /// The revocation's reason as stored, audited and sent in `token.revoked`.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MakerRevoked => "its maker was revoked",
            Self::RefreshReused => "a used refresh token was presented again",
            Self::ClientRevoked => "revoked by the OAuth client",
            Self::CodeReplayed => "authorization code replayed",
            Self::GrantReplaced => "replaced by a new grant to the same client",
            Self::AllowanceLost => "none of its scopes is in its owner's allowance any more",
            Self::OwnerDeactivated => "its owner's account was deactivated",
        }
    }
}

/// Where a token stands, as the rules need it.
#[derive(Debug, Clone)]
pub struct TokenFacts {
    /// Owner.
    pub user_id: Uuid,
    /// Granted scopes as stored.
    pub scopes: ScopeSet,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// Rate limit; `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Whether it is usable now (not expired, not revoked, rotated within grace included).
    pub active: bool,
    /// Whether it is an OAuth grant (its access tokens belong to an OAuth client).
    pub oauth_grant: bool,
    /// Whether rotation already replaced it.
    pub replaced: bool,
}

/// What a new token asks for.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// Scopes.
    pub scopes: &'a ScopeSet,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Rate limit; `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// May `who` issue a token with `grant`, and with which expiry and limit? A token made by a
/// token is bounded by its maker: it expires no later and its limit is no looser (unlimited
/// only under an unlimited maker), whatever was asked; the answer shows what was granted.
pub fn check_issue(who: &Requester, grant: &Grant<'_>) -> Result<Bounds, TokenRuleViolation> {
    if grant.scopes.has_admin() && !matches!(who, Requester::Cli) {
        return Err(TokenRuleViolation::AdminScopeViaApi);
    }
    let mut bounded = Bounds { expires_at: grant.expires_at, rate_limit: grant.rate_limit };
    if let Requester::Token(maker) = who {
        within_credential(maker, grant.scopes)?;
        bounded = bounded.within(maker);
    }
    Ok(bounded)
}

/// What a person may hold: everything (administrators), every scope but the administrators'
/// own (members of a team whose allowance was never narrowed), or the union of their teams'
/// allowances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    /// No bound: an administrator.
    Unbounded,
    /// Every scope except [`ADMIN_ONLY`](crate::scope::ADMIN_ONLY) (`mcp:admin`, `scim`).
    Everything,
    /// At most these scopes (with the usual inheritance: `write:S` brings `read:S` and
    /// covers `call:S/TOOL`).
    Scopes(ScopeSet),
}

impl Allowance {
    /// Scopes of `scopes` outside this allowance (`mcp:admin` and `scim` are never in one).
    pub fn missing(&self, scopes: &ScopeSet) -> Vec<String> {
        match self {
            Self::Unbounded => Vec::new(),
            Self::Everything => scopes.admin_only(),
            Self::Scopes(allowed) => {
                let mut missing = scopes.missing_from(&allowed.expand());
                // An allowance never holds them; a row written by hand must not lend them.
                missing.extend(scopes.admin_only());
                missing.sort();
                missing.dedup();
                missing
            }
        }
    }

    /// `scopes` without what lies outside this allowance, and what that was (empty when
    /// nothing had to go).
    pub fn narrow(&self, scopes: &ScopeSet) -> (ScopeSet, Vec<String>) {
        let outside = self.missing(scopes);
        let kept = scopes.iter().filter(|s| !outside.iter().any(|o| o == s.as_str())).cloned().collect();
        (ScopeSet::from_scopes(kept), outside)
    }
}

/// May a token of an owner with `allowance` carry `scopes`? Every minting door asks: the
/// token form, the API, the CLI, child tokens, OAuth consent and rotation.
pub fn check_allowance(allowance: &Allowance, scopes: &ScopeSet) -> Result<(), TokenRuleViolation> {
    let missing = allowance.missing(scopes);
    if missing.is_empty() { Ok(()) } else { Err(TokenRuleViolation::NotAllowed { missing }) }
}

/// May a token carry `scopes`, given which servers are direct (`direct`, by name)? A direct
/// server checks the token itself (introspection or JWKS), so it holds the bearer secret: a
/// token naming a direct server may name direct servers only, never `/mcp`, a gateway server
/// or a built-in scope (`read:tokens` would make it an `/api/v2` credential). Every minting
/// path asks this: a pasted token, an OAuth grant, a rotation.
pub fn check_direct_scopes(scopes: &ScopeSet, direct: &BTreeSet<String>) -> Result<(), TokenRuleViolation> {
    let named: Vec<String> = scopes.servers().into_iter().filter(|s| direct.contains(s)).collect();
    if named.is_empty() {
        return Ok(());
    }
    let others: Vec<String> = scopes
        .iter()
        .filter(|s| !s.server_scope().is_some_and(|ss| direct.contains(ss.server.as_str())))
        .map(|s| s.as_str().to_owned())
        .collect();
    if others.is_empty() { Ok(()) } else { Err(TokenRuleViolation::DirectServerScopesMixed { direct: named, others }) }
}

/// The expiry and rate limit a new token gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Rate limit; `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl Bounds {
    /// These bounds, no later and no looser than `maker`'s own.
    fn within(self, maker: &Credential) -> Self {
        let rate_limit = match (self.rate_limit, maker.rate_limit) {
            (Some(asked), Some(own)) => Some(asked.min(own)),
            (asked, own) => asked.or(own),
        };
        Self { expires_at: self.expires_at.min(maker.expires_at), rate_limit }
    }
}

/// A requested change to a token; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Change<'a> {
    /// Narrower scopes.
    pub scopes: Option<&'a ScopeSet>,
    /// Earlier expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// New limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
}

/// May `who` apply `change` to the token described by `facts` at `now`?
pub fn check_change(
    who: &Requester,
    facts: &TokenFacts,
    change: &Change<'_>,
    now: DateTime<Utc>,
) -> Result<(), TokenRuleViolation> {
    if !facts.active {
        return Err(TokenRuleViolation::Inactive);
    }
    if let Some(scopes) = change.scopes {
        // Narrowing may keep what the grant implies: write:x can become read:x.
        let granted = facts.scopes.expand();
        let missing = scopes.missing_from(&granted);
        if !missing.is_empty() {
            return Err(TokenRuleViolation::WidensScopes { missing });
        }
    }
    if let Some(expires_at) = change.expires_at {
        if expires_at > facts.expires_at {
            return Err(TokenRuleViolation::ExtendsExpiry);
        }
        if expires_at <= now {
            return Err(TokenRuleViolation::ExpiryInPast);
        }
    }
    if let (Requester::Token(maker), Some(limit)) = (who, change.rate_limit) {
        // Covers a token loosening its own limit as well as one it manages.
        no_looser_limit(maker, limit)?;
    }
    Ok(())
}

/// May `who` rotate the token of `facts` at `now`, and with which bounds? The replacement
/// lives as long as the original was meant to, with its limit, but a token maker bounds it.
pub fn check_rotate(who: &Requester, facts: &TokenFacts, now: DateTime<Utc>) -> Result<Bounds, TokenRuleViolation> {
    if !facts.active {
        return Err(TokenRuleViolation::Inactive);
    }
    if facts.replaced {
        return Err(TokenRuleViolation::AlreadyRotated);
    }
    if facts.oauth_grant {
        return Err(TokenRuleViolation::RotateOAuthGrant);
    }
    // Nobody, admin included, receives a working secret for another user's identity.
    if let Some(user_id) = who.user_id()
        && user_id != facts.user_id
    {
        return Err(TokenRuleViolation::RotateOthersToken);
    }
    let lifetime = facts.expires_at.signed_duration_since(facts.created_at);
    let expires_at = now.checked_add_signed(lifetime).ok_or(TokenRuleViolation::ExpiryOutOfRange)?;
    let mut bounds = Bounds { expires_at, rate_limit: facts.rate_limit };
    if let Requester::Token(maker) = who {
        within_credential(maker, &facts.scopes)?;
        bounds = bounds.within(maker);
    }
    Ok(bounds)
}

fn within_credential(maker: &Credential, scopes: &ScopeSet) -> Result<(), TokenRuleViolation> {
    let missing = scopes.missing_from(&maker.effective);
    if missing.is_empty() { Ok(()) } else { Err(TokenRuleViolation::ExceedsCredential { missing }) }
}

fn no_looser_limit(maker: &Credential, limit: Option<RateLimit>) -> Result<(), TokenRuleViolation> {
    match (maker.rate_limit, limit) {
        (Some(own), None) => Err(TokenRuleViolation::LooserThanCredential { credential_limit: own }),
        (Some(own), Some(asked)) if asked > own => {
            Err(TokenRuleViolation::LooserThanCredential { credential_limit: own })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
