//! Usage counters, written in batches by the MCP server's flusher.

use chrono::{DateTime, Utc};
use tessera_core::outcome::Outcome;
use uuid::Uuid;

use crate::{Store, StoreError};

/// Requests counted in memory for one (token, hour, method, outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    /// The token used.
    pub token_id: Uuid,
    /// The hour bucket (truncated to the hour).
    pub hour: DateTime<Utc>,
    /// MCP method, or the tool's name for `tools/call`.
    pub method: String,
    /// `ok`, `error`, `401`, `403` or `429`.
    pub outcome: Outcome,
    /// How many requests.
    pub count: i64,
    /// The newest request in the bucket.
    pub last_at: DateTime<Utc>,
    /// The client address of the newest request, if known.
    pub last_from: Option<String>,
}

/// `usage_hourly` columns in table order.
type UsageRow = (Uuid, DateTime<Utc>, String, String, i64, DateTime<Utc>);

impl Store {
    /// Adds a batch of counters in one statement, and moves each token's `last_used_at`.
    pub async fn record_usage(&self, batch: &[UsageIncrement]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO usage_hourly (token_id, hour, method, outcome, count, last_at)
             SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
             ON CONFLICT (token_id, hour, method, outcome) DO UPDATE
             SET count = usage_hourly.count + EXCLUDED.count,
                 last_at = GREATEST(usage_hourly.last_at, EXCLUDED.last_at)",
        )
        .bind(batch.iter().map(|u| u.token_id).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.hour).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.method.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.outcome.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.count).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.last_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tokens t SET last_used_at = u.last_at, last_used_from = COALESCE(u.last_from, t.last_used_from)
             FROM (SELECT DISTINCT ON (token_id) token_id, last_at, last_from
                   FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[]) AS x(token_id, last_at, last_from)
                   ORDER BY token_id, last_at DESC) u
             WHERE t.id = u.token_id AND (t.last_used_at IS NULL OR t.last_used_at < u.last_at)",
        )
        .bind(batch.iter().map(|u| u.token_id).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.last_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|u| u.last_from.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Raw counters of one token between two instants (the API aggregates them).
    pub async fn usage_rows(
        &self,
        token_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageIncrement>, StoreError> {
        let rows: Vec<UsageRow> = sqlx::query_as(
            "SELECT token_id, hour, method, outcome, count, last_at FROM usage_hourly
             WHERE token_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, method, outcome",
        )
        .bind(token_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.exec())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(token_id, hour, method, outcome, count, last_at)| UsageIncrement {
                token_id,
                hour,
                method,
                outcome: Outcome::from_stored(&outcome),
                count,
                last_at,
                last_from: None,
            })
            .collect())
    }
}
