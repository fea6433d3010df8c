//! Shared rate-limit state: replicas lease slices of a GCRA budget (issue #16).

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
