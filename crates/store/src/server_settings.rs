//! `server_settings`: facts a running server publishes for other processes (the CLI) that
//! share its database.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// Name of the setting holding the public URL `tessera serve` mints tokens for.
pub const PUBLIC_URL_SETTING: &str = "public_url";

impl Store {
    /// Records (or replaces) a server setting.
    pub async fn set_server_setting(&self, name: &str, value: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO server_settings (name, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(self.exec())
        .await?;
        Ok(())
    }

    /// A server setting, if a server recorded it.
    pub async fn server_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let value = sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.exec())
            .await?;
        Ok(value)
    }
}
