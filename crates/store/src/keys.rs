//! Signing keys: generated on first start, kept only here and in memory.

use chrono::{DateTime, Utc};
use tessera_core::keys::{Algorithm, SecretBytes, StoredKey, generate_ed25519, new_kid};

use crate::{Actor, AuditAction, Store, StoreError, audit};

/// A key ring as persisted: every key that still verifies, and the one that signs.
#[derive(Debug)]
pub struct KeySet {
    /// Keys that verify tokens (the signing key included).
    pub keys: Vec<StoredKey>,
    /// The key that signs new tokens.
    pub signing_kid: String,
    /// When each key was created and retired, in the order of `keys`.
    pub lifetimes: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

/// A key retired longer ago than the longest token lifetime has nothing left to verify.
const VERIFY_WINDOW_DAYS: i64 = 366;

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    public_key: Vec<u8>,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Loads the key ring, generating the first Ed25519 key if there is none. Several
    /// instances starting at once agree on one key (advisory lock).
    pub async fn load_or_create_keys(&self, now: DateTime<Utc>) -> Result<KeySet, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7370708)").execute(&mut *tx).await?;
        let active: Option<String> = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
            .fetch_optional(&mut *tx)
            .await?;
        if active.is_none() {
            insert_new_key(&mut tx, now).await?;
            audit::append(&mut tx, &Actor::cli(), AuditAction::KeyCreate, None, serde_json::json!({})).await?;
        }
        tx.commit().await?;
        self.key_set(now).await
    }

    /// Adds a new signing key and retires the current one (it keeps verifying).
    pub async fn rotate_keys(&self, now: DateTime<Utc>, actor: &Actor) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7370708)").execute(&mut *tx).await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let kid = insert_new_key(&mut tx, now).await?;
        audit::append(&mut tx, actor, AuditAction::KeyRotate, None, serde_json::json!({"kid": kid})).await?;
        tx.commit().await?;
        Ok(kid)
    }

    /// Every key that still verifies, and the signing one.
    pub async fn key_set(&self, now: DateTime<Utc>) -> Result<KeySet, StoreError> {
        let rows = sqlx::query_as::<_, KeyRow>(
            "SELECT kid, alg, private_key, public_key, created_at, retired_at FROM signing_keys
             WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at",
        )
        .bind(now - chrono::Duration::days(VERIFY_WINDOW_DAYS))
        .fetch_all(self.exec())
        .await?;
        let mut set = KeySet { keys: Vec::new(), signing_kid: String::new(), lifetimes: Vec::new() };
        for row in rows {
            let alg: Algorithm =
                row.alg.parse().map_err(|_| StoreError::Corrupt(format!("key {} has unknown alg", row.kid)))?;
            if row.retired_at.is_none() {
                set.signing_kid = row.kid.clone();
            }
            set.lifetimes.push((row.created_at, row.retired_at));
            set.keys.push(StoredKey {
                kid: row.kid,
                alg,
                private_key: SecretBytes::new(row.private_key),
                public_key: row.public_key,
            });
        }
        if set.signing_kid.is_empty() {
            return Err(StoreError::NotFound("signing key"));
        }
        Ok(set)
    }
}

async fn insert_new_key(conn: &mut sqlx::PgConnection, now: DateTime<Utc>) -> Result<String, StoreError> {
    let key = generate_ed25519(new_kid(now));
    sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(key.private_key.expose())
        .bind(&key.public_key)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(key.kid)
}
