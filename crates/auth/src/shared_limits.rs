//! Rate limits that hold across replicas (issue #16): the GCRA state of every budget lives in
//! Postgres, and each process leases it in small slices that it then spends locally, so the
//! database sees one round trip per slice, not per request.
//!
//! Accuracy: a slice is at most a tenth of the budget's burst ([`slice_size`]), and cells are
//! taken from the shared state when leased, so the replicas together never accept more than
//! one GCRA would, plus the cells each replica still holds when the shared state refills: at
//! most `replicas × slice` (with two replicas, a fifth of a minute's burst). A slice left
//! unspent on an idle replica is budget the others can't use until it is spent: at most one
//! slice per replica of under-admission. A refusal is remembered locally until the moment the
//! shared state says a cell is free again, so a client hammering a used-up budget causes no
//! database traffic either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_store::{Lease, Store};
use uuid::Uuid;

use crate::limits::{Decision, LimitScope, RateLimits, quota_for};

/// Budgets remembered at most; the map is cleared when full (clearing only drops cells this
/// process leased, which is under-admission, never more).
const MAX_SLICES: usize = 100_000;

/// Cells leased per round trip for a budget with this burst: a tenth of it, at least one.
pub fn slice_size(burst: u32) -> u32 {
    (burst / 10).max(1)
}

/// What one lease means for the request that asked for it, and the cells left for later
/// requests: pure, on the database's clock.
pub fn lease_decision(scope: LimitScope, per_hour: u32, lease: &Lease) -> (Decision, u32) {
    let (interval, burst) = quota_for(per_hour);
    let t = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).max(1);
    let tau = t.saturating_mul(i64::from(burst));
    let ahead = lease.tat_us.saturating_sub(lease.now_us).max(0);
    if lease.granted == 0 {
        // One cell is free once `now + τ − tat ≥ T`.
        let wait = ahead.saturating_sub(tau).saturating_add(t).max(0);
        let retry_after_secs = ceil_secs_us(wait).max(1);
        return (Decision::Limited { scope, limit: per_hour, retry_after_secs }, 0);
    }
    let left = lease.granted.saturating_sub(1);
    let free = u32::try_from(tau.saturating_sub(ahead).max(0) / t).unwrap_or(u32::MAX);
    let decision =
        Decision::Allowed { limit: per_hour, remaining: free.saturating_add(left), reset_secs: ceil_secs_us(ahead) };
    (decision, left)
}

fn ceil_secs_us(us: i64) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(0).div_ceil(1_000_000)
}

/// Held while a budget's lease is in flight.
type Gate = Arc<tokio::sync::Mutex<()>>;

/// What this process holds of one budget.
#[derive(Debug, Clone, Copy)]
struct Slice {
    per_hour: u32,
    /// Leased cells not yet spent.
    cells: u32,
    /// Cells the shared state had free after the last lease (for `RateLimit-Remaining`).
    free: u32,
    /// When the shared budget is full again, as of the last lease.
    full_at: Instant,
    /// The shared budget refused until then.
    blocked_until: Option<Instant>,
}

/// Budgets leased from Postgres; per-process GCRA when the database can't be reached.
#[derive(Debug)]
pub struct SharedLimits {
    store: Store,
    slices: Mutex<HashMap<(LimitScope, Uuid), Slice>>,
    /// One lease in flight per budget: concurrent requests wait for it and spend its cells
    /// instead of each leasing a slice (which would drain the shared budget into one process).
    gates: Mutex<HashMap<(LimitScope, Uuid), Gate>>,
    fallback: RateLimits,
}

impl SharedLimits {
    /// Budgets shared through `store`.
    pub fn new(store: Store) -> Self {
        Self { store, slices: Mutex::default(), gates: Mutex::default(), fallback: RateLimits::default() }
    }

