//! Connected accounts (issue #25): servers whose users each bring their own credential, and
//! each person's sealed credential for them. Every change announces the server on the change
//! feed, so each gateway drops its cached entry (which holds the opened credentials).

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::sealed::Sealed;
use uuid::Uuid;

use crate::events::notify_server;
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// How a server's users bring their own credential: a header of that name, its value
/// prefixed (e.g. `Bearer `), typed by each person or (OAuth) obtained for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuth {
    /// Lower-case header name.
    pub header: String,
    /// Put before each person's value (`""` or e.g. `"Bearer "`).
    pub prefix: String,
    /// Set when each person connects through the upstream's OAuth authorization server.
    pub oauth: Option<OAuthSetup>,
}

impl UserAuth {
    /// `oauth` or `header`.
    pub fn kind(&self) -> &'static str {
        if self.oauth.is_some() { "oauth" } else { "header" }
    }
}

/// An OAuth server's set-up: what the administrator gave and what Tessera learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSetup {
    /// Scopes to ask for (`None`: what the upstream asks for).
    pub scope: Option<String>,
    /// Tessera's client id there (`None` until registered).
    pub client_id: Option<String>,
    /// Its secret, sealed for the server.
    pub client_secret: Option<Sealed>,
    /// Given by an administrator (never registered again or forgotten).
    pub preregistered: bool,
    /// The authorization server's metadata as discovered (`None` until the first connect).
    pub authorization_server: Option<serde_json::Value>,
}

/// An OAuth connection's sealed tokens and their life.
#[derive(Debug, Clone)]
pub struct SealedTokens {
    /// Access and refresh token, sealed together.
    pub value: Sealed,
    /// When the access token was issued.
    pub issued_at: DateTime<Utc>,
    /// When it ends, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who the upstream says the person is (display only).
    pub identity: Option<String>,
}

