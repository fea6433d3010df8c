//! Failed-login throttle, per client address and per account (sliding window, in memory).
//!
//! In memory per process: with several API replicas an attacker gets each replica's budget,
//! which still bounds guessing to a handful of attempts per window and replica.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures are allowed, and over how long.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failed logins allowed per account within the window.
    pub per_account: usize,
    /// Failed logins allowed per client address within the window.
    pub per_ip: usize,
    /// The sliding window.
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { per_account: 5, per_ip: 20, window: Duration::from_secs(15 * 60) }
    }
}

/// Keys with recent failures above this count are swept of stale entries.
const SWEEP_AT: usize = 10_000;

/// Remembers recent failed logins.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self { config, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when either the address or the account is over its limit.
    pub fn check(&self, ip: &str, account: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut map) = self.failures.lock() else { return Ok(()) };
        let keys = [(ip_key(ip), self.config.per_ip), (account_key(account), self.config.per_account)];
        let mut wait = None::<Duration>;
        for (key, limit) in keys {
            if let Some(times) = map.get_mut(&key) {
                prune(times, now, self.config.window);
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let left = self.config.window.saturating_sub(now.saturating_duration_since(*oldest));
                    wait = Some(wait.map_or(left, |w| w.max(left)));
                }
            }
        }
        match wait {
            Some(w) => Err(w.as_secs().max(1)),
            None => Ok(()),
        }
    }

    /// Counts one failed login against the address and the account.
    pub fn record_failure(&self, ip: &str, account: &str, now: Instant) {
        let Ok(mut map) = self.failures.lock() else { return };
        if map.len() >= SWEEP_AT {
            let window = self.config.window;
            map.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
        }
        for key in [ip_key(ip), account_key(account)] {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// Forgets the account's failures after a successful login (the address keeps its count).
    pub fn clear_account(&self, account: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&account_key(account));
        }
    }
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.trim().to_lowercase())
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig { per_account: 3, per_ip: 5, window: Duration::from_secs(60) })
    }

    #[test]
    fn account_is_blocked_after_its_limit_until_the_window_passes() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check("1.1.1.1", "a@x", start).is_ok());
            t.record_failure("1.1.1.1", "a@x", start);
        }
        assert_eq!(t.check("2.2.2.2", "A@X", start + Duration::from_secs(10)), Err(50));
        assert!(t.check("2.2.2.2", "a@x", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn address_is_blocked_across_accounts() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..5 {
            t.record_failure("1.1.1.1", &format!("user{i}@x"), now);
        }
        assert!(t.check("1.1.1.1", "fresh@x", now).is_err());
        assert!(t.check("9.9.9.9", "fresh@x", now).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            t.record_failure("1.1.1.1", "a@x", now);
        }
        t.clear_account("a@x");
        assert!(t.check("3.3.3.3", "a@x", now).is_ok());
    }
}
