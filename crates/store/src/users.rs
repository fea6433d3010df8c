//! Accounts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::conflict_on_unique;
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// A Tessera account. The password hash stays inside the store.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    /// Stable id (UUIDv7).
    pub id: Uuid,
    /// Login email, unique regardless of case.
    pub email: String,
    /// Admins see and manage every token.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Set when the account may no longer sign in or use tokens.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Requests per hour shared by all of the user's tokens (None: only each token's own).
    pub rate_limit_per_hour: Option<i32>,
}

pub(crate) const USER_COLUMNS: &str = "id, email, is_admin, created_at, disabled_at, rate_limit_per_hour";

impl Store {
    /// Creates an account; a taken email (in any case) is [`StoreError::Conflict`].
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
        is_admin: bool,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user = sqlx::query_as::<_, User>(&format!(
            "INSERT INTO users (id, email, password_hash, is_admin) VALUES ($1, $2, $3, $4)
             RETURNING {USER_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(email.trim())
        .bind(password_hash)
        .bind(is_admin)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique("a user with this email"))?;
        audit::append(
            &mut tx,
            actor,
            AuditAction::UserCreate,
            None,
            serde_json::json!({"user_id": user.id, "is_admin": is_admin}),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Finds an account by email, ignoring case.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)"))
            .bind(email.trim())
            .fetch_optional(self.exec())
            .await?)
    }

    /// Finds an account by id.
    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.exec())
            .await?)
    }

    /// The account and its password hash, for sign-in.
    pub async fn credentials(&self, email: &str) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row: Option<(Uuid, Option<String>)> =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(email) = lower($1)")
                .bind(email.trim())
                .fetch_optional(self.exec())
                .await?;
        let Some((id, hash)) = row else { return Ok(None) };
        Ok(self.user_by_id(id).await?.map(|u| (u, hash)))
    }

    /// Makes an account an administrator (`admin`) or an ordinary user. Demoting alone leaves
    /// its tokens as they are: `TokenService::set_admin` narrows them too.
    pub async fn set_user_admin(&self, email: &str, admin: bool, actor: &Actor) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user = sqlx::query_as::<_, User>(&format!(
            "UPDATE users SET is_admin = $2, admin_from_idp = false WHERE lower(email) = lower($1) RETURNING {USER_COLUMNS}"
        ))
        .bind(email.trim())
        .bind(admin)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        let action = if admin { AuditAction::UserPromote } else { AuditAction::UserDemote };
        audit::append(&mut tx, actor, action, None, serde_json::json!({"user_id": user.id})).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets the password (an argon2id PHC string) of the account `email`.
    pub async fn set_user_password(&self, email: &str, password_hash: &str, actor: &Actor) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user = sqlx::query_as::<_, User>(&format!(
            "UPDATE users SET password_hash = $2 WHERE lower(email) = lower($1) RETURNING {USER_COLUMNS}"
        ))
        .bind(email.trim())
        .bind(password_hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        audit::append(
            &mut tx,
            actor,
            AuditAction::UserUpdate,
            None,
            serde_json::json!({"user_id": user.id, "password": "set"}),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets or clears (None) the per-user rate limit of the account `id`; every instance
    /// forgets its cached rows of the user's tokens so the new budget applies at once.
    pub async fn set_user_rate_limit(
        &self,
        id: Uuid,
        per_hour: Option<i32>,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user = sqlx::query_as::<_, User>(&format!(
            "UPDATE users SET rate_limit_per_hour = $2 WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(per_hour)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        audit::append(
            &mut tx,
            actor,
            AuditAction::UserLimit,
            None,
            serde_json::json!({"user_id": user.id, "rate_limit_per_hour": per_hour}),
        )
        .await?;
        forget_tokens_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Deactivates (`active` false) or reactivates the account `id` (an account SCIM deleted
    /// is never reactivated: it is not found). Deactivating ends its
    /// sessions and makes every instance forget its cached token rows (their owner is now
    /// disabled), in the same transaction; sign-in checks `disabled_at` too.
    pub async fn set_user_active(
        &self,
        id: Uuid,
        active: bool,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user = sqlx::query_as::<_, User>(&format!(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN NULL ELSE COALESCE(disabled_at, $3) END
             WHERE id = $1 AND (NOT $2 OR deleted_at IS NULL) RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(active)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        if !active {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            crate::connections::forget_connections_of(&mut tx, id).await?;
        }
        let action = if active { AuditAction::UserEnable } else { AuditAction::UserDisable };
        audit::append(&mut tx, actor, action, None, serde_json::json!({"user_id": id})).await?;
        forget_tokens_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Every account, oldest first.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"))
            .fetch_all(self.exec())
            .await?)
    }

    /// Number of accounts (first-start bootstrap needs to know whether there are none).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(self.exec()).await?)
    }
}

/// Announces every token of `user_id` on the change feed, so every instance drops its cached
/// rows of them (they carry the owner's limit and state) when the transaction commits.
async fn forget_tokens_of(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, id::text) FROM tokens WHERE user_id = $2")
        .bind(crate::events::EVENTS_CHANNEL)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