/// One person's connection to a server, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRecord {
    /// The server's name.
    pub server: String,
    /// The person's email.
    pub email: String,
    /// `header` or `oauth`.
    pub kind: String,
    /// When it was made or last replaced.
    pub connected_at: DateTime<Utc>,
    /// Who the upstream says the person is (OAuth, when known).
    pub identity: Option<String>,
    /// When the upstream access token ends (OAuth, when known).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Makes server `name`'s users bring their own credential (`Some`), or stops it (`None`,
    /// which forgets every connection to it). False when there is no such server.
    pub async fn set_user_auth(&self, actor: &Actor, name: &str, auth: Option<&UserAuth>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(id): Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM servers WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?
        else {
            return Ok(false);
        };
        match auth {
            Some(a) => {
                let o = a.oauth.as_ref();
                let secret = o.and_then(|o| o.client_secret.as_ref());
                // A change of mode or client forgets what was learnt and every connection made
                // through the old one.
                let changed: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM server_user_auth WHERE server_id = $1
                       AND (kind, header_name, prefix, client_id) IS DISTINCT FROM ($2, $3, $4, $5))",
                )
                .bind(id)
                .bind(a.kind())
                .bind(&a.header)
                .bind(&a.prefix)
                .bind(o.and_then(|o| o.client_id.as_deref()))
                .fetch_one(&mut *tx)
                .await?;
                if changed {
                    sqlx::query("DELETE FROM connections WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO server_user_auth (server_id, kind, header_name, prefix, scope, client_id,
                         client_secret_nonce, client_secret_ciphertext, client_preregistered, authorization_server)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
                     ON CONFLICT (server_id) DO UPDATE SET kind = $2, header_name = $3, prefix = $4, scope = $5,
                         client_id = $6, client_secret_nonce = $7, client_secret_ciphertext = $8,
                         client_preregistered = $9, authorization_server = NULL",
                )
                .bind(id)
                .bind(a.kind())
                .bind(&a.header)
                .bind(&a.prefix)
                .bind(o.and_then(|o| o.scope.as_deref()))
                .bind(o.and_then(|o| o.client_id.as_deref()))
                .bind(secret.map(|s| &s.nonce))
                .bind(secret.map(|s| &s.ciphertext))
                .bind(o.is_some_and(|o| o.preregistered))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM server_user_auth WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM connections WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
        let details = json!({"server": name, "user_auth": auth.map(|a| json!({"kind": a.kind(), "header": a.header}))});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        notify_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How server `id`'s users bring their own credential, if they do.
    pub async fn user_auth(&self, server_id: Uuid) -> Result<Option<UserAuth>, StoreError> {
        let row: Option<AuthRow> = sqlx::query_as(&format!("{AUTH_COLUMNS} WHERE a.server_id = $1"))
            .bind(server_id)
            .fetch_optional(self.exec())
            .await?;
        Ok(row.map(|r| r.into_parts().1))
    }

    /// Records what was learnt about OAuth server `server_id`'s authorization server, and the
    /// client Tessera registered there (kept when an administrator gave one). A client
    /// registered by another instance meanwhile wins: the stored one is returned.
    pub async fn save_oauth_client(
        &self,
        server_id: Uuid,
        authorization_server: &serde_json::Value,
        client_id: &str,
        client_secret: Option<&Sealed>,
    ) -> Result<Option<UserAuth>, StoreError> {
        sqlx::query(
            "UPDATE server_user_auth SET authorization_server = $2,
                 client_id = CASE WHEN client_preregistered OR client_id IS NOT NULL THEN client_id ELSE $3 END,
                 client_secret_nonce = CASE WHEN client_preregistered OR client_id IS NOT NULL THEN client_secret_nonce ELSE $4 END,
                 client_secret_ciphertext = CASE WHEN client_preregistered OR client_id IS NOT NULL THEN client_secret_ciphertext ELSE $5 END
             WHERE server_id = $1 AND kind = 'oauth'",
        )
        .bind(server_id)
        .bind(authorization_server)
        .bind(client_id)
        .bind(client_secret.map(|s| &s.nonce))
        .bind(client_secret.map(|s| &s.ciphertext))
        .execute(self.exec())
        .await?;
        self.user_auth(server_id).await
    }

    /// Stores (or replaces) `user_id`'s OAuth tokens for server `server_id` (`name`).
    pub async fn put_oauth_connection(
        &self,
        actor: &Actor,
        user_id: Uuid,
        server_id: Uuid,
        name: &str,
        tokens: &SealedTokens,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO connections (user_id, server_id, kind, nonce, ciphertext, connected_at, issued_at, expires_at, identity)
             VALUES ($1, $2, 'oauth', $3, $4, $5, $5, $6, $7)
             ON CONFLICT (user_id, server_id) DO UPDATE SET kind = 'oauth', nonce = $3, ciphertext = $4,
                 connected_at = $5, issued_at = $5, expires_at = $6, identity = $7, refreshing_until = NULL",
        )
        .bind(user_id)
        .bind(server_id)
        .bind(&tokens.value.nonce)
        .bind(&tokens.value.ciphertext)
        .bind(tokens.issued_at)
        .bind(tokens.expires_at)
        .bind(&tokens.identity)
        .execute(&mut *tx)
        .await?;
        let details = json!({"server": name, "user_id": user_id, "connected": true, "kind": "oauth"});
        recorded(tx, actor, name, details).await
    }

    /// OAuth connections, sealed: of one person (`user`) or to one server (`server`), as
    /// (server name, person, tokens). Read before they are forgotten, to revoke them upstream.
    pub async fn oauth_connections(
        &self,
        user: Option<Uuid>,
        server: Option<Uuid>,
    ) -> Result<Vec<(String, Uuid, Sealed)>, StoreError> {
        let rows: Vec<(String, Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT s.name, c.user_id, c.nonce, c.ciphertext FROM connections c JOIN servers s ON s.id = c.server_id
             WHERE c.kind = 'oauth' AND ($1::uuid IS NULL OR c.user_id = $1) AND ($2::uuid IS NULL OR c.server_id = $2)",
        )
        .bind(user)
        .bind(server)
        .fetch_all(self.exec())
        .await?;
        Ok(rows.into_iter().map(|(name, user, nonce, ciphertext)| (name, user, Sealed { nonce, ciphertext })).collect())
    }

    /// `user_id`'s sealed credential for `server_id`, with its kind.
    pub async fn connection(&self, user_id: Uuid, server_id: Uuid) -> Result<Option<(String, Sealed)>, StoreError> {
        let row: Option<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT kind, nonce, ciphertext FROM connections WHERE user_id = $1 AND server_id = $2")
                .bind(user_id)
                .bind(server_id)
                .fetch_optional(self.exec())
                .await?;
        Ok(row.map(|(kind, nonce, ciphertext)| (kind, Sealed { nonce, ciphertext })))
    }

    /// Claims the refresh of `user_id`'s OAuth connection to `server_id` until `until`: its
    /// tokens when this caller refreshes, `None` when another is already at it (or it is gone).
    pub async fn claim_refresh(
        &self,
        user_id: Uuid,
        server_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Sealed>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "UPDATE connections SET refreshing_until = $4
             WHERE user_id = $1 AND server_id = $2 AND kind = 'oauth'
               AND (refreshing_until IS NULL OR refreshing_until < $3)
             RETURNING nonce, ciphertext",
        )
        .bind(user_id)
        .bind(server_id)
        .bind(now)
        .bind(until)
        .fetch_optional(self.exec())
        .await?;
        Ok(row.map(|(nonce, ciphertext)| Sealed { nonce, ciphertext }))
    }

    /// Stores refreshed tokens and ends the claim; announces the server so every gateway
    /// sends the new access token.
    pub async fn finish_refresh(
        &self,
        user_id: Uuid,
        server_id: Uuid,
        name: &str,
        tokens: &SealedTokens,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE connections SET nonce = $3, ciphertext = $4, issued_at = $5, expires_at = $6,
                 identity = COALESCE($7, identity), refreshing_until = NULL
             WHERE user_id = $1 AND server_id = $2 AND kind = 'oauth'",
        )
        .bind(user_id)
        .bind(server_id)
        .bind(&tokens.value.nonce)
        .bind(&tokens.value.ciphertext)
        .bind(tokens.issued_at)
        .bind(tokens.expires_at)
        .bind(&tokens.identity)
        .execute(&mut *tx)
        .await?;
        notify_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a refresh claim that did not refresh (the server was unreachable).
    pub async fn release_refresh(&self, user_id: Uuid, server_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE connections SET refreshing_until = NULL WHERE user_id = $1 AND server_id = $2")
            .bind(user_id)
            .bind(server_id)
            .execute(self.exec())
            .await?;
        Ok(())
    }

    /// OAuth connections whose access token ends before `horizon` and that nobody is
    /// refreshing: (server id, server name, user id, issued at, expires at), soonest first.
    pub async fn expiring_connections(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(Uuid, String, Uuid, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.server_id, s.name, c.user_id, COALESCE(c.issued_at, c.connected_at), c.expires_at
             FROM connections c JOIN servers s ON s.id = c.server_id
             WHERE c.kind = 'oauth' AND c.expires_at < $2 AND (c.refreshing_until IS NULL OR c.refreshing_until < $1)
             ORDER BY c.expires_at LIMIT $3",
        )
        .bind(now)
        .bind(horizon)
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }

    /// Stores (or replaces) `user_id`'s sealed credential for server `server_id` (`name`).
    pub async fn put_connection(
        &self,
        actor: &Actor,
        user_id: Uuid,
        server_id: Uuid,
        name: &str,
        value: &Sealed,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO connections (user_id, server_id, kind, nonce, ciphertext, connected_at)
             VALUES ($1, $2, 'header', $3, $4, $5)
             ON CONFLICT (user_id, server_id) DO UPDATE SET nonce = $3, ciphertext = $4, connected_at = $5",
        )
        .bind(user_id)
        .bind(server_id)
        .bind(&value.nonce)
        .bind(&value.ciphertext)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = json!({"server": name, "user_id": user_id, "connected": true});
        recorded(tx, actor, name, details).await
    }

    /// Forgets `user_id`'s credential for server `server_id` (`name`); false when there was none.
    pub async fn delete_connection(
        &self,
        actor: &Actor,
        user_id: Uuid,
        server_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM connections WHERE user_id = $1 AND server_id = $2")
            .bind(user_id)
            .bind(server_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            let details = json!({"server": name, "user_id": user_id, "connected": false});
            audit::append(&mut tx, actor, AuditAction::ServerConnection, None, details).await?;
            notify_server(&mut tx, name).await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Every sealed credential for server `server_id`, by person (the gateway's cache fill).
    pub async fn server_connections(&self, server_id: Uuid) -> Result<Vec<(Uuid, Sealed)>, StoreError> {
        let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT user_id, nonce, ciphertext FROM connections WHERE server_id = $1")
                .bind(server_id)
                .fetch_all(self.exec())
                .await?;
        Ok(rows.into_iter().map(|(user, nonce, ciphertext)| (user, Sealed { nonce, ciphertext })).collect())
    }

    /// Connections, newest first: one person's (`Some`) or everyone's (admins' view).
    pub async fn connections(&self, user_id: Option<Uuid>) -> Result<Vec<ConnectionRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ConnectionRecord>(
            "SELECT s.name AS server, u.email, c.kind, c.connected_at, c.identity, c.expires_at FROM connections c
             JOIN servers s ON s.id = c.server_id JOIN users u ON u.id = c.user_id
             WHERE $1::uuid IS NULL OR c.user_id = $1 ORDER BY c.connected_at DESC, s.name",
        )
        .bind(user_id)
        .fetch_all(self.exec())
        .await?)
    }

    /// The servers whose users bring their own credential, with how: (name, auth).
    pub async fn personal_servers(&self) -> Result<Vec<(String, UserAuth)>, StoreError> {
        let rows: Vec<AuthRow> =
            sqlx::query_as(&format!("{AUTH_COLUMNS} ORDER BY s.name")).fetch_all(self.exec()).await?;
        Ok(rows.into_iter().map(AuthRow::into_parts).collect())
    }
}

