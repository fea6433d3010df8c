//! The executor every store query runs on: the pool itself, or, behind a transaction-mode
//! pooler such as PgBouncer, the pool with each statement in its own transaction.
//!
//! Why: sqlx runs a statement in two protocol round trips (Parse/Describe/Sync, then
//! Bind/Execute/Sync) and names its prepared statements (`sqlx_s_N`) even with the statement
//! cache off. A transaction-mode pooler hands the server connection to another client at
//! every idle `ReadyForQuery`, so between the two halves the statement may be gone, or another
//! client's. Inside a transaction the server connection stays ours; the pooler's
//! `server_reset_query = DEALLOCATE ALL` (with `server_reset_query_always = 1`) then drops the
//! names before the next client (README "Running more than one instance").

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres};

/// The pool, wrapping each statement in a transaction when `per_statement_tx`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exec<'p> {
    pub(crate) pool: &'p PgPool,
    pub(crate) per_statement_tx: bool,
}

impl<'p> Executor<'p> for Exec<'p> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.per_statement_tx {
            return self.pool.fetch_many(query);
        }
        let pool = self.pool.clone();
        // Our statements return bounded result sets, so collecting them is fine.
        let all = async move {
            let mut tx = pool.begin().await?;
            let items: Vec<_> = (&mut *tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(items)
        };
        stream::once(all).map_ok(|items| stream::iter(items.into_iter().map(Ok))).try_flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.per_statement_tx {
            return self.pool.fetch_optional(query);
        }
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let row = (&mut *tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}
