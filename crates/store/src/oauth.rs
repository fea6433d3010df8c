//! OAuth clients, authorization codes and refresh tokens. The grants themselves are token
//! rows (`tokens.oauth_client_id`); only hashes of codes and refresh tokens are stored.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Actor, AuditAction, Store, StoreError, TokenTx, audit};

/// Used refresh tokens remembered per grant: presenting one of these again revokes the grant;
/// an older one is merely unknown.
pub const KEPT_USED_REFRESH_TOKENS: i64 = 100;

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Registered through `POST /oauth/register` (RFC 7591).
    Dynamic,
    /// Its `client_id` is the URL of its metadata document (CIMD).
    MetadataDocument,
}

impl ClientKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }
}

/// A known OAuth client.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// `dynamic` or `metadata_document`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registration instant.
    pub created_at: DateTime<Utc>,
}

/// A client as listed to administrators: the client and its grants in force.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedOAuthClient {
    /// The client.
    #[sqlx(flatten)]
    pub client: OAuthClient,
    /// Its grants (token rows) neither expired nor revoked.
    pub active_grants: i64,
}

/// A code to store: the consent's outcome, waiting for the token request.
#[derive(Debug, Clone)]
pub struct NewCode {
    /// SHA-256 of the code.
    pub code_sha256: [u8; 32],
    /// Client it was issued to.
    pub client_id: String,
    /// The consenting user.
    pub user_id: Uuid,
    /// Redirect URI the token request must repeat.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// RFC 8707 resource.
    pub resource: String,
    /// Scopes the user approved.
    pub scopes: Vec<String>,
    /// Grant lifetime the user chose.
    pub lifetime_days: i32,
    /// Rate limit the user chose.
    pub rate_limit_per_hour: Option<i32>,
    /// Issue instant.
    pub created_at: DateTime<Utc>,
    /// Expiry (at most a minute later).
    pub expires_at: DateTime<Utc>,
    /// Keep the grants in force for the same client and resource (else the new one replaces them).
    pub keep_previous: bool,
}

/// A stored code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRecord {
    /// Client it was issued to.
    pub client_id: String,
    /// The consenting user.
    pub user_id: Uuid,
    /// Redirect URI.
    pub redirect_uri: String,
    /// PKCE challenge.
    pub code_challenge: String,
    /// Resource.
    pub resource: String,
    /// Approved scopes.
    pub scopes: Vec<String>,
    /// Grant lifetime.
    pub lifetime_days: i32,
    /// Rate limit.
    pub rate_limit_per_hour: Option<i32>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged, if it was.
    pub used_at: Option<DateTime<Utc>>,
    /// The grant it produced.
    pub grant_id: Option<Uuid>,
    /// Whether the grants in force for the same client and resource stay.
    pub keep_previous: bool,
}

/// A grant in force, as a new consent to the same client and resource shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveGrant {
    /// The grant's token id.
    pub id: Uuid,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
}

