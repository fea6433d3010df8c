//! The store's one error type.

/// What went wrong talking to PostgreSQL, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `DATABASE_URL` is not a PostgreSQL URL.
    #[error("DATABASE_URL is not a valid postgres:// URL")]
    BadUrl,
    /// The database cannot be reached (connection refused, timeout, pool closed).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Migrations have not been applied to this database.
    #[error("database migrations are not applied: run `tessera migrate`")]
    MigrationsPending,
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A unique value is already taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The row does not exist (or the caller may not see it).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A stored value is malformed (a hash of the wrong length, a key of an unknown alg).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    /// Whether the failure is the database being out of reach (→ 503, never "accept").
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Database(other),
        }
    }
}

/// Maps a unique violation to [`StoreError::Conflict`].
pub(crate) fn conflict_on_unique(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => StoreError::Conflict(what),
        _ => StoreError::from(e),
    }
}
