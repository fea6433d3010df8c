//! Tokens as rows: read, list, and the persistence steps of a lifecycle change (lock, insert,
//! update, revoke, audit, notify) inside one transaction. The rules that decide whether a
//! change is allowed, and the signing, live in `tessera-core` and `tessera-tokens`: this
//! module only persists what it is told.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};
use tessera_core::codec::TokenHash;
use tessera_core::scope::ScopeSet;
use tessera_core::validate::{Revocation, RevocationKind, TokenState};
use uuid::Uuid;

use crate::events::notify;
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// Where a token stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Valid now (a rotated token inside its grace period included).
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked by a person or script.
    Revoked,
    /// Replaced by rotation and past the grace period.
    Rotated,
}

/// A token's metadata as stored (never the secret, never its hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRecord {
    /// Token id, the JWT's `jti`.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Human name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Granted scopes (not expanded).
    pub scopes: Vec<String>,
    /// Resources the token is bound to (RFC 8707).
    pub audience: Vec<String>,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour, `None` for unlimited.
    pub rate_limit_per_hour: Option<i32>,
    /// Last time the MCP server saw it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Client address of that last use.
    pub last_used_from: Option<String>,
    /// The token this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
    /// The token that replaced this one.
    pub replaced_by: Option<Uuid>,
    /// The token that minted this one through the API, if a token did.
    pub minted_by: Option<Uuid>,
    /// `revoked` or `rotated` once a revocation row exists.
    pub revocation_kind: Option<String>,
    /// When the revocation was recorded.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The OAuth client this token was granted to, if it is an OAuth grant.
    pub oauth_client_id: Option<String>,
    /// That client's name.
    pub oauth_client_name: Option<String>,
    /// When it takes effect (end of a rotation's grace).
    pub revocation_effective_at: Option<DateTime<Utc>>,
    /// Why, if someone said.
    pub revoke_reason: Option<String>,
}

impl TokenRecord {
    /// The status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        match (self.revocation_kind.as_deref(), self.revocation_effective_at) {
            (Some("revoked"), Some(at)) if at <= now => TokenStatus::Revoked,
            (Some(_), Some(at)) if at <= now => TokenStatus::Rotated,
            _ if self.expires_at <= now => TokenStatus::Expired,
            _ => TokenStatus::Active,
        }
    }

    /// The granted scopes; a stored scope no longer in the catalog grants nothing, and the
    /// rest of the set survives.
    pub fn scope_set(&self) -> ScopeSet {
        stored_scopes(&self.scopes)
    }
}

const SELECT_TOKEN: &str = "SELECT t.id, t.user_id, t.name, t.description, t.scopes, t.audience, t.created_at,
        t.expires_at, t.rate_limit_per_hour, t.last_used_at, t.last_used_from, t.rotated_from, t.replaced_by, t.minted_by,
        r.kind AS revocation_kind, r.revoked_at, r.effective_at AS revocation_effective_at, r.reason AS revoke_reason,
        t.oauth_client_id, c.name AS oauth_client_name
    FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id LEFT JOIN oauth_clients c ON c.id = t.oauth_client_id";

/// A token row to insert: the service has checked the rules and signed the secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Token id (the JWT's `jti`).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Human name, already validated.
    pub name: String,
    /// Optional description, already validated.
    pub description: Option<String>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// `aud` claim.
    pub audience: Vec<String>,
    /// Creation instant (`iat`).
    pub created_at: DateTime<Utc>,
    /// Expiry instant (`exp`).
    pub expires_at: DateTime<Utc>,
    /// Requests per hour, `None` for unlimited.
    pub rate_limit_per_hour: Option<i32>,
    /// The token this one replaces by rotation.
    pub rotated_from: Option<Uuid>,
    /// The token that minted this one, if a token did.
    pub minted_by: Option<Uuid>,
    /// SHA-256 of the secret: the only trace of it that is kept.
    pub token_sha256: TokenHash,
    /// The signing key's id.
    pub kid: String,
    /// The OAuth client the token is granted to, for an OAuth grant.
    pub oauth_client_id: Option<String>,
}

