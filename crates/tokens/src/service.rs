//! The lifecycle operations: issue, get, list, patch, rotate, revoke.

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::alerts::AlertKind;
use tessera_core::codec::token_sha256;
use tessera_core::lifecycle::{
    self, Allowance, AutomaticRevocation, Change, Grant, Requester, TokenFacts, TokenRuleViolation,
};
use tessera_core::mint::SecretToken;
use tessera_core::scope::ScopeSet;
use tessera_core::values::{Description, Grace, Lifetime, RateLimit, RevokeReason, TokenName};
use tessera_store::{
    Actor, AuditAction, NewToken, Store, StoreError, TokenFilter, TokenPage, TokenRecord, TokenStatus, TokenTx,
    TokenUpdate,
};
use uuid::Uuid;

use crate::Minter;
use crate::minter::AccessGrant;

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
    /// An OAuth code or refresh token that is unknown, used, expired, for another client, or
    /// whose grant no longer works.
    #[error("the authorization grant is invalid, expired or revoked")]
    GrantInvalid,
    /// A refresh token came back after it was used: its grant is now revoked.
    #[error("the refresh token was already used; the grant is revoked")]
    RefreshReused,
}

/// An OAuth grant to create when its authorization code is exchanged; every field checked.
#[derive(Debug, Clone)]
pub struct GrantInput {
    /// The consenting user.
    pub owner: Uuid,
    /// Row name (the client's name).
    pub name: TokenName,
    /// Approved scopes.
    pub scopes: ScopeSet,
    /// Grant lifetime.
    pub lifetime: Lifetime,
    /// Grant rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The OAuth client.
    pub client_id: String,
    /// RFC 8707 resource: the access tokens' `aud`.
    pub resource: String,
    /// Access token lifetime.
    pub access_ttl: chrono::Duration,
    /// SHA-256 of the code being exchanged (consumed in the same transaction).
    pub code_sha256: [u8; 32],
    /// SHA-256 of the new refresh token.
    pub refresh_sha256: [u8; 32],
}

/// An OAuth access token for a grant.
#[derive(Debug)]
pub struct IssuedAccess {
    /// The grant's row.
    pub grant: TokenRecord,
    /// The access token (a JWT whose `jti` is the grant's id); never stored.
    pub access_token: SecretToken,
    /// When it expires (`exp`).
    pub expires_at: DateTime<Utc>,
}

/// A new token: its row and its secret, shown once.
#[derive(Debug)]
pub struct Issued {
    /// The stored metadata.
    pub record: TokenRecord,
    /// The bearer secret; never stored.
    pub secret: SecretToken,
}

/// Why a token is revoked: what its revocation row, audit entry and `token.revoked` alert say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeCause {
    /// A person, a token or the operator asked, with the reason they gave, if any.
    Requested(Option<RevokeReason>),
    /// Tessera revoked it by itself (a reused refresh token, a replaced grant, ...).
    Automatic(AutomaticRevocation),
}

impl RevokeCause {
    /// The reason recorded with the revocation.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Requested(reason) => reason.as_ref().map(RevokeReason::as_str),
            Self::Automatic(why) => Some(why.reason()),
        }
    }
}

impl From<AutomaticRevocation> for RevokeCause {
    fn from(why: AutomaticRevocation) -> Self {
        Self::Automatic(why)
    }
}

impl From<Option<RevokeReason>> for RevokeCause {
    fn from(reason: Option<RevokeReason>) -> Self {
        Self::Requested(reason)
    }
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

    /// The URLs of the direct servers among those `scopes` name (empty without server scopes,
    /// so plain tokens cost no query).
    /// The scope checks every minting path (issue, rotation, OAuth grant) makes for a token of
    /// `owner` carrying `scopes`: within the owner's allowance, and direct servers' scopes kept
    /// apart. Returns the direct servers named, by name, with their URLs (their audience).
    async fn check_minted_scopes(
        &self,
        owner: Uuid,
        scopes: &ScopeSet,
    ) -> Result<std::collections::HashMap<String, String>, TokenError> {
        lifecycle::check_allowance(&self.allowance_of(owner).await?, scopes)?;
        let direct = self.direct_urls(scopes).await?;
        lifecycle::check_direct_scopes(scopes, &direct.keys().cloned().collect())?;
        Ok(direct)
    }

