//! Prometheus counters for `GET /metrics`, hand-rolled on atomics.
//!
//! A handful of fixed series does not justify a metrics framework; the text format is
//! trivial and the hot path stays a few relaxed atomic adds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_auth::FlushStats;

/// Upper bounds (seconds) of the request latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Every series the MCP face exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests that passed the guard: an atomic, as every request counts here (a shared
    /// lock per request is what the map below costs refusals).
    auth_ok: AtomicU64,
    /// Refusals by reason (`expired`, `revoked`, `insufficient_scope`, ...).
    auth: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one authentication outcome.
    pub fn auth_outcome(&self, reason: &'static str) {
        if reason == "ok" {
            self.auth_ok.fetch_add(1, Ordering::Relaxed);
        } else if let Ok(mut m) = self.auth.lock() {
            *m.entry(reason).or_insert(0) += 1;
        }
    }

    /// How often `reason` was counted (tests and diagnostics).
    pub fn auth_count(&self, reason: &str) -> u64 {
        if reason == "ok" {
            return self.auth_ok.load(Ordering::Relaxed);
        }
        self.auth.lock().ok().and_then(|m| m.get(reason).copied()).unwrap_or(0)
    }

    /// Records one request's latency.
    pub fn observe_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `cache` is the validator's (hits, misses), `usage`
    /// the usage recorder's flush statistics.
    pub fn render(&self, cache: (u64, u64), usage: FlushStats) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP tessera_mcp_auth_total MCP authentication and authorization outcomes by reason.\n");
        out.push_str("# TYPE tessera_mcp_auth_total counter\n");
        if let Ok(m) = self.auth.lock() {
            let ok = self.auth_ok.load(Ordering::Relaxed);
            let ok = (ok > 0).then_some(("ok", ok));
            let mut rows: Vec<(&str, u64)> = m.iter().map(|(r, c)| (*r, *c)).chain(ok).collect();
            rows.sort_unstable();
            for (reason, count) in rows {
                let _ = writeln!(out, "tessera_mcp_auth_total{{reason=\"{reason}\"}} {count}");
            }
        }
        out.push_str("# HELP tessera_mcp_request_duration_seconds MCP request latency.\n");
        out.push_str("# TYPE tessera_mcp_request_duration_seconds histogram\n");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "tessera_mcp_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "tessera_mcp_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "tessera_mcp_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "tessera_mcp_request_duration_seconds_count {count}");
        out.push_str("# HELP tessera_token_cache_hits_total Token row-state cache hits.\n");
        out.push_str("# TYPE tessera_token_cache_hits_total counter\n");
        let _ = writeln!(out, "tessera_token_cache_hits_total {}", cache.0);
        out.push_str("# HELP tessera_token_cache_misses_total Token row-state cache misses.\n");
        out.push_str("# TYPE tessera_token_cache_misses_total counter\n");
        let _ = writeln!(out, "tessera_token_cache_misses_total {}", cache.1);
        out.push_str("# HELP tessera_usage_flushes_total Usage flushes attempted.\n");
        out.push_str("# TYPE tessera_usage_flushes_total counter\n");
        let _ = writeln!(out, "tessera_usage_flushes_total {}", usage.flushes);
        out.push_str("# HELP tessera_usage_flush_failures_total Usage flushes that failed (retried).\n");
        out.push_str("# TYPE tessera_usage_flush_failures_total counter\n");
        let _ = writeln!(out, "tessera_usage_flush_failures_total {}", usage.failures);
        out.push_str("# HELP tessera_usage_flushed_rows_total Usage rows written.\n");
        out.push_str("# TYPE tessera_usage_flushed_rows_total counter\n");
        let _ = writeln!(out, "tessera_usage_flushed_rows_total {}", usage.rows);
        out.push_str("# HELP tessera_usage_flush_lag_seconds Age of the oldest increment written by the last flush.\n");
        out.push_str("# TYPE tessera_usage_flush_lag_seconds gauge\n");
        let lag = usage.lag_ms as f64 / 1000.0;
        let _ = writeln!(out, "tessera_usage_flush_lag_seconds {lag}");
        out
    }
}

/// The token change feed's health: whether it is connected (row caching on) and how often
/// it went silent and was restarted.
pub(crate) fn render_feed(out: &mut String, (connected, losses): (bool, u64)) {
    out.push_str("# HELP tessera_token_feed_connected Whether the token change feed is connected (row caching on).\n");
    out.push_str("# TYPE tessera_token_feed_connected gauge\n");
    let _ = writeln!(out, "tessera_token_feed_connected {}", u8::from(connected));
    out.push_str(
        "# HELP tessera_token_feed_silences_total Times the token change feed went silent and was restarted.\n",
    );
    out.push_str("# TYPE tessera_token_feed_silences_total counter\n");
    let _ = writeln!(out, "tessera_token_feed_silences_total {losses}");
}

/// Database load: connections taken from the pool, each at least one round trip (the bench
/// divides it by the MCP requests served to get round trips per request).
pub(crate) fn render_db(out: &mut String, checkouts: u64) {
    out.push_str(
        "# HELP tessera_db_pool_checkouts_total Connections taken from the database pool (each at least one round trip).\n",
    );
    out.push_str("# TYPE tessera_db_pool_checkouts_total counter\n");
    let _ = writeln!(out, "tessera_db_pool_checkouts_total {checkouts}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_health_is_a_gauge_and_a_counter() {
        let mut out = String::new();
        render_feed(&mut out, (false, 3));
        assert!(out.contains("tessera_token_feed_connected 0\n"));
        assert!(out.contains("tessera_token_feed_silences_total 3\n"));
    }

    #[test]
    fn database_checkouts_are_a_counter() {
        let mut out = String::new();
        render_db(&mut out, 42);
        assert!(out.contains("# TYPE tessera_db_pool_checkouts_total counter\n"));
        assert!(out.contains("tessera_db_pool_checkouts_total 42\n"));
    }

    #[test]
    fn render_counts_auth_reasons_and_latency() {
        let m = Metrics::default();
        m.auth_outcome("ok");
        m.auth_outcome("ok");
        m.auth_outcome("revoked");
        m.observe_latency(Duration::from_millis(3));
        let usage = FlushStats { flushes: 3, failures: 1, rows: 7, lag_ms: 1500 };
        let text = m.render((5, 2), usage);
        assert!(text.contains("tessera_mcp_auth_total{reason=\"ok\"} 2"));
        assert!(text.contains("tessera_mcp_auth_total{reason=\"revoked\"} 1"));
        assert!(text.contains("tessera_mcp_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("tessera_mcp_request_duration_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("tessera_token_cache_hits_total 5"));
        assert!(text.contains("tessera_usage_flush_failures_total 1"));
        assert!(text.contains("tessera_usage_flushed_rows_total 7"));
        assert!(text.contains("tessera_usage_flush_lag_seconds 1.5"));
    }
}