/// A stored refresh token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRecord {
    /// The grant (token row) it refreshes.
    pub grant_id: Uuid,
    /// When it was used, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Registers a client (or refreshes a metadata document's cached copy).
    pub async fn upsert_oauth_client(
        &self,
        client: &OAuthClient,
        kind: ClientKind,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Registration and metadata documents are open to anyone: a client known for a day
        // that never got a grant (nor has a code pending) is dropped, so rows can't pile up.
        sqlx::query(
            "DELETE FROM oauth_clients c WHERE c.created_at < $1 - interval '1 day' AND c.id <> $2
               AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.oauth_client_id = c.id)
               AND NOT EXISTS (SELECT 1 FROM oauth_codes o WHERE o.client_id = c.id)",
        )
        .bind(client.created_at)
        .bind(&client.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, kind, name, redirect_uris, created_at, created_ip)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET name = $3, redirect_uris = $4, created_at = $5",
        )
        .bind(&client.id)
        .bind(kind.as_str())
        .bind(&client.name)
        .bind(&client.redirect_uris)
        .bind(client.created_at)
        .bind(actor.ip.as_deref())
        .execute(&mut *tx)
        .await?;
        if kind == ClientKind::Dynamic {
            let details = serde_json::json!({"client_id": client.id, "client_name": client.name,
                                             "redirect_uris": client.redirect_uris});
            audit::append(&mut tx, actor, AuditAction::OAuthRegister, None, details).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One client.
    pub async fn oauth_client(&self, id: &str) -> Result<Option<OAuthClient>, StoreError> {
        Ok(sqlx::query_as::<_, OAuthClient>(
            "SELECT id, kind, name, redirect_uris, created_at FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.exec())
        .await?)
    }

    /// Every client, newest first, with its grants in force at `now` (admins).
    pub async fn oauth_clients(&self, limit: i64, now: DateTime<Utc>) -> Result<Vec<ListedOAuthClient>, StoreError> {
        Ok(sqlx::query_as::<_, ListedOAuthClient>(
            "SELECT c.id, c.kind, c.name, c.redirect_uris, c.created_at,
                (SELECT count(*) FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id
                  WHERE t.oauth_client_id = c.id AND t.expires_at > $2
                    AND (r.effective_at IS NULL OR r.effective_at > $2)) AS active_grants
             FROM oauth_clients c ORDER BY c.created_at DESC LIMIT $1",
        )
        .bind(limit)
        .bind(now)
        .fetch_all(self.exec())
        .await?)
    }

    /// Stores a code and audits the consent; expired codes are swept on the way.
    pub async fn insert_oauth_code(&self, code: &NewCode, actor: &Actor) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Exchanged or not, a code is worthless a while after its expiry; the grant it
        // produced is a token row and outlives it.
        sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1 - interval '1 day'")
            .bind(code.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_sha256, client_id, user_id, redirect_uri, code_challenge, resource, scopes,
                                      lifetime_days, rate_limit_per_hour, created_at, expires_at, keep_previous)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(code.code_sha256.as_slice())
        .bind(&code.client_id)
        .bind(code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.resource)
        .bind(&code.scopes)
        .bind(code.lifetime_days)
        .bind(code.rate_limit_per_hour)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(code.keep_previous)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({"client_id": code.client_id, "scopes": code.scopes,
            "resource": code.resource, "lifetime_days": code.lifetime_days,
            "rate_limit_per_hour": code.rate_limit_per_hour, "keep_previous": code.keep_previous});
        audit::append(&mut tx, actor, AuditAction::OAuthConsent, None, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One code by its hash.
    pub async fn oauth_code(&self, code_sha256: &[u8; 32]) -> Result<Option<CodeRecord>, StoreError> {
        Ok(sqlx::query_as::<_, CodeRecord>(
            "SELECT client_id, user_id, redirect_uri, code_challenge, resource, scopes, lifetime_days,
                    rate_limit_per_hour, expires_at, used_at, grant_id, keep_previous
             FROM oauth_codes WHERE code_sha256 = $1",
        )
        .bind(code_sha256.as_slice())
        .fetch_optional(self.exec())
        .await?)
    }

    /// `user_id`'s grants to `client_id` for `resource` in force at `now`, newest first.
    pub async fn active_grants(
        &self,
        user_id: Uuid,
        client_id: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ActiveGrant>, StoreError> {
        Ok(sqlx::query_as::<_, ActiveGrant>(
            "SELECT t.id, t.scopes, t.created_at FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id
             WHERE t.user_id = $1 AND t.oauth_client_id = $2 AND $3 = ANY (t.audience) AND t.expires_at > $4
               AND (r.effective_at IS NULL OR r.effective_at > $4)
             ORDER BY t.created_at DESC LIMIT 100",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .bind(now)
        .fetch_all(self.exec())
        .await?)
    }

    /// The grant a refresh token belongs to, if the hash is known.
    pub async fn oauth_refresh(&self, token_sha256: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(sqlx::query_as::<_, RefreshRecord>(
            "SELECT grant_id, used_at FROM oauth_refresh_tokens WHERE token_sha256 = $1",
        )
        .bind(token_sha256.as_slice())
        .fetch_optional(self.exec())
        .await?)
    }
}

impl TokenTx {
    /// Marks a code used, once: false when it was already used (a replay) or is unknown.
    pub async fn consume_code(&mut self, code_sha256: &[u8; 32], now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE oauth_codes SET used_at = $2 WHERE code_sha256 = $1 AND used_at IS NULL")
            .bind(code_sha256.as_slice())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records which grant a code produced (so a replay can revoke it).
    pub async fn link_code(&mut self, code_sha256: &[u8; 32], grant_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_codes SET grant_id = $2 WHERE code_sha256 = $1")
            .bind(code_sha256.as_slice())
            .bind(grant_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Stores a new refresh token's hash for `grant_id`, keeping only the newest
    /// [`KEPT_USED_REFRESH_TOKENS`] used ones of the grant (for reuse detection), so a client
    /// refreshing in a loop can't grow the table without bound.
    pub async fn insert_refresh(
        &mut self,
        token_sha256: &[u8; 32],
        grant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM oauth_refresh_tokens WHERE grant_id = $1 AND used_at IS NOT NULL AND token_sha256 NOT IN
               (SELECT token_sha256 FROM oauth_refresh_tokens WHERE grant_id = $1 AND used_at IS NOT NULL
                ORDER BY used_at DESC LIMIT $2)",
        )
        .bind(grant_id)
        .bind(KEPT_USED_REFRESH_TOKENS)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("INSERT INTO oauth_refresh_tokens (token_sha256, grant_id, created_at) VALUES ($1, $2, $3)")
            .bind(token_sha256.as_slice())
            .bind(grant_id)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Locks a refresh token and marks it used; returns it as it was before (so a caller
    /// sees a second use as `used_at: Some`).
    pub async fn use_refresh(
        &mut self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let found = sqlx::query_as::<_, RefreshRecord>(
            "SELECT grant_id, used_at FROM oauth_refresh_tokens WHERE token_sha256 = $1 FOR UPDATE",
        )
        .bind(token_sha256.as_slice())
        .fetch_optional(&mut *self.tx)
        .await?;
        if let Some(r) = &found
            && r.used_at.is_none()
        {
            sqlx::query("UPDATE oauth_refresh_tokens SET used_at = $2 WHERE token_sha256 = $1")
                .bind(token_sha256.as_slice())
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(found)
    }

    /// Appends an audit row not tied to one token.
    pub async fn audit_event(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        token_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        audit::append(&mut self.tx, actor, action, token_id, details).await
    }
}