    /// Takes one request from the budget of `key` (a token or a user id, by `scope`).
    pub async fn check(&self, scope: LimitScope, key: Uuid, per_hour: Option<i32>) -> Decision {
        let Some(per_hour) = per_hour.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0) else {
            return Decision::Unlimited;
        };
        if let Some(local) = self.spend_local(scope, key, per_hour) {
            return local;
        }
        let gate = {
            let Ok(mut gates) = self.gates.lock() else { return Decision::Unlimited };
            if gates.len() >= MAX_SLICES && !gates.contains_key(&(scope, key)) {
                gates.clear();
            }
            Arc::clone(gates.entry((scope, key)).or_default())
        };
        let _leasing = gate.lock().await;
        // The lease this request waited for may have left cells (or a refusal) to use.
        if let Some(local) = self.spend_local(scope, key, per_hour) {
            return local;
        }
        let (interval, burst) = quota_for(per_hour);
        let interval_us = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).max(1);
        let lease = match self.store.lease_rate_limit(scope.as_str(), key, interval_us, burst, slice_size(burst)).await
        {
            Ok(lease) => lease,
            Err(e) => {
                // Limits degrade to per process rather than failing requests the Validator
                // already accepted.
                tracing::warn!(error = %e, "rate-limit lease failed: this process limits on its own for now");
                return self.fallback.check_as(scope, key, Some(i32::try_from(per_hour).unwrap_or(i32::MAX)));
            }
        };
        let (decision, left) = lease_decision(scope, per_hour, &lease);
        let now = Instant::now();
        let ahead = Duration::from_micros(u64::try_from(lease.tat_us.saturating_sub(lease.now_us)).unwrap_or(0));
        let Ok(mut map) = self.slices.lock() else { return decision };
        if map.len() >= MAX_SLICES && !map.contains_key(&(scope, key)) {
            map.clear();
        }
        let fresh = Slice { per_hour, cells: 0, free: 0, full_at: now, blocked_until: None };
        let slice = map.entry((scope, key)).or_insert(fresh);
        if slice.per_hour != per_hour {
            *slice = fresh;
        }
        match decision {
            Decision::Limited { retry_after_secs, .. } => {
                let wait = match lease_wait(&lease, interval_us, burst) {
                    Some(wait) => wait,
                    None => Duration::from_secs(retry_after_secs),
                };
                slice.blocked_until = Some(now + wait);
            }
            Decision::Allowed { remaining, .. } => {
                slice.cells = slice.cells.saturating_add(left);
                slice.free = remaining.saturating_sub(left);
                slice.full_at = now + ahead;
                slice.blocked_until = None;
            }
            Decision::Unlimited => {}
        }
        decision
    }

    /// Spends a cell this process already holds, or repeats a refusal still in force; `None`
    /// when only the database can answer.
    fn spend_local(&self, scope: LimitScope, key: Uuid, per_hour: u32) -> Option<Decision> {
        let now = Instant::now();
        let mut map = self.slices.lock().ok()?;
        let slice = map.get_mut(&(scope, key)).filter(|s| s.per_hour == per_hour)?;
        if slice.cells > 0 {
            slice.cells -= 1;
            let reset = slice.full_at.saturating_duration_since(now);
            return Some(Decision::Allowed {
                limit: per_hour,
                remaining: slice.cells.saturating_add(slice.free),
                reset_secs: reset.as_secs() + u64::from(reset.subsec_nanos() > 0),
            });
        }
        let until = slice.blocked_until.filter(|until| *until > now)?;
        let wait = until.saturating_duration_since(now);
        let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        Some(Decision::Limited { scope, limit: per_hour, retry_after_secs })
    }
}

/// The exact wait until the shared budget frees a cell, for the local refusal cache.
fn lease_wait(lease: &Lease, interval_us: i64, burst: u32) -> Option<Duration> {
    let ahead = lease.tat_us.checked_sub(lease.now_us)?;
    let wait = ahead.checked_sub(interval_us.checked_mul(i64::from(burst))?)?.checked_add(interval_us)?;
    Some(Duration::from_micros(u64::try_from(wait.max(0)).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(granted: u32, ahead_us: i64) -> Lease {
        Lease { granted, tat_us: 1_000_000_000 + ahead_us, now_us: 1_000_000_000 }
    }

    #[test]
    fn a_slice_is_a_tenth_of_the_burst_and_at_least_one_cell() {
        assert_eq!(slice_size(1), 1);
        assert_eq!(slice_size(19), 1);
        assert_eq!(slice_size(60), 6);
        assert_eq!(slice_size(6000), 600);
    }

    #[test]
    fn a_grant_allows_this_request_and_keeps_the_rest_for_later() {
        // 3600/h: T = 1 s, burst 60. Six cells taken from a full budget.
        let (decision, left) = lease_decision(LimitScope::Token, 3600, &lease(6, 6_000_000));
        assert_eq!(left, 5);
        assert_eq!(decision, Decision::Allowed { limit: 3600, remaining: 59, reset_secs: 6 });
    }

    #[test]
    fn no_grant_is_a_refusal_until_the_next_cell_is_due() {
        // 0.6 of a cell is free: the next whole one is in 0.4 s.
        let (decision, left) = lease_decision(LimitScope::User, 3600, &lease(0, 59_400_000));
        assert_eq!(left, 0);
        assert_eq!(decision, Decision::Limited { scope: LimitScope::User, limit: 3600, retry_after_secs: 1 });
        let wait = lease_wait(&lease(0, 59_400_000), 1_000_000, 60);
        assert_eq!(wait, Some(Duration::from_millis(400)));
    }
}