    async fn direct_urls(&self, scopes: &ScopeSet) -> Result<std::collections::HashMap<String, String>, TokenError> {
        if scopes.servers().is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let servers = self.store.list_servers().await?;
        Ok(servers.into_iter().filter(|s| s.direct).map(|s| (s.name, s.url)).collect())
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
        let direct = self.check_minted_scopes(input.owner, &input.scopes).await?;
        let row = self.new_row(NewRow {
            owner: input.owner,
            name: input.name.as_str().to_owned(),
            description: input.description.map(|d| d.as_str().to_owned()),
            audience: self.minter.audience_with_direct(&input.scopes, &direct),
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
        self.check_minted_scopes(old.user_id, &old.scope_set()).await?;
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
        tx.alert(AlertKind::Rotated, id, &json!({"replaced_by": record.id, "grace_ends_at": grace_end}), now).await?;
        tx.notify(id).await?;
        tx.commit().await?;
        self.minter.keys().evict(id);
        Ok(Issued { record, secret })
    }

    /// What `user_id` may hold: everything for an administrator, every scope but the
    /// administrators' own for a member of a team that allows everything, else the union of
    /// their teams' allowances (`everyone`'s when they are in none).
    pub async fn allowance_of(&self, user_id: Uuid) -> Result<Allowance, TokenError> {
        if self.store.user_by_id(user_id).await?.is_some_and(|u| u.is_admin) {
            return Ok(Allowance::Unbounded);
        }
        let mut union = ScopeSet::default();
        for allowance in self.store.allowances_of(user_id).await? {
            match allowance {
                None => return Ok(Allowance::Everything),
                Some(scopes) => union = union.union(&ScopeSet::parse_lenient(&scopes.join(" "))),
            }
        }
        Ok(Allowance::Scopes(union))
    }

    /// Takes out of `user_id`'s tokens and grants in force whatever their allowance no longer
    /// covers, at once on every instance (the change is announced like a narrowing); a token
    /// left with nothing is revoked. Returns how many tokens changed.
    pub async fn narrow_to_allowance(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<usize, TokenError> {
        let allowance = self.allowance_of(user_id).await?;
        if allowance == Allowance::Unbounded {
            return Ok(0);
        }
        let mut changed = 0;
        for id in self.store.active_token_ids(user_id, now).await? {
            let mut tx = self.store.begin_token_change().await?;
            let Some(current) = tx.lock(id).await? else { continue };
            let (kept, removed) = allowance.narrow(&current.scope_set());
            if removed.is_empty() {
                continue;
            }
            if kept.is_empty() {
                drop(tx);
                self.revoke(&Requester::Cli, None, id, AutomaticRevocation::AllowanceLost, now).await?;
                changed += 1;
                continue;
            }
            tx.update(id, &TokenUpdate { scopes: Some(kept.clone()), ..TokenUpdate::default() }).await?;
            let details = json!({"scopes": kept.to_vec(), "removed": removed, "cause": "allowance"});
            tx.audit(&Actor::cli(), AuditAction::TokenPatch, id, details.clone()).await?;
            tx.alert(AlertKind::Narrowed, id, &details, now).await?;
            tx.notify(id).await?;
            tx.commit().await?;
            self.minter.keys().evict(id);
            changed += 1;
        }
        Ok(changed)
    }

    /// Makes the account `email` an administrator or takes that away; a former administrator's
    /// tokens and grants lose at once whatever their allowance does not cover (`mcp:admin`,
    /// `scim`, and scopes beyond their teams'), as any narrowing does.
    pub async fn set_admin(
        &self,
        actor: &Actor,
        email: &str,
        admin: bool,
        now: DateTime<Utc>,
    ) -> Result<tessera_store::User, TokenError> {
        let user = self.store.set_user_admin(email, admin, actor).await?;
        if !admin {
            self.narrow_to_allowance(user.id, now).await?;
        }
        Ok(user)
    }

    /// Deactivates (`active` false) or reactivates an account. Deactivating ends its sessions
    /// and revokes every token and grant it holds, each through the usual path (cascade,
    /// NOTIFY, webhook), so reactivating brings none of them back.
    pub async fn set_owner_active(
        &self,
        actor: &Actor,
        user_id: Uuid,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<tessera_store::User, TokenError> {
        let user = self.store.set_user_active(user_id, active, now, actor).await?;
        if !active {
            for id in self.store.active_token_ids(user_id, now).await? {
                self.revoke(&Requester::Cli, actor.ip.clone(), id, AutomaticRevocation::OwnerDeactivated, now).await?;
            }
        }
        Ok(user)
    }

    /// Revokes a token at once (idempotent), and every token it minted. Every revocation
    /// comes here (API, CLI, and OAuth: the client's RFC 7009 request, a reused refresh token,
    /// a replayed code), so each one cascades, is audited, alerts and is announced alike.
    pub async fn revoke(
        &self,
        who: &Requester,
        ip: Option<String>,
        id: Uuid,
        cause: impl Into<RevokeCause>,
        now: DateTime<Utc>,
    ) -> Result<Revoked, TokenError> {
        let cause = cause.into();
        let mut tx = self.store.begin_token_change().await?;
        let current = visible(&mut tx, who, id).await?;
        let reason = cause.reason();
        let actor = actor(who, ip);
        let also_revoked = tx.minted_descendants(id, now).await?;
        if current.status(now) != TokenStatus::Revoked {
            tx.revoke(id, reason, now, who.user_id()).await?;
            if cause == RevokeCause::Automatic(AutomaticRevocation::RefreshReused) {
                let details = json!({"reason": reason, "oauth_client_id": current.oauth_client_id});
                tx.audit(&actor, AuditAction::OAuthReuse, id, details).await?;
            }
            tx.audit(&actor, AuditAction::TokenRevoke, id, json!({"reason": reason, "also_revoked": also_revoked}))
                .await?;
            tx.alert(AlertKind::Revoked, id, &json!({"reason": reason}), now).await?;
            tx.notify(id).await?;
        }
        let cascade = AutomaticRevocation::MakerRevoked.reason();
        for child in &also_revoked {
            tx.revoke(*child, Some(cascade), now, who.user_id()).await?;
            tx.audit(&actor, AuditAction::TokenRevoke, *child, json!({"reason": cascade, "maker": id})).await?;
            tx.alert(AlertKind::Revoked, *child, &json!({"reason": cascade, "maker": id}), now).await?;
            tx.notify(*child).await?;
        }
        let record = tx.get(id).await?;
        tx.commit().await?;
        for changed in std::iter::once(&id).chain(&also_revoked) {
            self.minter.keys().evict(*changed);
        }
        Ok(Revoked { record, also_revoked })
    }

    /// Turns an authorization code into a grant: consumes the code, inserts the grant's row
    /// (whose hash is its first access token's), stores the refresh token's hash, audits.
    pub async fn issue_grant(
        &self,
        who: &Requester,
        ip: Option<String>,
        input: GrantInput,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccess, TokenError> {
        if who.user_id() != Some(input.owner) {
            return Err(TokenError::NotFound);
        }
        let expires_at = input.lifetime.expires_at(now).ok_or(TokenRuleViolation::ExpiryOutOfRange)?;
        let bounds =
            lifecycle::check_issue(who, &Grant { scopes: &input.scopes, expires_at, rate_limit: input.rate_limit })?;
        self.check_minted_scopes(input.owner, &input.scopes).await?;
        let mut tx = self.store.begin_token_change().await?;
        if !tx.consume_code(&input.code_sha256, now).await? {
            return Err(TokenError::GrantInvalid);
        }
        let id = Uuid::now_v7();
        let audience = vec![input.resource.clone()];
        let access_exp = access_expiry(now, input.access_ttl, bounds.expires_at)?;
        let (minted, kid) = self
            .minter
            .mint_access(&AccessGrant {
                id,
                user_id: input.owner,
                scopes: &input.scopes,
                audience: &audience,
                client_id: &input.client_id,
                now,
                expires_at: access_exp,
            })
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        let row = NewToken {
            id,
            user_id: input.owner,
            name: input.name.as_str().to_owned(),
            description: None,
            scopes: input.scopes,
            audience,
            created_at: now,
            expires_at: bounds.expires_at,
            rate_limit_per_hour: bounds.rate_limit.map(RateLimit::to_stored),
            rotated_from: None,
            minted_by: None,
            token_sha256: minted.sha256,
            kid,
            oauth_client_id: Some(input.client_id.clone()),
        };
        let record = tx.insert(&row).await?;
        tx.link_code(&input.code_sha256, id).await?;
        tx.insert_refresh(&input.refresh_sha256, id, now).await?;
        tx.audit(
            &actor(who, ip),
            AuditAction::TokenIssue,
            id,
            json!({"name": record.name, "scopes": record.scopes, "expires_at": record.expires_at,
                   "rate_limit_per_hour": record.rate_limit_per_hour, "oauth_client_id": input.client_id,
                   "resource": input.resource}),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedAccess { grant: record, access_token: minted.token, expires_at: access_exp })
    }

    /// Rotates an OAuth grant's refresh token and mints a new access token with the grant's
    /// current scopes; the previous access token stops matching the row. A refresh token
    /// presented a second time revokes the grant (reuse detection).
    pub async fn refresh_grant(
        &self,
        ip: Option<String>,
        client_id: &str,
        refresh_sha256: &[u8; 32],
        new_refresh_sha256: &[u8; 32],
        access_ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccess, TokenError> {
        let mut tx = self.store.begin_token_change().await?;
        let refresh = tx.use_refresh(refresh_sha256, now).await?.ok_or(TokenError::GrantInvalid)?;
        let grant = tx.lock(refresh.grant_id).await?.ok_or(TokenError::GrantInvalid)?;
        if grant.oauth_client_id.as_deref() != Some(client_id) {
            return Err(TokenError::GrantInvalid);
        }
        if refresh.used_at.is_some() {
            // Nothing was changed: end this transaction (and its locks) before revoking.
            drop(tx);
            if grant.status(now) != TokenStatus::Revoked {
                let owner = Requester::Person { user_id: grant.user_id, is_admin: false };
                self.revoke(&owner, ip, grant.id, AutomaticRevocation::RefreshReused, now).await?;
                tracing::warn!(grant_id = %grant.id, "refresh token reuse detected; grant revoked");
            }
            return Err(TokenError::RefreshReused);
        }
        let who = Actor { user_id: Some(grant.user_id), token_id: None, ip };
        if grant.status(now) != TokenStatus::Active {
            return Err(TokenError::GrantInvalid);
        }
        let scopes = grant.scope_set();
        let access_exp = access_expiry(now, access_ttl, grant.expires_at)?;
        let (minted, kid) = self
            .minter
            .mint_access(&AccessGrant {
                id: grant.id,
                user_id: grant.user_id,
                scopes: &scopes,
                audience: &grant.audience,
                client_id,
                now,
                expires_at: access_exp,
            })
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        tx.set_secret_hash(grant.id, &minted.sha256, &kid).await?;
        tx.insert_refresh(new_refresh_sha256, grant.id, now).await?;
        tx.audit(
            &who,
            AuditAction::OAuthRefresh,
            grant.id,
            json!({"oauth_client_id": client_id, "access_expires_at": access_exp}),
        )
        .await?;
        tx.notify(grant.id).await?;
        tx.commit().await?;
        self.minter.keys().evict(grant.id);
        Ok(IssuedAccess { grant, access_token: minted.token, expires_at: access_exp })
    }

    /// The OAuth grant `token` is the current access token of, if `client_id` holds it (RFC
    /// 7009): the signature is ours, for whichever resource (a grant for `/mcp/S` is revoked
    /// like one for `/mcp`), and the token is the one the grant's row names now. `None` for
    /// anything else, which revocation answers like a success.
    pub async fn grant_of_access_token(
        &self,
        client_id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, TokenError> {
        let Ok(claims) = self.minter.verify_own(token, now) else { return Ok(None) };
        let Some(state) = self.store.token_state(claims.jti).await? else { return Ok(None) };
        if state.token_sha256 != token_sha256(token) || state.user_id.to_string() != claims.sub {
            return Ok(None);
        }
        let grant = self.store.get_token(claims.jti).await?;
        Ok(grant.filter(|g| g.oauth_client_id.as_deref() == Some(client_id)))
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
            oauth_client_id: None,
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
        oauth_grant: record.oauth_client_id.is_some(),
    }
}

/// An access token's `exp`: its lifetime from now, never past its grant's expiry.
fn access_expiry(
    now: DateTime<Utc>,
    ttl: chrono::Duration,
    grant_expires_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, TokenError> {
    let exp = now.checked_add_signed(ttl).ok_or(TokenRuleViolation::ExpiryOutOfRange)?;
    Ok(exp.min(grant_expires_at))
}

/// Who the audit log names.
fn actor(who: &Requester, ip: Option<String>) -> Actor {
    match who {
        Requester::Cli => Actor::cli(),
        _ => Actor { user_id: who.user_id(), token_id: who.token_id(), ip },
    }
}