const AUTH_COLUMNS: &str = "SELECT s.name, a.kind, a.header_name, a.prefix, a.scope, a.client_id,
    a.client_secret_nonce, a.client_secret_ciphertext, a.client_preregistered, a.authorization_server
    FROM server_user_auth a JOIN servers s ON s.id = a.server_id";

#[derive(sqlx::FromRow)]
struct AuthRow {
    name: String,
    kind: String,
    header_name: String,
    prefix: String,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret_nonce: Option<Vec<u8>>,
    client_secret_ciphertext: Option<Vec<u8>>,
    client_preregistered: bool,
    authorization_server: Option<serde_json::Value>,
}

impl AuthRow {
    fn into_parts(self) -> (String, UserAuth) {
        let oauth = (self.kind == "oauth").then_some(OAuthSetup {
            scope: self.scope,
            client_id: self.client_id,
            client_secret: match (self.client_secret_nonce, self.client_secret_ciphertext) {
                (Some(nonce), Some(ciphertext)) => Some(Sealed { nonce, ciphertext }),
                _ => None,
            },
            preregistered: self.client_preregistered,
            authorization_server: self.authorization_server,
        });
        (self.name, UserAuth { header: self.header_name, prefix: self.prefix, oauth })
    }
}

/// Ends a connection change: audited, the server announced (every gateway drops its cached
/// credentials), committed.
async fn recorded(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &Actor,
    name: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    audit::append(&mut tx, actor, AuditAction::ServerConnection, None, details).await?;
    notify_server(&mut tx, name).await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets every connection of `user_id` (their account was deactivated) inside the caller's
/// transaction, announcing each server whose cached credentials change.
pub(crate) async fn forget_connections_of(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<(), StoreError> {
    let servers: Vec<String> = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM connections WHERE user_id = $1 RETURNING server_id)
         SELECT s.name FROM servers s WHERE s.id IN (SELECT server_id FROM gone)",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    for name in servers {
        notify_server(&mut *conn, &name).await?;
    }
    Ok(())
}
