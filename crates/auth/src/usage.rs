//! Usage counters: accumulated in memory per (token, hour, method or tool, outcome) and
//! written in one batched upsert every second and at shutdown. One recorder per process,
//! shared by the MCP and API faces.
//!
//! The request path only takes a short mutex to bump a counter; it never waits on the
//! database. A failed flush puts its counters back so the next one retries them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use tessera_core::outcome::Outcome;
use tessera_store::{Store, UsageIncrement};
use uuid::Uuid;

/// Distinct buckets kept in memory at most; past this, new buckets are dropped (and logged)
/// rather than letting a flood of odd method names exhaust memory while the DB is down.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    token_id: Uuid,
    hour: DateTime<Utc>,
    method: String,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Counter {
    count: i64,
    last_at: DateTime<Utc>,
    last_from: Option<String>,
}

#[derive(Debug, Default)]
struct Pending {
    counters: HashMap<Key, Counter>,
    /// When the oldest counter not yet written was first bumped (for the flush-lag gauge).
    oldest: Option<Instant>,
}

/// The in-memory accumulator; one per process.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<Pending>,
    /// Serialises flushes so the periodic one and the shutdown one never interleave.
    flushing: tokio::sync::Mutex<()>,
    stats: FlushCounters,
}

#[derive(Debug, Default)]
struct FlushCounters {
    flushes: AtomicU64,
    failures: AtomicU64,
    rows: AtomicU64,
    /// Milliseconds between the oldest unflushed increment and the end of the last flush.
    lag_ms: AtomicU64,
}

/// What the flushes have done so far (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Flushes that had something to write.
    pub flushes: u64,
    /// Of those, how many failed (their counts were kept for the next try).
    pub failures: u64,
    /// Rows written.
    pub rows: u64,
    /// Age of the oldest increment written by the last flush, in milliseconds.
    pub lag_ms: u64,
}

impl UsageRecorder {
    /// Counts one request of `token_id`.
    pub fn record(&self, token_id: Uuid, method: &str, outcome: Outcome, at: DateTime<Utc>, from: Option<String>) {
        let hour = at.duration_trunc(chrono::Duration::hours(1)).unwrap_or(at);
        let key = Key { token_id, hour, method: method.to_owned(), outcome };
        let Ok(mut pending) = self.pending.lock() else { return };
        if pending.counters.len() >= MAX_BUCKETS && !pending.counters.contains_key(&key) {
            tracing::warn!("usage buffer full: dropping a usage count");
            return;
        }
        pending.oldest.get_or_insert_with(Instant::now);
        let counter = pending.counters.entry(key).or_insert(Counter { count: 0, last_at: at, last_from: None });
        counter.count += 1;
        if at >= counter.last_at {
            counter.last_at = at;
            if from.is_some() {
                counter.last_from = from;
            }
        }
    }

    /// The latest use of each of `ids` counted here and not yet written: a token used a moment
    /// ago shows it at once on this instance, instead of after the next flush.
    pub fn unflushed_last_uses(&self, ids: &[Uuid]) -> HashMap<Uuid, (DateTime<Utc>, Option<String>)> {
        let mut latest: HashMap<Uuid, (DateTime<Utc>, Option<String>)> = HashMap::new();
        if ids.is_empty() {
            return latest;
        }
        let wanted: std::collections::HashSet<&Uuid> = ids.iter().collect();
        let Ok(pending) = self.pending.lock() else { return latest };
        for (key, counter) in &pending.counters {
            if !wanted.contains(&key.token_id) {
                continue;
            }
            let newer = latest.get(&key.token_id).is_none_or(|(at, _)| counter.last_at > *at);
            if newer {
                latest.insert(key.token_id, (counter.last_at, counter.last_from.clone()));
            }
        }
        latest
    }

    /// Counters not yet written (tests and diagnostics).
    pub fn pending_len(&self) -> usize {
        self.pending.lock().map(|p| p.counters.len()).unwrap_or(0)
    }

    fn take(&self) -> (Vec<UsageIncrement>, Option<Instant>) {
        let Ok(mut pending) = self.pending.lock() else { return (Vec::new(), None) };
        let oldest = pending.oldest.take();
        let batch = pending
            .counters
            .drain()
            .map(|(k, c)| UsageIncrement {
                token_id: k.token_id,
                hour: k.hour,
                method: k.method,
                outcome: k.outcome,
                count: c.count,
                last_at: c.last_at,
                last_from: c.last_from,
            })
            .collect();
        (batch, oldest)
    }

