//! State every replica must share (issue #16): rate-limit budgets, leased in slices, and which
//! token opened which gateway session.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreError};

/// What one lease round trip granted, on the database's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Cells granted (0 = the budget is used up for now).
    pub granted: u32,
    /// The budget's theoretical arrival time after the grant (µs since the epoch).
    pub tat_us: i64,
    /// The database clock when it was granted (µs since the epoch).
    pub now_us: i64,
}

impl Store {
    /// Takes up to `want` cells of the GCRA budget `scope`/`key` (emission interval
    /// `interval_us`, burst `burst`) in one atomic statement: the budget's theoretical arrival
    /// time moves forward by the cells granted, so every replica draws from one budget.
    pub async fn lease_rate_limit(
        &self,
        scope: &str,
        key: Uuid,
        interval_us: i64,
        burst: u32,
        want: u32,
    ) -> Result<Lease, StoreError> {
        // `EXCLUDED.seen_us` carries the statement's clock into the conflict branch. The cells
        // available are ⌊(now + burst·T − max(tat, now)) / T⌋, the GCRA rule for a batch.
        let row: (i64, i32, i64) = sqlx::query_as(
            "INSERT INTO rate_limit_leases AS l (scope, key, tat_us, seen_us, granted)
             SELECT $1, $2, c.now_us + least($5, $4)::bigint * $3, c.now_us, least($5, $4)
             FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us) c
             ON CONFLICT (scope, key) DO UPDATE SET
               granted = greatest(0, least($5::bigint,
                   (EXCLUDED.seen_us + $4::bigint * $3 - greatest(l.tat_us, EXCLUDED.seen_us)) / $3))::integer,
               tat_us = greatest(l.tat_us, EXCLUDED.seen_us) + $3 * greatest(0, least($5::bigint,
                   (EXCLUDED.seen_us + $4::bigint * $3 - greatest(l.tat_us, EXCLUDED.seen_us)) / $3)),
               seen_us = EXCLUDED.seen_us
             RETURNING tat_us, granted, seen_us",
        )
        .bind(scope)
        .bind(key)
        .bind(interval_us)
        .bind(i64::from(burst))
        .bind(i64::from(want))
        .fetch_one(self.exec())
        .await?;
        Ok(Lease { tat_us: row.0, granted: u32::try_from(row.1).unwrap_or(0), now_us: row.2 })
    }
}

impl Store {
    /// Records that `token_id` opened upstream session `session_sha256` of `server_id` (the
    /// first binding wins, as in each process's own map).
    pub async fn bind_gateway_session(
        &self,
        server_id: Uuid,
        session_sha256: &[u8; 32],
        token_id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateway_sessions (server_id, session_sha256, token_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(server_id)
        .bind(session_sha256.as_slice())
        .bind(token_id)
        .execute(self.exec())
        .await?;
        Ok(())
    }

    /// The token that opened a gateway session, if any replica recorded one.
    pub async fn gateway_session_owner(
        &self,
        server_id: Uuid,
        session_sha256: &[u8; 32],
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar("SELECT token_id FROM gateway_sessions WHERE server_id = $1 AND session_sha256 = $2")
            .bind(server_id)
            .bind(session_sha256.as_slice())
            .fetch_optional(self.exec())
            .await?)
    }

    /// Forgets shared state nobody needs any more: budgets that have refilled (a row whose
    /// `tat_us` is past is the same as no row) and gateway sessions opened before
    /// `sessions_before` or whose token can no longer use them. Returns the rows deleted.
    pub async fn prune_shared_state(
        &self,
        sessions_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let leases = sqlx::query(
            "DELETE FROM rate_limit_leases WHERE tat_us < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .execute(self.exec())
        .await?
        .rows_affected();
        let sessions = sqlx::query(
            "DELETE FROM gateway_sessions g WHERE g.created_at < $1
               OR EXISTS (SELECT 1 FROM tokens t WHERE t.id = g.token_id AND t.expires_at <= $2)
               OR EXISTS (SELECT 1 FROM revocations r WHERE r.token_id = g.token_id AND r.effective_at <= $2)",
        )
        .bind(sessions_before)
        .bind(now)
        .execute(self.exec())
        .await?
        .rows_affected();
        Ok(leases + sessions)
    }

    /// Forgets a gateway session (after its DELETE).
    pub async fn end_gateway_session(&self, server_id: Uuid, session_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM gateway_sessions WHERE server_id = $1 AND session_sha256 = $2")
            .bind(server_id)
            .bind(session_sha256.as_slice())
            .execute(self.exec())
            .await?;
        Ok(())
    }
}
