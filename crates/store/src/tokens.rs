//! Tokens: issue, read, list, patch, rotate, revoke, and the row state the validator needs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tessera_core::keys::KeyRing;
use tessera_core::mint::{MintRequest, SecretToken, mint};
use tessera_core::scope::ScopeSet;
use tessera_core::validate::{Revocation, RevocationKind, TokenState};
use uuid::Uuid;

use crate::events::notify;
use crate::{Actor, Store, StoreError, audit};

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
    /// `revoked` or `rotated` once a revocation row exists.
    pub revocation_kind: Option<String>,
    /// When the revocation was recorded.
    pub revoked_at: Option<DateTime<Utc>>,
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
}

const SELECT_TOKEN: &str = "SELECT t.id, t.user_id, t.name, t.description, t.scopes, t.audience, t.created_at,
        t.expires_at, t.rate_limit_per_hour, t.last_used_at, t.last_used_from, t.rotated_from, t.replaced_by,
        r.kind AS revocation_kind, r.revoked_at, r.effective_at AS revocation_effective_at, r.reason AS revoke_reason
    FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id";

/// What a new token carries.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Owner.
    pub user_id: Uuid,
    /// Human name (1..=100 chars).
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Granted scopes (the caller has already checked who may grant what).
    pub scopes: ScopeSet,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour, `None` for unlimited.
    pub rate_limit_per_hour: Option<i32>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: Vec<String>,
}

