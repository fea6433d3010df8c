//! Browser sign-in sessions: only the SHA-256 of a session id is stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreError, User};

impl Store {
    /// Stores a new session under the hash of its id, and sweeps expired ones.
    pub async fn create_session(
        &self,
        id_sha256: &[u8; 32],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Sweeping here keeps the table small without a background job.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sessions (id_sha256, user_id, created_at, expires_at, ip) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_sha256.as_slice())
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .bind(ip)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account behind an unexpired session whose owner is not disabled.
    pub async fn session_user(&self, id_sha256: &[u8; 32], now: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT u.id, u.email, u.is_admin, u.created_at, u.disabled_at, u.rate_limit_per_hour FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_sha256 = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(id_sha256.as_slice())
        .bind(now)
        .fetch_optional(self.exec())
        .await?)
    }

    /// Ends a session; returns whether it existed.
    pub async fn delete_session(&self, id_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1")
            .bind(id_sha256.as_slice())
            .execute(self.exec())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