/// Which tokens to list (keyset pagination, newest first).
#[derive(Debug, Clone)]
pub struct TokenFilter {
    /// Only this owner's tokens; `None` for all (admins).
    pub user_id: Option<Uuid>,
    /// Only tokens in this status; `None` for all. `Revoked` also matches `Rotated`.
    pub status: Option<TokenStatus>,
    /// Name contains this text (case-insensitive).
    pub q: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Continue after this token id (exclusive).
    pub after: Option<Uuid>,
    /// The instant statuses are computed at.
    pub now: DateTime<Utc>,
}

/// One page of tokens.
#[derive(Debug)]
pub struct TokenPage {
    /// The tokens, newest first.
    pub items: Vec<TokenRecord>,
    /// The id to pass as `after` for the next page, if there is one.
    pub next_after: Option<Uuid>,
}

/// New values for a token's row; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TokenUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit_per_hour: Option<Option<i32>>,
    /// New scopes.
    pub scopes: Option<ScopeSet>,
    /// New expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One lifecycle change in progress: every step runs in this transaction, and nothing is
/// visible (nor announced over NOTIFY) until [`TokenTx::commit`].
#[derive(Debug)]
pub struct TokenTx {
    pub(crate) tx: Transaction<'static, Postgres>,
}

impl Store {
    /// Starts a lifecycle change.
    pub async fn begin_token_change(&self) -> Result<TokenTx, StoreError> {
        Ok(TokenTx { tx: self.pool.begin().await? })
    }