/// A freshly issued token: its metadata and the secret, shown once.
#[derive(Debug)]
pub struct IssuedToken {
    /// Stored metadata.
    pub record: TokenRecord,
    /// The bearer secret; never stored.
    pub secret: SecretToken,
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

/// A change to a token: only metadata, narrower scopes, or an earlier expiry.
#[derive(Debug, Clone, Default)]
pub struct TokenPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit_per_hour: Option<Option<i32>>,
    /// Narrower scopes.
    pub scopes: Option<ScopeSet>,
    /// Earlier expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Signs a new token and stores its metadata and hash, with an audit row.
    pub async fn issue_token(
        &self,
        ring: &KeyRing,
        req: &IssueRequest,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<IssuedToken, StoreError> {
        let mut tx = self.pool.begin().await?;
        let issued = insert_token(&mut tx, ring, req, None, now).await?;
        audit::append(
            &mut tx,
            actor,
            "token.issue",
            Some(issued.record.id),
            serde_json::json!({"name": req.name, "scopes": req.scopes.to_vec(), "expires_at": req.expires_at}),
        )
        .await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// One token's metadata.
    pub async fn get_token(&self, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
        Ok(sqlx::query_as::<_, TokenRecord>(&format!("{SELECT_TOKEN} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_after = if more { items.last().map(|t| t.id) } else { None };
        Ok(TokenPage { items, next_after })
    }

    /// Revokes a token at once. Idempotent: revoking a revoked token changes nothing.
    pub async fn revoke_token(
        &self,
        id: Uuid,
        reason: Option<&str>,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<TokenRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current = lock_token(&mut tx, id).await?;
        if current.status(now) != TokenStatus::Revoked {
            sqlx::query(
                "INSERT INTO revocations (token_id, kind, revoked_at, revoked_by, reason, effective_at)
                 VALUES ($1, 'revoked', $2, $3, $4, $2)
                 ON CONFLICT (token_id) DO UPDATE SET kind = 'revoked', revoked_at = $2, revoked_by = $3,
                     reason = COALESCE($4, revocations.reason), effective_at = LEAST(revocations.effective_at, $2)",
            )
            .bind(id)
            .bind(now)
            .bind(actor.user_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
            audit::append(&mut tx, actor, "token.revoke", Some(id), serde_json::json!({"reason": reason})).await?;
            notify(&mut tx, id).await?;
        }
        let record = fetch_token(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Replaces an active token by a new one with the same name, scopes and limit; the old
    /// one keeps working for `grace` and then fails as `rotated`.
    pub async fn rotate_token(
        &self,
        ring: &KeyRing,
        issuer: &str,
        id: Uuid,
        grace: chrono::Duration,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<IssuedToken, StoreError> {
        let mut tx = self.pool.begin().await?;
        let old = lock_token(&mut tx, id).await?;
        if old.status(now) != TokenStatus::Active {
            return Err(StoreError::Rejected {
                code: "token_inactive",
                message: "only an active token can be rotated".to_owned(),
            });
        }
        if old.replaced_by.is_some() {
            return Err(StoreError::Rejected {
                code: "already_rotated",
                message: "this token was already rotated; rotate its replacement instead".to_owned(),
            });
        }
        let scopes = stored_scopes(&old.scopes);
        let req = IssueRequest {
            user_id: old.user_id,
            name: old.name.clone(),
            description: old.description.clone(),
            scopes,
            // The replacement lives as long as the original was meant to.
            expires_at: now + (old.expires_at - old.created_at),
            rate_limit_per_hour: old.rate_limit_per_hour,
            issuer: issuer.to_owned(),
            audience: old.audience.clone(),
        };
        let issued = insert_token(&mut tx, ring, &req, Some(old.id), now).await?;
        sqlx::query("UPDATE tokens SET replaced_by = $2 WHERE id = $1")
            .bind(id)
            .bind(issued.record.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO revocations (token_id, kind, revoked_at, revoked_by, reason, effective_at)
             VALUES ($1, 'rotated', $2, $3, 'rotated', $4)",
        )
        .bind(id)
        .bind(now)
        .bind(actor.user_id)
        .bind(now + grace)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            actor,
            "token.rotate",
            Some(id),
            serde_json::json!({"replaced_by": issued.record.id, "grace_seconds": grace.num_seconds()}),
        )
        .await?;
        notify(&mut tx, id).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// Changes metadata, narrows scopes or shortens expiry; widening is refused.
    pub async fn patch_token(
        &self,
        id: Uuid,
        patch: &TokenPatch,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<TokenRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current = lock_token(&mut tx, id).await?;
        if current.status(now) != TokenStatus::Active {
            return Err(StoreError::Rejected {
                code: "token_inactive",
                message: "only an active token can be changed".to_owned(),
            });
        }
        if let Some(scopes) = &patch.scopes {
            // Narrowing may keep what the grant implies: write:x can become read:x.
            let granted = stored_scopes(&current.scopes).expand();
            if !scopes.is_subset(&granted) {
                return Err(StoreError::Rejected {
                    code: "scope_widening",
                    message: format!(
                        "scopes can only be narrowed; not granted to this token: {}",
                        scopes.missing_from(&granted).join(" ")
                    ),
                });
            }
        }
        if let Some(expires_at) = patch.expires_at {
            if expires_at > current.expires_at {
                return Err(StoreError::Rejected {
                    code: "expiry_extension",
                    message: "expiry can only be shortened; issue a new token for a longer life".to_owned(),
                });
            }
            if expires_at <= now {
                return Err(StoreError::Rejected {
                    code: "expiry_in_past",
                    message: "the new expiry must be in the future; revoke the token to end it now".to_owned(),
                });
            }
        }
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
        .bind(patch.name.as_deref())
        .bind(patch.description.is_some())
        .bind(patch.description.clone().flatten())
        .bind(patch.rate_limit_per_hour.is_some())
        .bind(patch.rate_limit_per_hour.flatten())
        .bind(patch.scopes.as_ref().map(ScopeSet::to_vec))
        .bind(patch.expires_at)
        .execute(&mut *tx)
        .await?;
        let record = fetch_token(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            "token.patch",
            Some(id),
            serde_json::json!({
                "name": patch.name, "scopes": patch.scopes.as_ref().map(ScopeSet::to_vec),
                "expires_at": patch.expires_at, "rate_limit_per_hour": patch.rate_limit_per_hour,
                "description_changed": patch.description.is_some(),
            }),
        )
        .await?;
        notify(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// What the validator needs to know about a token's row, in one query.
    pub async fn token_state(&self, id: Uuid) -> Result<Option<TokenState>, StoreError> {
        type Row = (
            Uuid,
            Uuid,
            String,
            Vec<u8>,
            Vec<String>,
            DateTime<Utc>,
            Option<i32>,
            Option<String>,
            Option<DateTime<Utc>>,
            bool,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT t.id, t.user_id, t.name, t.token_sha256, t.scopes, t.expires_at, t.rate_limit_per_hour,
                    r.kind, r.effective_at, u.disabled_at IS NOT NULL
             FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN revocations r ON r.token_id = t.id
             WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, user_id, name, sha, scopes, expires_at, rate_limit_per_hour, kind, effective_at, user_disabled)) =
            row
        else {
            return Ok(None);
        };
        let token_sha256: [u8; 32] =
            sha.try_into().map_err(|_| StoreError::Signing("stored token hash has the wrong length".to_owned()))?;
        let revocation = match (kind.as_deref(), effective_at) {
            (Some(kind), Some(effective_at)) => Some(Revocation {
                kind: if kind == "rotated" { RevocationKind::Rotated } else { RevocationKind::Revoked },
                effective_at,
            }),
            _ => None,
        };
        Ok(Some(TokenState {
            id,
            user_id,
            name,
            token_sha256,
            scopes: stored_scopes(&scopes),
            expires_at,
            rate_limit_per_hour,
            revocation,
            user_disabled,
        }))
    }
}

/// Scopes as stored; a scope no longer in the catalog grants nothing.
fn stored_scopes(scopes: &[String]) -> ScopeSet {
    ScopeSet::parse_any(&scopes.join(" ")).unwrap_or_default()
}

fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

async fn lock_token(conn: &mut PgConnection, id: Uuid) -> Result<TokenRecord, StoreError> {
    sqlx::query("SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("token"))?;
    fetch_token(conn, id).await
}

async fn fetch_token(conn: &mut PgConnection, id: Uuid) -> Result<TokenRecord, StoreError> {
    sqlx::query_as::<_, TokenRecord>(&format!("{SELECT_TOKEN} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound("token"))
}

async fn insert_token(
    conn: &mut PgConnection,
    ring: &KeyRing,
    req: &IssueRequest,
    rotated_from: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<IssuedToken, StoreError> {
    let minted = mint(
        ring,
        &MintRequest {
            issuer: req.issuer.clone(),
            audience: req.audience.clone(),
            user_id: req.user_id,
            scopes: req.scopes.clone(),
            now,
            expires_at: req.expires_at,
            jti: Uuid::now_v7(),
        },
    )
    .map_err(|e| StoreError::Signing(e.to_string()))?;
    sqlx::query(
        "INSERT INTO tokens (id, user_id, name, description, scopes, audience, created_at, expires_at,
                             rate_limit_per_hour, rotated_from, token_sha256, kid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(minted.claims.jti)
    .bind(req.user_id)
    .bind(&req.name)
    .bind(req.description.as_deref())
    .bind(req.scopes.to_vec())
    .bind(&req.audience)
    .bind(now)
    .bind(req.expires_at)
    .bind(req.rate_limit_per_hour)
    .bind(rotated_from)
    .bind(minted.sha256.as_slice())
    .bind(ring.signing_kid())
    .execute(&mut *conn)
    .await?;
    let record = fetch_token(conn, minted.claims.jti).await?;
    Ok(IssuedToken { record, secret: minted.token })
}
