//! Alert webhooks and their outbox (issue #17): webhooks, alert events, deliveries.
//!
//! An event is one `alert_events` row, fanned out in the same statement to one
//! `webhook_deliveries` row per matching webhook, so it is written in the transaction of
//! the change that caused it (revoke, rotate) and a dispatcher delivers it later. "Once"
//! events carry a `dedupe` key: writing one twice is a no-op.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use tessera_core::alerts::AlertKind;
use uuid::Uuid;

use crate::{Store, StoreError, TokenTx};

/// A registered webhook (its secret stays in the store except when created).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Webhook {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Event kinds it receives.
    pub events: Vec<String>,
    /// An admin's webhook for every user's tokens.
    pub all_users: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A webhook to register.
#[derive(Clone)]
pub struct NewWebhook {
    /// Owner.
    pub user_id: Uuid,
    /// Target URL (already checked).
    pub url: String,
    /// Signing secret.
    pub secret: String,
    /// Event kinds (already checked).
    pub events: Vec<String>,
    /// For every user's tokens (admins only; checked by the caller).
    pub all_users: bool,
}

/// One alert event, as the token page and the delivery log show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlertEvent {
    /// Id.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Kind, e.g. `token.revoked`.
    pub kind: String,
    /// The token.
    pub token_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Kind-specific facts.
    pub details: serde_json::Value,
}

/// One delivery of an event to a webhook.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// The event.
    pub event_id: i64,
    /// Its kind.
    pub kind: String,
    /// Its token (`None`: a server event).
    pub token_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A delivery the dispatcher claimed, with what it needs to send it.
#[derive(Clone, sqlx::FromRow)]
pub struct DueDelivery {
    /// Delivery id.
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: i32,
    /// Target.
    pub url: String,
    /// Signing secret.
    pub secret: String,
    /// The event.
    pub event_id: i64,
    /// Its kind.
    pub kind: String,
    /// Its token (`None`: a server event, whose server and tool are in `details`).
    pub token_id: Option<Uuid>,
    /// The token's name.
    pub token_name: Option<String>,
    /// Its owner.
    pub user_id: Option<Uuid>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Kind-specific facts.
    pub details: serde_json::Value,
}

// Written by hand: the signing secret never reaches a log line.
impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("user_id", &self.user_id)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("events", &self.events)
            .field("all_users", &self.all_users)
            .finish()
    }
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("event_id", &self.event_id)
            .field("kind", &self.kind)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        /// The status, when there was an answer.
        status: Option<u16>,
        /// Why (no secrets, at most 500 characters).
        error: String,
        /// When to retry; `None`: no attempts left.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Writes an event and fans it out to every matching webhook; a duplicate (`dedupe`) or an
/// unknown token writes nothing. Returns whether the event is new.
async fn record<'e>(
    conn: impl PgExecutor<'e>,
    kind: &str,
    token_id: Uuid,
    dedupe: &str,
    details: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let new: Option<i64> = sqlx::query_scalar(
        "WITH e AS (
             INSERT INTO alert_events (at, kind, token_id, user_id, dedupe, details)
             SELECT $1, $2, t.id, t.user_id, $4, $5 FROM tokens t WHERE t.id = $3
             ON CONFLICT (token_id, kind, dedupe) DO NOTHING
             RETURNING id, user_id, kind
         ), d AS (
             INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, updated_at)
             SELECT w.id, e.id, $1, $1 FROM e JOIN webhooks w ON w.deleted_at IS NULL AND e.kind = ANY (w.events)
                 AND (w.user_id = e.user_id
                      OR (w.all_users AND EXISTS (SELECT 1 FROM users a WHERE a.id = w.user_id AND a.is_admin)))
         )
         SELECT id FROM e",
    )
    .bind(now)
    .bind(kind)
    .bind(token_id)
    .bind(dedupe)
    .bind(details)
    .fetch_optional(conn)
    .await?;
    Ok(new.is_some())
}

/// The fan-out of [`record`] for events inserted by a scan (`e` = the new events).
const FAN_OUT: &str = "INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, updated_at)
     SELECT w.id, e.id, $1, $1 FROM e JOIN webhooks w ON w.deleted_at IS NULL AND e.kind = ANY (w.events)
         AND (w.user_id = e.user_id
              OR (w.all_users AND EXISTS (SELECT 1 FROM users a WHERE a.id = w.user_id AND a.is_admin)))";

impl TokenTx {
    /// Records an alert event inside this change (the outbox: it is delivered only if the
    /// change commits).
    pub async fn alert(
        &mut self,
        kind: AlertKind,
        token_id: Uuid,
        details: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Revocations and rotations happen once per token; the key only guards replays.
        record(&mut *self.tx, kind.as_str(), token_id, "once", details, now).await.map(drop)
    }
}

