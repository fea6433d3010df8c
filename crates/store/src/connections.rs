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
/// prefixed (e.g. `Bearer `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuth {
    /// Lower-case header name.
    pub header: String,
    /// Put before each person's value (`""` or e.g. `"Bearer "`).
    pub prefix: String,
}

/// One person's connection to a server, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRecord {
    /// The server's name.
    pub server: String,
    /// The person's email.
    pub email: String,
    /// `header`.
    pub kind: String,
    /// When it was made or last replaced.
    pub connected_at: DateTime<Utc>,
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
                sqlx::query(
                    "INSERT INTO server_user_auth (server_id, kind, header_name, prefix) VALUES ($1, 'header', $2, $3)
                     ON CONFLICT (server_id) DO UPDATE SET header_name = $2, prefix = $3",
                )
                .bind(id)
                .bind(&a.header)
                .bind(&a.prefix)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM server_user_auth WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM connections WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
        let details = json!({"server": name, "user_auth": auth.map(|a| json!({"kind": "header", "header": a.header}))});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        notify_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How server `id`'s users bring their own credential, if they do.
    pub async fn user_auth(&self, server_id: Uuid) -> Result<Option<UserAuth>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT header_name, prefix FROM server_user_auth WHERE server_id = $1")
                .bind(server_id)
                .fetch_optional(self.exec())
                .await?;
        Ok(row.map(|(header, prefix)| UserAuth { header, prefix }))
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
        audit::append(&mut tx, actor, AuditAction::ServerConnection, None, details).await?;
        notify_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
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
            "SELECT s.name AS server, u.email, c.kind, c.connected_at FROM connections c
             JOIN servers s ON s.id = c.server_id JOIN users u ON u.id = c.user_id
             WHERE $1::uuid IS NULL OR c.user_id = $1 ORDER BY c.connected_at DESC, s.name",
        )
        .bind(user_id)
        .fetch_all(self.exec())
        .await?)
    }

    /// The servers whose users bring their own credential, with how: (name, auth).
    pub async fn personal_servers(&self) -> Result<Vec<(String, UserAuth)>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.name, a.header_name, a.prefix FROM server_user_auth a JOIN servers s ON s.id = a.server_id
             ORDER BY s.name",
        )
        .fetch_all(self.exec())
        .await?;
        Ok(rows.into_iter().map(|(name, header, prefix)| (name, UserAuth { header, prefix })).collect())
    }
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
