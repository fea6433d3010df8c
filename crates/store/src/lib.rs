//! Tessera's PostgreSQL store.
//!
//! Every table of DESIGN.md lives here behind typed calls; callers never write SQL. Each
//! change to a token's state runs `NOTIFY tessera_token_events` in its own transaction, so
//! validators on every instance can evict their caches the moment it commits.

mod alerts;
mod audit;
mod connections;
mod error;
mod events;
mod exec;
mod keys;
mod leases;
mod migrate;
mod oauth;
mod pins;
mod scim;
mod server_settings;
mod servers;
mod sessions;
mod sso;
mod stdio;
mod teams;
mod tokens;
mod usage;
mod users;
mod workspace;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

pub use alerts::{AlertEvent, AttemptResult, Delivery, DueDelivery, NewWebhook, Webhook};
pub use audit::{Actor, AuditAction, AuditEvent};
pub use connections::{ConnectionRecord, OAuthSetup, SealedTokens, UserAuth};
pub use error::StoreError;
pub use events::{EVENTS_CHANNEL, TokenEvent, TokenEvents};
pub use keys::KeySet;
pub use leases::Lease;
pub use oauth::{ActiveGrant, ClientKind, CodeRecord, ListedOAuthClient, NewCode, OAuthClient, RefreshRecord};
pub use pins::{ApprovedTool, HeldTool};
pub use scim::{ScimGroupRecord, ScimUserRecord, ScimUserWrite, UserFilter, placeholder_email};
pub use server_settings::PUBLIC_URL_SETTING;
pub use servers::{
    CredentialRecord, DiscoveredTool, NewCredential, NewServer, SealedHeader, ServedDefinition, ServerRecord,
    ServerUpdate, ToolRecord,
};
pub use sso::{IdpPerson, IdpSignIn};
pub use stdio::StoredCommand;
pub use teams::{EVERYONE, TeamRecord};
pub use tokens::{NewToken, TokenFilter, TokenPage, TokenRecord, TokenStatus, TokenTx, TokenUpdate};
pub use usage::UsageIncrement;
pub use users::User;
pub use workspace::{Agent, AgentUpdate, ContextEntry, Task, TaskUpdate};

/// Connection settings for the pool.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// A direct (session) connection for LISTEN and migrations, when the pool's URL goes
    /// through a transaction-mode pooler; its presence also puts each pooled statement in its
    /// own transaction with no statement cache (see `exec.rs`).
    pub listen_url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5), listen_url: None }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Pool checkouts (each is at least one round trip to the server); see [`Store::checkouts`].
    checkouts: Arc<AtomicU64>,
    /// Session connections (LISTEN, migration lock) when `pool` is behind a pooler.
    direct: Option<PgPool>,
    /// Each pooled statement in its own transaction (the pool is behind a pooler).
    per_statement_tx: bool,
}

impl Store {
    /// Connects to `url` and checks that the server answers.
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let mut options: PgConnectOptions = url.parse().map_err(|_| StoreError::BadUrl)?;
        let checkouts = Arc::new(AtomicU64::new(0));
        let (on_reuse, on_connect) = (Arc::clone(&checkouts), Arc::clone(&checkouts));
        let direct = match &config.listen_url {
            Some(listen) => {
                let listen: PgConnectOptions = listen.parse().map_err(|_| StoreError::BadUrl)?;
                // A cached statement would outlive the transaction that prepared it.
                options = options.statement_cache_capacity(0);
                let direct = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(listen)
                    .await
                    .map_err(StoreError::from)?;
                Some(direct)
            }
            None => None,
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            // Counted here rather than per query so the request path pays one relaxed add per
            // checkout and no wrapper sits around every query (issue 16, target 4).
            .before_acquire(move |_, _| {
                on_reuse.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(true) })
            })
            .after_connect(move |_, _| {
                on_connect.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(()) })
            })
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        let per_statement_tx = direct.is_some();
        Ok(Self { pool, checkouts, direct, per_statement_tx })
    }

    /// Wraps an existing pool (tests, tools); its checkouts are not counted.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool, checkouts: Arc::new(AtomicU64::new(0)), direct: None, per_statement_tx: false }
    }

    /// Connections taken from the pool since start (an idle one reused, or a new one): each
    /// serves at least one round trip, a transaction several. The change feed's LISTEN
    /// connection is not from the pool and not counted. `/metrics` exports it.
    pub fn checkouts(&self) -> u64 {
        self.checkouts.load(Ordering::Relaxed)
    }

    /// What single statements run on.
    pub(crate) fn exec(&self) -> exec::Exec<'_> {
        exec::Exec { pool: &self.pool, per_statement_tx: self.per_statement_tx }
    }

    /// Session connections: LISTEN and the migration lock need one, which a transaction-mode
    /// pooler does not give.
    pub(crate) fn session_pool(&self) -> &PgPool {
        self.direct.as_ref().unwrap_or(&self.pool)
    }

    /// The underlying pool, for components that need their own connections.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations; returns how many ran. Safe to call from several
    /// instances at once: an advisory lock serialises them.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        // Session-level lock on a connection held for the whole run; the migrations
        // themselves run on other pooled connections.
        let pool = self.session_pool();
        let mut lock = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(7370707)").execute(&mut *lock).await?;
        let result = migrate::migrations::runner()
            .set_abort_divergent(true)
            .run_async(&mut migrate::Migrator(pool.clone()))
            .await;
        sqlx::query("SELECT pg_advisory_unlock(7370707)").execute(&mut *lock).await?;
        let report = result.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(report.applied_migrations().len())
    }

    /// Ready means the database answers and every migration this build knows is applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let applied: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM refinery_schema_history")
            .fetch_one(self.exec())
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(_) => StoreError::MigrationsPending,
                other => StoreError::from(other),
            })?;
        if applied.unwrap_or(0) < migrate::latest_version() {
            return Err(StoreError::MigrationsPending);
        }
        Ok(())
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(direct) = &self.direct {
            direct.close().await;
        }
    }
}

/// A short fingerprint of the embedded migrations (test templates are named by it).
pub fn migrations_fingerprint() -> String {
    migrate::fingerprint()
}

/// Opens one connection and closes it: tells whether `url` reaches a server.
pub async fn ping(url: &str) -> Result<(), StoreError> {
    let options: PgConnectOptions = url.parse().map_err(|_| StoreError::BadUrl)?;
    let conn = sqlx::PgConnection::connect_with(&options).await?;
    conn.close().await?;
    Ok(())
}