impl Store {
    /// Records an alert event noticed outside a change (rate limits, networks, failures).
    pub async fn record_alert(
        &self,
        kind: AlertKind,
        token_id: Uuid,
        dedupe: &str,
        details: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        record(self.exec(), kind.as_str(), token_id, dedupe, details, now).await
    }

    /// Registers a webhook unless its owner already has `max`; `None` when at the limit.
    pub async fn create_webhook(
        &self,
        new: &NewWebhook,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Webhook>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Serializes one owner's registrations, so the count below cannot be raced past.
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE").bind(new.user_id).execute(&mut *tx).await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE user_id = $1 AND deleted_at IS NULL")
            .bind(new.user_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max {
            return Ok(None);
        }
        let hook = sqlx::query_as::<_, Webhook>(
            "INSERT INTO webhooks (id, user_id, url, secret, events, all_users, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id, user_id, url, events, all_users, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(new.user_id)
        .bind(&new.url)
        .bind(&new.secret)
        .bind(&new.events)
        .bind(new.all_users)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(hook))
    }

    /// Live webhooks of `owner` (`None`: everyone's), newest first.
    pub async fn list_webhooks(&self, owner: Option<Uuid>) -> Result<Vec<Webhook>, StoreError> {
        Ok(sqlx::query_as::<_, Webhook>(
            "SELECT id, user_id, url, events, all_users, created_at FROM webhooks
             WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR user_id = $1) ORDER BY id DESC LIMIT 1000",
        )
        .bind(owner)
        .fetch_all(self.exec())
        .await?)
    }

    /// One live webhook.
    pub async fn get_webhook(&self, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        Ok(sqlx::query_as::<_, Webhook>(
            "SELECT id, user_id, url, events, all_users, created_at FROM webhooks WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.exec())
        .await?)
    }

    /// Changes a live webhook's URL and/or event kinds (already checked).
    pub async fn update_webhook(
        &self,
        id: Uuid,
        url: Option<&str>,
        events: Option<&[String]>,
    ) -> Result<Webhook, StoreError> {
        sqlx::query_as::<_, Webhook>(
            "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3, events)
             WHERE id = $1 AND deleted_at IS NULL
             RETURNING id, user_id, url, events, all_users, created_at",
        )
        .bind(id)
        .bind(url)
        .bind(events)
        .fetch_optional(self.exec())
        .await?
        .ok_or(StoreError::NotFound("webhook"))
    }

    /// Removes a webhook (kept for its delivery log); its pending deliveries are dropped.
    pub async fn delete_webhook(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE webhooks SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', last_error = 'webhook deleted', updated_at = $2
             WHERE webhook_id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest deliveries of a webhook, newest first.
    pub async fn webhook_deliveries(&self, webhook_id: Uuid, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        Ok(sqlx::query_as::<_, Delivery>(
            "SELECT d.id, d.event_id, e.kind, e.token_id, d.state, d.attempts, d.next_attempt_at, d.last_status,
                    d.last_error, d.updated_at
             FROM webhook_deliveries d JOIN alert_events e ON e.id = d.event_id
             WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }

    /// The latest alert events of a token, newest first.
    pub async fn token_alerts(&self, token_id: Uuid, limit: i64) -> Result<Vec<AlertEvent>, StoreError> {
        Ok(sqlx::query_as::<_, AlertEvent>(
            "SELECT id, at, kind, token_id, user_id, details FROM alert_events WHERE token_id = $1
             ORDER BY id DESC LIMIT $2",
        )
        .bind(token_id)
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }

    /// Writes the time-based events due at `now`: `token.expiring` `days` before expiry
    /// (once per notice, and only for tokens that lived longer than the notice), and
    /// `token.grace_ending` for rotations whose grace ends within `grace_notice`. Returns the
    /// number of new events.
    pub async fn scan_alerts(
        &self,
        now: DateTime<Utc>,
        notice_days: &[i64],
        grace_notice: Duration,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for days in notice_days {
            let n: i64 = sqlx::query_scalar(&format!(
                "WITH e AS (
                     INSERT INTO alert_events (at, kind, token_id, user_id, dedupe, details)
                     SELECT $1, '{expiring}', t.id, t.user_id, $2 || 'd',
                            jsonb_build_object('expires_at', t.expires_at, 'notice_days', $2)
                     FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id
                     WHERE r.token_id IS NULL AND t.expires_at > $1
                       AND t.expires_at <= $1 + make_interval(days => $2::int)
                       AND t.expires_at - t.created_at > make_interval(days => $2::int)
                     ON CONFLICT (token_id, kind, dedupe) DO NOTHING
                     RETURNING id, user_id, kind
                 ), d AS ({FAN_OUT})
                 SELECT count(*) FROM e",
                expiring = AlertKind::Expiring.as_str()
            ))
            .bind(now)
            .bind(days)
            .fetch_one(self.exec())
            .await?;
            written += u64::try_from(n).unwrap_or(0);
        }
        let secs = i64::try_from(grace_notice.as_secs()).unwrap_or(i64::MAX);
        let n: i64 = sqlx::query_scalar(&format!(
            "WITH e AS (
                 INSERT INTO alert_events (at, kind, token_id, user_id, dedupe, details)
                 SELECT $1, '{grace_ending}', t.id, t.user_id, 'once',
                        jsonb_build_object('grace_ends_at', r.effective_at, 'replaced_by', t.replaced_by)
                 FROM revocations r JOIN tokens t ON t.id = r.token_id
                 WHERE r.kind = 'rotated' AND r.effective_at > $1
                   AND r.effective_at <= $1 + make_interval(secs => $2::double precision)
                 ON CONFLICT (token_id, kind, dedupe) DO NOTHING
                 RETURNING id, user_id, kind
             ), d AS ({FAN_OUT})
             SELECT count(*) FROM e",
            grace_ending = AlertKind::GraceEnding.as_str()
        ))
        .bind(now)
        .bind(secs as f64)
        .fetch_one(self.exec())
        .await?;
        Ok(written + u64::try_from(n).unwrap_or(0))
    }

    /// Notes that `token_id` was used from `network` at `now`; true when the network is new
    /// to it (or unseen for `memory`) and the token had been used from another one before.
    pub async fn note_network(
        &self,
        token_id: Uuid,
        network: &str,
        now: DateTime<Utc>,
        memory: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let previous: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT last_seen FROM token_networks WHERE token_id = $1 AND network = $2 FOR UPDATE")
                .bind(token_id)
                .bind(network)
                .fetch_optional(&mut *tx)
                .await?;
        let others: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM token_networks WHERE token_id = $1 AND network <> $2 AND last_seen > $3)",
        )
        .bind(token_id)
        .bind(network)
        .bind(now - memory)
        .fetch_one(&mut *tx)
        .await?;
        // At most 100 networks per token: the oldest is forgotten first.
        sqlx::query(
            "DELETE FROM token_networks WHERE token_id = $1 AND network IN (
                 SELECT network FROM token_networks WHERE token_id = $1 ORDER BY last_seen DESC OFFSET 99)",
        )
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO token_networks (token_id, network, last_seen) SELECT $1, $2, $3 WHERE EXISTS
                 (SELECT 1 FROM tokens WHERE id = $1)
             ON CONFLICT (token_id, network) DO UPDATE SET last_seen = GREATEST(token_networks.last_seen, $3)",
        )
        .bind(token_id)
        .bind(network)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let unseen = previous.is_none_or(|seen| seen <= now - memory);
        Ok(unseen && others)
    }

    /// Claims up to `limit` due deliveries for `lease` (another replica skips them meanwhile).
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let lease_secs = lease.as_secs_f64();
        Ok(sqlx::query_as::<_, DueDelivery>(
            "WITH c AS (
                 UPDATE webhook_deliveries d SET next_attempt_at = $1 + make_interval(secs => $2), updated_at = $1
                 WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1
                                ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING d.id, d.webhook_id, d.event_id, d.attempts
             )
             SELECT c.id, c.attempts, w.url, w.secret, e.id AS event_id, e.kind, e.token_id, t.name AS token_name,
                    e.user_id, e.at, e.details
             FROM c JOIN webhooks w ON w.id = c.webhook_id JOIN alert_events e ON e.id = c.event_id
                    LEFT JOIN tokens t ON t.id = e.token_id",
        )
        .bind(now)
        .bind(lease_secs)
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }

    /// Records how an attempt ended.
    pub async fn finish_delivery(&self, id: i64, result: &AttemptResult, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (state, status, error, next) = match result {
            AttemptResult::Delivered { status } => ("delivered", Some(*status), None, now),
            AttemptResult::Failed { status, error, retry_at: Some(at) } => ("pending", *status, Some(error), *at),
            AttemptResult::Failed { status, error, retry_at: None } => ("failed", *status, Some(error), now),
        };
        let error: Option<String> = error.map(|e| e.chars().take(500).collect());
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, last_status = $3, last_error = $4,
                    next_attempt_at = $5, updated_at = $6
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(next)
        .bind(now)
        .execute(self.exec())
        .await?;
        Ok(())
    }

    /// Bounds the outbox: forgets finished deliveries and events older than `before`.
    pub async fn prune_alerts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let deliveries = sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1")
            .bind(before)
            .execute(self.exec())
            .await?
            .rows_affected();
        let events = sqlx::query(
            "DELETE FROM alert_events e WHERE e.at < $1
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')",
        )
        .bind(before)
        .execute(self.exec())
        .await?
        .rows_affected();
        Ok(deliveries + events)
    }
}
