//! refinery migrations from `migrations/`, run over a sqlx connection.
//!
//! refinery ships drivers for tokio-postgres but not sqlx; implementing its two small async
//! traits for a sqlx connection avoids a second Postgres client in the binary.

use futures_util::future::BoxFuture;
use refinery_core::Migration;
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use sqlx::{Executor, PgPool, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

refinery::embed_migrations!("../../migrations");

/// A sqlx pool that refinery can migrate.
pub(crate) struct Migrator(pub(crate) PgPool);

impl AsyncTransaction for Migrator {
    type Error = sqlx::Error;

    fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send + 'a {
        // Owned data in a boxed future: sqlx's executor lifetimes otherwise defeat the
        // compiler's proof that the future is Send for every lifetime.
        let queries: Vec<String> = queries.map(str::to_owned).collect();
        let pool = self.0.clone();
        let fut: BoxFuture<'static, Result<usize, sqlx::Error>> = Box::pin(run_in_transaction(pool, queries));
        fut
    }
}

async fn run_in_transaction(pool: PgPool, queries: Vec<String>) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    for query in &queries {
        tx.execute(sqlx::raw_sql(query)).await?;
    }
    tx.commit().await?;
    Ok(queries.len())
}

impl AsyncQuery<Vec<Migration>> for Migrator {
    fn query<'a>(
        &'a mut self,
        query: &'a str,
    ) -> impl Future<Output = Result<Vec<Migration>, Self::Error>> + Send + 'a {
        let fut: BoxFuture<'static, Result<Vec<Migration>, sqlx::Error>> =
            Box::pin(applied(self.0.clone(), query.to_owned()));
        fut
    }
}

async fn applied(pool: PgPool, query: String) -> Result<Vec<Migration>, sqlx::Error> {
    {
        let rows = pool.fetch_all(sqlx::raw_sql(&query)).await?;
        let mut applied = Vec::with_capacity(rows.len());
        for row in rows {
            let version: i32 = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let applied_on: String = row.try_get(2)?;
            let checksum: String = row.try_get(3)?;
            let applied_on =
                OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let checksum = checksum.parse::<u64>().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            applied.push(Migration::applied(version, name, applied_on, checksum));
        }
        Ok(applied)
    }
}

impl AsyncMigrate for Migrator {}

/// The newest migration version this build knows.
pub(crate) fn latest_version() -> i32 {
    migrations::runner().get_migrations().iter().map(|m| m.version()).max().unwrap_or(0)
}

/// Changes whenever any migration is added or edited (names test templates).
pub(crate) fn fingerprint() -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for m in migrations::runner().get_migrations() {
        m.version().hash(&mut h);
        m.checksum().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}
