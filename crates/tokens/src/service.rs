//! The lifecycle operations: issue, get, list, patch, rotate, revoke.

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::lifecycle::{self, Change, Grant, Requester, TokenFacts, TokenRuleViolation};
use tessera_core::mint::SecretToken;
use tessera_core::scope::ScopeSet;
use tessera_core::values::{Description, Grace, Lifetime, RateLimit, RevokeReason, TokenName};
use tessera_store::{
    Actor, AuditAction, NewToken, Store, StoreError, TokenFilter, TokenPage, TokenRecord, TokenStatus, TokenTx,
    TokenUpdate,
};
use uuid::Uuid;

use crate::Minter;

/// Why a lifecycle operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No such token, or one the requester may not see (never "forbidden", so ids can't be probed).
    #[error("token not found")]
    NotFound,
    /// A lifecycle rule refused the change.
    #[error(transparent)]
    Rule(#[from] TokenRuleViolation),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token could not be signed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A new token: its row and its secret, shown once.
#[derive(Debug)]
pub struct Issued {
    /// The stored metadata.
    pub record: TokenRecord,
    /// The bearer secret; never stored.
    pub secret: SecretToken,
}

/// A revoked token and the tokens it had minted, revoked with it.
#[derive(Debug)]
pub struct Revoked {
    /// The revoked token's metadata.
    pub record: TokenRecord,
    /// Ids of the tokens it minted (directly or not) that this revocation also ended.
    pub also_revoked: Vec<Uuid>,
}

/// What a new token carries; every field already parsed.
#[derive(Debug, Clone)]
pub struct IssueInput {
    /// Owner (the requester itself, except at the CLI).
    pub owner: Uuid,
    /// Name.
    pub name: TokenName,
    /// Optional description.
    pub description: Option<Description>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Lifetime.
    pub lifetime: Lifetime,
    /// Rate limit; `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// A change to a token; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct PatchInput {
    /// New name.
    pub name: Option<TokenName>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<Description>>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
    /// Narrower scopes.
    pub scopes: Option<ScopeSet>,
    /// Earlier expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The token lifecycle: the one place that sequences rules, minting and persistence.
#[derive(Debug, Clone)]
pub struct TokenService {
    store: Store,
    minter: Minter,
}

impl TokenService {
    /// A service persisting to `store` and signing with `minter`.
    pub fn new(store: Store, minter: Minter) -> Self {
        Self { store, minter }
    }

    /// Issues a token for `input.owner`.
    pub async fn issue(
        &self,
        who: &Requester,
        ip: Option<String>,
        input: IssueInput,
        now: DateTime<Utc>,
    ) -> Result<Issued, TokenError> {
        // A person or a script mints for itself; only the operator names another owner.
        if who.user_id().is_some_and(|me| me != input.owner) {
            return Err(TokenError::NotFound);
        }
        let expires_at = input.lifetime.expires_at(now).ok_or(TokenRuleViolation::ExpiryOutOfRange)?;
        let bounds =
            lifecycle::check_issue(who, &Grant { scopes: &input.scopes, expires_at, rate_limit: input.rate_limit })?;
        let row = self.new_row(NewRow {
            owner: input.owner,
            name: input.name.as_str().to_owned(),
            description: input.description.map(|d| d.as_str().to_owned()),
            audience: self.minter.audience_for(&input.scopes),
            scopes: input.scopes,
            expires_at: bounds.expires_at,
            rate_limit: bounds.rate_limit,
            rotated_from: None,
            minted_by: who.token_id(),
            now,
        })?;
        let mut tx = self.store.begin_token_change().await?;
        let record = tx.insert(&row.0).await?;
        tx.audit(
            &actor(who, ip),
            AuditAction::TokenIssue,
            record.id,
            json!({"name": record.name, "scopes": record.scopes, "expires_at": record.expires_at,
                   "rate_limit_per_hour": record.rate_limit_per_hour, "minted_by": record.minted_by}),
        )
        .await?;
        tx.commit().await?;
        Ok(Issued { record, secret: row.1 })
    }

    /// One token, if `who` may see it.
    pub async fn get(&self, who: &Requester, id: Uuid) -> Result<TokenRecord, TokenError> {
        match self.store.get_token(id).await? {
            Some(record) if who.can_see(record.user_id) => Ok(record),
            _ => Err(TokenError::NotFound),
        }
    }

    /// A page of the tokens `who` may see; `filter.user_id` narrows an all-seeing requester.
    pub async fn list(&self, who: &Requester, mut filter: TokenFilter) -> Result<TokenPage, TokenError> {
        if let Some(me) = who.list_scope() {
            filter.user_id = Some(me);
        }
        Ok(self.store.list_tokens(&filter).await?)
    }

    /// Renames, describes, re-limits, narrows or shortens a token.
    pub async fn patch(
        &self,
        who: &Requester,
        ip: Option<String>,
        id: Uuid,
        input: PatchInput,
        now: DateTime<Utc>,
    ) -> Result<TokenRecord, TokenError> {
        let mut tx = self.store.begin_token_change().await?;
        let current = visible(&mut tx, who, id).await?;
        let change =
            Change { scopes: input.scopes.as_ref(), expires_at: input.expires_at, rate_limit: input.rate_limit };
        lifecycle::check_change(who, &facts(&current, now), &change, now)?;
        let update = TokenUpdate {
            name: input.name.as_ref().map(|n| n.as_str().to_owned()),
            description: input.description.as_ref().map(|d| d.as_ref().map(|d| d.as_str().to_owned())),
            rate_limit_per_hour: input.rate_limit.map(|l| l.map(RateLimit::to_stored)),
            scopes: input.scopes.clone(),
            expires_at: input.expires_at,
        };
        let record = tx.update(id, &update).await?;
        tx.audit(
            &actor(who, ip),
            AuditAction::TokenPatch,
            id,
            json!({
                "name": update.name, "scopes": input.scopes.as_ref().map(ScopeSet::to_vec),
                "expires_at": input.expires_at, "rate_limit_per_hour": update.rate_limit_per_hour,
                "description_changed": input.description.is_some(),
            }),
        )
        .await?;
        tx.notify(id).await?;
        tx.commit().await?;
        self.minter.keys().evict(id);
        Ok(record)
    }

    /// Replaces a token by a new one (same name, scopes, limit and audience); the old one
    /// keeps working for `grace`, then fails as `rotated`.
    pub async fn rotate(
        &self,
        who: &Requester,
        ip: Option<String>,
        id: Uuid,
        grace: Grace,
        now: DateTime<Utc>,
    ) -> Result<Issued, TokenError> {
        let mut tx = self.store.begin_token_change().await?;
        let old = visible(&mut tx, who, id).await?;
        let bounds = lifecycle::check_rotate(who, &facts(&old, now), now)?;
        let grace_end = now.checked_add_signed(grace.duration()).ok_or(TokenRuleViolation::ExpiryOutOfRange)?;
        let (row, secret) = self.new_row(NewRow {
            owner: old.user_id,
            name: old.name.clone(),
            description: old.description.clone(),
            scopes: old.scope_set(),
            audience: old.audience.clone(),
            expires_at: bounds.expires_at,
            rate_limit: bounds.rate_limit,
            rotated_from: Some(old.id),
            // A replacement stays bound to whoever minted the original, or to a token that
            // rotated it for someone; a token rotating itself is not its replacement's maker.
            minted_by: who.token_id().filter(|maker| *maker != old.id).or(old.minted_by),
            now,
        })?;
        let record = tx.insert(&row).await?;
        tx.mark_rotated(id, record.id, now, who.user_id(), grace_end).await?;
        tx.audit(
            &actor(who, ip),
            AuditAction::TokenRotate,
            id,
            json!({"replaced_by": record.id, "grace_seconds": grace.secs(), "expires_at": record.expires_at}),
        )
        .await?;
        tx.notify(id).await?;
        tx.commit().await?;
        self.minter.keys().evict(id);
        Ok(Issued { record, secret })
    }

    /// Revokes a token at once (idempotent), and every token it minted.
    pub async fn revoke(
        &self,
        who: &Requester,
        ip: Option<String>,
        id: Uuid,
        reason: Option<RevokeReason>,
        now: DateTime<Utc>,
    ) -> Result<Revoked, TokenError> {
        let mut tx = self.store.begin_token_change().await?;
        let current = visible(&mut tx, who, id).await?;
        let reason = reason.as_ref().map(RevokeReason::as_str);
        let actor = actor(who, ip);
        let also_revoked = tx.minted_descendants(id, now).await?;
        if current.status(now) != TokenStatus::Revoked {
            tx.revoke(id, reason, now, who.user_id()).await?;
            tx.audit(&actor, AuditAction::TokenRevoke, id, json!({"reason": reason, "also_revoked": also_revoked}))
                .await?;
            tx.notify(id).await?;
        }
        for child in &also_revoked {
            tx.revoke(*child, Some("its maker was revoked"), now, who.user_id()).await?;
            tx.audit(&actor, AuditAction::TokenRevoke, *child, json!({"reason": "its maker was revoked", "maker": id}))
                .await?;
            tx.notify(*child).await?;
        }
        let record = tx.get(id).await?;
        tx.commit().await?;
        for changed in std::iter::once(&id).chain(&also_revoked) {
            self.minter.keys().evict(*changed);
        }
        Ok(Revoked { record, also_revoked })
    }

    fn new_row(&self, row: NewRow) -> Result<(NewToken, SecretToken), TokenError> {
        let (minted, kid) = self
            .minter
            .mint(row.owner, &row.scopes, &row.audience, row.now, row.expires_at)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        let new = NewToken {
            id: minted.claims.jti,
            user_id: row.owner,
            name: row.name,
            description: row.description,
            scopes: row.scopes,
            audience: row.audience,
            created_at: row.now,
            expires_at: row.expires_at,
            rate_limit_per_hour: row.rate_limit.map(RateLimit::to_stored),
            rotated_from: row.rotated_from,
            minted_by: row.minted_by,
            token_sha256: minted.sha256,
            kid,
        };
        Ok((new, minted.token))
    }
}

/// The facts of a row a new token is made from.
struct NewRow {
    owner: Uuid,
    name: String,
    description: Option<String>,
    scopes: ScopeSet,
    audience: Vec<String>,
    expires_at: DateTime<Utc>,
    rate_limit: Option<RateLimit>,
    rotated_from: Option<Uuid>,
    minted_by: Option<Uuid>,
    now: DateTime<Utc>,
}

/// Locks the token and checks, in the same transaction, that `who` may see it.
async fn visible(tx: &mut TokenTx, who: &Requester, id: Uuid) -> Result<TokenRecord, TokenError> {
    match tx.lock(id).await? {
        Some(record) if who.can_see(record.user_id) => Ok(record),
        _ => Err(TokenError::NotFound),
    }
}

fn facts(record: &TokenRecord, now: DateTime<Utc>) -> TokenFacts {
    TokenFacts {
        user_id: record.user_id,
        scopes: record.scope_set(),
        created_at: record.created_at,
        expires_at: record.expires_at,
        rate_limit: record.rate_limit_per_hour.map(RateLimit::from_stored),
        active: record.status(now) == TokenStatus::Active,
        replaced: record.replaced_by.is_some(),
    }
}

/// Who the audit log names.
fn actor(who: &Requester, ip: Option<String>) -> Actor {
    match who {
        Requester::Cli => Actor::cli(),
        _ => Actor { user_id: who.user_id(), token_id: who.token_id(), ip },
    }
}