    /// One token's metadata.
    pub async fn get_token(&self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        Ok(sqlx::query_as::<_, TokenRecord>(&format!("{SELECT_TOKEN} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(self.exec())
            .await?)
    }

    /// A page of tokens matching `filter`.
    pub async fn list_tokens(&self, filter: &TokenFilter) -> Result<TokenPage, StoreError> {
        let status_sql = match filter.status {
            None => "true",
            Some(TokenStatus::Active) => "(r.effective_at IS NULL OR r.effective_at > $5) AND t.expires_at > $5",
            Some(TokenStatus::Revoked | TokenStatus::Rotated) => "r.effective_at <= $5",
            Some(TokenStatus::Expired) => "(r.effective_at IS NULL OR r.effective_at > $5) AND t.expires_at <= $5",
        };
        let limit = filter.limit.clamp(1, 1000);
        let mut items = sqlx::query_as::<_, TokenRecord>(&format!(
            "{SELECT_TOKEN}
             WHERE ($1::uuid IS NULL OR t.user_id = $1)
               AND ($2::uuid IS NULL OR t.id < $2)
               AND ($3::text IS NULL OR t.name ILIKE '%' || $3 || '%')
               AND {status_sql} AND $5::timestamptz IS NOT NULL
             ORDER BY t.id DESC LIMIT $4"
        ))
        .bind(filter.user_id)
        .bind(filter.after)
        .bind(filter.q.as_deref().map(escape_like))
        .bind(limit + 1)
        .bind(filter.now)
        .fetch_all(self.exec())
        .await?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_after = if more { items.last().map(|t| t.id) } else { None };
        Ok(TokenPage { items, next_after })
    }

    /// Ids of `user_id`'s tokens in force at `now` (grants included).
    pub async fn active_token_ids(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT t.id FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id
             WHERE t.user_id = $1 AND t.expires_at > $2 AND (r.effective_at IS NULL OR r.effective_at > $2)",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.exec())
        .await?)
    }

    /// What the validator needs to know about a token's row, in one query.
    pub async fn token_state(&self, id: Uuid) -> Result<Option<TokenState>, StoreError> {
        let row: Option<StateRow> = sqlx::query_as(
            // A server scope (read:S, write:S, call:S/TOOL) counts only while S is registered:
            // whatever a row still names for a server that is gone grants nothing.
            "SELECT t.id, t.user_id, t.name, t.token_sha256, t.expires_at, t.rate_limit_per_hour,
                    u.rate_limit_per_hour AS user_rate_limit_per_hour,
                    ARRAY(SELECT s FROM unnest(t.scopes) AS s
                          WHERE substring(s FROM '^(?:read|write|call):([a-z0-9-]{1,32})(?:/.*)?$') IS NULL
                             OR substring(s FROM '^(?:read|write|call):([a-z0-9-]{1,32})(?:/.*)?$')
                                IN ('tasks', 'context', 'agents', 'tokens', 'mcp')
                             OR EXISTS (SELECT 1 FROM servers v WHERE v.name =
                                substring(s FROM '^(?:read|write|call):([a-z0-9-]{1,32})(?:/.*)?$'))) AS scopes,
                    r.kind, r.effective_at, u.disabled_at IS NOT NULL AS user_disabled
             FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN revocations r ON r.token_id = t.id
             WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(self.exec())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token_sha256 = TokenHash::from_slice(&row.token_sha256)
            .ok_or_else(|| StoreError::Corrupt("stored token hash has the wrong length".to_owned()))?;
        let revocation = match (row.kind.as_deref(), row.effective_at) {
            (Some(kind), Some(effective_at)) => {
                Some(Revocation { kind: RevocationKind::from_stored(kind), effective_at })
            }
            _ => None,
        };
        Ok(Some(TokenState {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            token_sha256,
            scopes: stored_scopes(&row.scopes),
            expires_at: row.expires_at,
            rate_limit_per_hour: row.rate_limit_per_hour,
            user_rate_limit_per_hour: row.user_rate_limit_per_hour,
            revocation,
            user_disabled: row.user_disabled,
        }))
    }
}

/// The row behind [`TokenState`].
#[derive(sqlx::FromRow)]
struct StateRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    token_sha256: Vec<u8>,
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
    rate_limit_per_hour: Option<i32>,
    user_rate_limit_per_hour: Option<i32>,
    kind: Option<String>,
    effective_at: Option<DateTime<Utc>>,
    user_disabled: bool,
}

impl TokenTx {
    /// Locks the token's row for the rest of the change; `None` if there is no such token.
    pub async fn lock(&mut self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        let found = sqlx::query("SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some();
        if !found {
            return Ok(None);
        }
        fetch_token(&mut self.tx, id).await.map(Some)
    }

    /// Inserts a new token row.
    pub async fn insert(&mut self, row: &NewToken) -> Result<TokenRecord, StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, description, scopes, audience, created_at, expires_at,
                                 rate_limit_per_hour, rotated_from, minted_by, token_sha256, kid, oauth_client_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(row.id)
        .bind(row.user_id)
        .bind(&row.name)
        .bind(row.description.as_deref())
        .bind(row.scopes.to_vec())
        .bind(&row.audience)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.rate_limit_per_hour)
        .bind(row.rotated_from)
        .bind(row.minted_by)
        .bind(row.token_sha256.as_bytes().as_slice())
        .bind(&row.kid)
        .bind(row.oauth_client_id.as_deref())
        .execute(&mut *self.tx)
        .await?;
        fetch_token(&mut self.tx, row.id).await
    }

    /// Writes new values into a token's row.
    pub async fn update(&mut self, id: Uuid, update: &TokenUpdate) -> Result<TokenRecord, StoreError> {
        sqlx::query(
            "UPDATE tokens SET
                name = COALESCE($2, name),
                description = CASE WHEN $3 THEN $4 ELSE description END,
                rate_limit_per_hour = CASE WHEN $5 THEN $6 ELSE rate_limit_per_hour END,
                scopes = COALESCE($7, scopes),
                expires_at = COALESCE($8, expires_at)
             WHERE id = $1",
        )
        .bind(id)
        .bind(update.name.as_deref())
        .bind(update.description.is_some())
        .bind(update.description.clone().flatten())
        .bind(update.rate_limit_per_hour.is_some())
        .bind(update.rate_limit_per_hour.flatten())
        .bind(update.scopes.as_ref().map(ScopeSet::to_vec))
        .bind(update.expires_at)
        .execute(&mut *self.tx)
        .await?;
        fetch_token(&mut self.tx, id).await
    }

