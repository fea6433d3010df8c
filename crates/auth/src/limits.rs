//! Per-token rate limits: GCRA (`governor`), one limiter per token id, in this process (the
//! shared budgets of `shared_limits` fall back to these when Postgres can't be reached).
//!
//! A token's `rate_limit_per_hour` = N sets the emission interval to 3600/N seconds, so
//! the sustained rate is exactly N per hour. The burst is a minute's worth (N/60, at least
//! one) rather than the whole hour's: an hour's burst would let a leaked token spend its
//! entire hourly budget in one second.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

/// Limiters kept at most; the map is cleared when full (a reset is harmless: it only
/// forgives at most one burst per token).
const MAX_LIMITERS: usize = 100_000;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

#[derive(Debug)]
struct Entry {
    per_hour: u32,
    limiter: Arc<Limiter>,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The token has no limit.
    Unlimited,
    /// Allowed; values for the `RateLimit-*` headers.
    Allowed {
        /// Requests per hour.
        limit: u32,
        /// Requests left in the current burst.
        remaining: u32,
        /// Seconds until the burst is full again.
        reset_secs: u64,
    },
    /// Refused; the client may retry after this many seconds.
    Limited {
        /// Whose budget is used up.
        scope: LimitScope,
        /// Requests per hour.
        limit: u32,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
}

/// Which budget a refusal came from: the token's own, or the one all of a user's tokens share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// The token's `rate_limit_per_hour`.
    Token,
    /// The user's `rate_limit_per_hour`, shared by all their tokens.
    User,
}

impl LimitScope {
    /// The name used in `RateLimit-Policy` and error details (`token` or `user`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::User => "user",
        }
    }
}

/// Every token's limiter; one per process.
#[derive(Debug, Default)]
pub struct RateLimits {
    limiters: Mutex<HashMap<Uuid, Entry>>,
}

/// The GCRA parameters for N requests per hour: (emission interval, burst).
pub fn quota_for(per_hour: u32) -> (Duration, u32) {
    let per_hour = per_hour.max(1);
    let interval = Duration::from_secs(3600) / per_hour;
    (interval, per_hour.div_ceil(60).max(1))
}

impl RateLimits {
    /// Takes one request from `token_id`'s budget of `per_hour` (None or ≤0: unlimited).
    pub fn check(&self, token_id: Uuid, per_hour: Option<i32>) -> Decision {
        self.check_as(LimitScope::Token, token_id, per_hour)
    }

    /// Takes one request from the budget of `key` (a token or a user id), reporting a
    /// refusal as `scope`'s.
    pub fn check_as(&self, scope: LimitScope, key: Uuid, per_hour: Option<i32>) -> Decision {
        let token_id = key;
        let Some(per_hour) = per_hour.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0) else {
            return Decision::Unlimited;
        };
        let (interval, burst) = quota_for(per_hour);
        let limiter = {
            let Ok(mut map) = self.limiters.lock() else { return Decision::Unlimited };
            if map.len() >= MAX_LIMITERS && !map.contains_key(&token_id) {
                map.clear();
            }
            let entry =
                map.entry(token_id).or_insert_with(|| Entry { per_hour, limiter: new_limiter(interval, burst) });
            // The limit was changed (PATCH): start the new budget.
            if entry.per_hour != per_hour {
                *entry = Entry { per_hour, limiter: new_limiter(interval, burst) };
            }
            Arc::clone(&entry.limiter)
        };
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = burst.saturating_sub(remaining);
                let reset = interval * used;
                Decision::Allowed { limit: per_hour, remaining, reset_secs: ceil_secs(reset) }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision::Limited { scope, limit: per_hour, retry_after_secs: ceil_secs(wait).max(1) }
            }
        }
    }
}

fn new_limiter(interval: Duration, burst: u32) -> Arc<Limiter> {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
    Arc::new(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>())
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_spreads_the_hourly_limit() {
        assert_eq!(quota_for(3600), (Duration::from_secs(1), 60));
        assert_eq!(quota_for(10), (Duration::from_secs(360), 1));
    }

    #[test]
    fn burst_then_limited_with_retry_after() {
        let limits = RateLimits::default();
        let t = Uuid::now_v7();
        for _ in 0..60 {
            assert!(matches!(limits.check(t, Some(3600)), Decision::Allowed { .. }));
        }
        match limits.check(t, Some(3600)) {
            Decision::Limited { limit, retry_after_secs, .. } => {
                assert_eq!(limit, 3600);
                assert_eq!(retry_after_secs, 1);
            }
            other => panic!("expected a limit, got {other:?}"),
        }
        assert_eq!(limits.check(t, None), Decision::Unlimited);
    }
}