    /// Puts a batch that could not be written back, merged with anything counted since.
    fn restore(&self, batch: Vec<UsageIncrement>, oldest: Option<Instant>) {
        let Ok(mut pending) = self.pending.lock() else { return };
        if let Some(oldest) = oldest {
            pending.oldest = Some(pending.oldest.map_or(oldest, |o| o.min(oldest)));
        }
        for u in batch {
            let key = Key { token_id: u.token_id, hour: u.hour, method: u.method, outcome: u.outcome };
            if pending.counters.len() >= MAX_BUCKETS && !pending.counters.contains_key(&key) {
                continue;
            }
            let c = pending.counters.entry(key).or_insert(Counter { count: 0, last_at: u.last_at, last_from: None });
            c.count += u.count;
            if u.last_at >= c.last_at {
                c.last_at = u.last_at;
                c.last_from = u.last_from.or(c.last_from.take());
            }
        }
    }

    /// Writes everything counted so far in one batch; on failure keeps it for the next try.
    pub async fn flush(&self, store: &Store) -> Result<usize, tessera_store::StoreError> {
        let _guard = self.flushing.lock().await;
        let (batch, oldest) = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let rows = batch.len();
        let result = store.record_usage(&batch).await;
        let lag = oldest.map(|o| o.elapsed()).unwrap_or_default();
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.stats.lag_ms.store(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.stats.rows.fetch_add(rows as u64, Ordering::Relaxed);
                Ok(rows)
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                // An unreachable database is worth retrying; a batch the database refuses
                // (a constraint) would fail forever and block every later count.
                if e.is_unavailable() {
                    self.restore(batch, oldest);
                } else {
                    tracing::error!(error = %e, rows, "usage batch refused by the database: dropped");
                }
                Err(e)
            }
        }
    }

    /// What the flushes have done so far.
    pub fn flush_stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.stats.flushes.load(Ordering::Relaxed),
            failures: self.stats.failures.load(Ordering::Relaxed),
            rows: self.stats.rows.load(Ordering::Relaxed),
            lag_ms: self.stats.lag_ms.load(Ordering::Relaxed),
        }
    }

    /// Flushes every `interval` for the life of the process.
    pub fn spawn_flusher(self: &Arc<Self>, store: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.flush(&store).await {
                    tracing::warn!(error = %e, "usage flush failed; will retry");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_per_bucket() {
        let r = UsageRecorder::default();
        let t = Uuid::now_v7();
        let now = Utc::now();
        r.record(t, "tools/list", Outcome::Ok, now, None);
        r.record(t, "tools/list", Outcome::Ok, now, Some("127.0.0.1".into()));
        r.record(t, "tools/list", Outcome::RateLimited, now, None);
        let (batch, oldest) = r.take();
        assert!(oldest.is_some());
        assert_eq!(batch.len(), 2);
        let ok = batch.iter().find(|u| u.outcome == Outcome::Ok).unwrap();
        assert_eq!(ok.count, 2);
        assert_eq!(ok.last_from.as_deref(), Some("127.0.0.1"));
        assert_eq!(ok.hour.timestamp() % 3600, 0);
        r.restore(batch, oldest);
        assert_eq!(r.pending_len(), 2);
    }

    #[test]
    fn unflushed_last_uses_give_each_asked_tokens_latest_use_only() {
        let r = UsageRecorder::default();
        let (a, b, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let earlier = now - chrono::Duration::seconds(5);
        r.record(a, "tools/list", Outcome::Ok, earlier, Some("10.0.0.1".into()));
        r.record(a, "tools/call:whoami", Outcome::Ok, now, Some("10.0.0.2".into()));
        r.record(other, "tools/list", Outcome::Ok, now, None);
        let seen = r.unflushed_last_uses(&[a, b]);
        assert_eq!(seen.get(&a), Some(&(now, Some("10.0.0.2".to_owned()))));
        assert!(!seen.contains_key(&b) && !seen.contains_key(&other));
    }
}