    /// Records that `old` was replaced by `new`; `old` keeps working until `effective_at`.
    pub async fn mark_rotated(
        &mut self,
        old: Uuid,
        new: Uuid,
        now: DateTime<Utc>,
        by: Option<Uuid>,
        effective_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET replaced_by = $2 WHERE id = $1")
            .bind(old)
            .bind(new)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO revocations (token_id, kind, revoked_at, revoked_by, reason, effective_at)
             VALUES ($1, 'rotated', $2, $3, 'rotated', $4)",
        )
        .bind(old)
        .bind(now)
        .bind(by)
        .bind(effective_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Revokes a token now; a rotation still in its grace becomes a revocation at once.
    pub async fn revoke(
        &mut self,
        id: Uuid,
        reason: Option<&str>,
        now: DateTime<Utc>,
        by: Option<Uuid>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocations (token_id, kind, revoked_at, revoked_by, reason, effective_at)
             VALUES ($1, 'revoked', $2, $3, $4, $2)
             ON CONFLICT (token_id) DO UPDATE SET kind = 'revoked', revoked_at = $2, revoked_by = $3,
                 reason = COALESCE($4, revocations.reason), effective_at = LEAST(revocations.effective_at, $2)",
        )
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Every token minted by `id`, directly or through tokens it minted, that is not yet
    /// revoked at `now`; each is locked for the rest of the change.
    pub async fn minted_descendants(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE minted(id) AS (
                 SELECT id FROM tokens WHERE minted_by = $1
                 UNION SELECT t.id FROM tokens t JOIN minted m ON t.minted_by = m.id
             )
             SELECT t.id FROM tokens t JOIN minted m ON m.id = t.id
             LEFT JOIN revocations r ON r.token_id = t.id
             WHERE r.effective_at IS NULL OR r.effective_at > $2
             ORDER BY t.id
             FOR UPDATE OF t",
        )
        .bind(id)
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// Replaces the hash of a token's secret: an OAuth grant's row carries its current
    /// access token's hash, so a refresh makes the previous access token stop matching.
    pub async fn set_secret_hash(&mut self, id: Uuid, sha256: &TokenHash, kid: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET token_sha256 = $2, kid = $3 WHERE id = $1")
            .bind(id)
            .bind(sha256.as_bytes().as_slice())
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Reads a token's row as it stands inside this change.
    pub async fn get(&mut self, id: Uuid) -> Result<TokenRecord, StoreError> {
        fetch_token(&mut self.tx, id).await
    }

    /// Appends an audit row.
    pub async fn audit(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        token_id: Uuid,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        audit::append(&mut self.tx, actor, action, Some(token_id), details).await
    }

    /// Announces the token's change to every instance once the transaction commits.
    pub async fn notify(&mut self, id: Uuid) -> Result<(), StoreError> {
        notify(&mut self.tx, id).await
    }

    /// Makes the change visible (and the notifications delivered).
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

/// Scopes as stored: a scope no longer in the catalog grants nothing, and the rest survive.
fn stored_scopes(scopes: &[String]) -> ScopeSet {
    ScopeSet::parse_lenient(&scopes.join(" "))
}

fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

async fn fetch_token(conn: &mut PgConnection, id: Uuid) -> Result<TokenRecord, StoreError> {
    sqlx::query_as::<_, TokenRecord>(&format!("{SELECT_TOKEN} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound("token"))
}
