//! Failed-login throttle, per client address and per account (sliding window, in memory),
//! and the bound on concurrent password checks.
//!
//! In memory per process: with several API replicas an attacker gets each replica's budget,
//! which still bounds guessing to a handful of attempts per window and replica.
//!
//! An attempt *reserves* its slot before the password is checked ([`LoginThrottle::reserve`]):
//! checking first and counting after let a burst of concurrent attempts all pass the check
//! before the first failure was counted, each costing an argon2 computation (CPU and ~19 MiB).
//! Argon2 runs are also bounded process-wide ([`LoginThrottle::password_permit`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many failures are allowed, and over how long.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failed logins allowed per account within the window.
    pub per_account: usize,
    /// Failed logins allowed per client address (IPv6: per /64) within the window.
    pub per_ip: usize,
    /// The sliding window.
    pub window: Duration,
    /// Password checks (argon2) running at once in this process; more wait briefly, then get
    /// 503. Default: one per CPU core, since each check keeps a core busy.
    pub concurrent_checks: usize,
    /// How long a login waits for a password-check slot before 503.
    pub check_wait: Duration,
    /// Failed client authentications allowed per address (IPv6: per /64) within the window
    /// at `POST /oauth/introspect`.
    pub client_auth_per_ip: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_ip: 20,
            window: Duration::from_secs(15 * 60),
            concurrent_checks: std::thread::available_parallelism().map_or(2, usize::from),
            check_wait: Duration::from_secs(2),
            client_auth_per_ip: 20,
        }
    }
}

/// Keys remembered at most: past it, stale keys are swept, then the least recently used
/// ones dropped, so a flood of distinct addresses or emails cannot grow memory without end.
pub const MAX_KEYS: usize = 100_000;

/// Recent attempts of one key (address or account).
#[derive(Debug, Default)]
struct Entry {
    /// Reserved attempts within the window, oldest first (at most the key's limit).
    times: VecDeque<Instant>,
    /// Refusals since the key reached its limit; only the first is audited.
    refusals: u64,
}

/// A login attempt that holds its slot in the throttle. Dropping it without
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::release`] leaves it counted as a failure.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless it is released or succeeded"]
pub struct Attempt {
    ip: String,
    account: String,
    at: Instant,
}

/// Why an attempt was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until an attempt can be admitted again.
    pub retry_after: u64,
    /// Whether this is the first refusal since the key reached its limit (worth one audit
    /// row; later ones in the same stretch are not, so a flood writes no flood of rows).
    pub first: bool,
}

/// Remembers recent login attempts and bounds concurrent password checks.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<String, Entry>>,
    checks: Arc<Semaphore>,
    checked: AtomicU64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        let checks = Arc::new(Semaphore::new(config.concurrent_checks.max(1)));
        Self { config, entries: Mutex::new(HashMap::new()), checks, checked: AtomicU64::new(0) }
    }

    /// Admits an attempt and counts it at once against the address and the account, or
    /// refuses it when either is at its limit.
    pub fn reserve(&self, ip: &str, account: &str, now: Instant) -> Result<Attempt, Throttled> {
        let (ip, account) = (ip_key(ip), account_key(account));
        let Ok(mut map) = self.entries.lock() else {
            // A poisoned lock means a bug elsewhere; refusing keeps the password check bounded.
            return Err(Throttled { retry_after: 1, first: false });
        };
        let window = self.config.window;
        let mut wait = None::<Duration>;
        let mut first = false;
        for (key, limit) in [(&ip, self.config.per_ip), (&account, self.config.per_account)] {
            let Some(entry) = map.get_mut(key) else { continue };
            prune(entry, now, window, limit);
            if entry.times.len() >= limit {
                let left = entry
                    .times
                    .front()
                    .map_or(window, |oldest| window.saturating_sub(now.saturating_duration_since(*oldest)));
                wait = Some(wait.map_or(left, |w| w.max(left)));
                entry.refusals = entry.refusals.saturating_add(1);
                first |= entry.refusals == 1;
            }
        }
        if let Some(wait) = wait {
            return Err(Throttled { retry_after: wait.as_secs().max(1), first });
        }
        bound(&mut map, now, window, self.config.per_ip.max(self.config.per_account));
        for key in [&ip, &account] {
            map.entry(key.clone()).or_default().times.push_back(now);
        }
        Ok(Attempt { ip, account, at: now })
    }

    /// The attempt signed in: it does not count against the address, and the account's
    /// failures are forgotten.
    pub fn succeeded(&self, attempt: Attempt) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&attempt.account);
            forget(&mut map, &attempt.ip, attempt.at);
        }
    }

    /// The attempt was not decided (e.g. the database was out of reach): it does not count.
    pub fn release(&self, attempt: Attempt) {
        if let Ok(mut map) = self.entries.lock() {
            forget(&mut map, &attempt.account, attempt.at);
            forget(&mut map, &attempt.ip, attempt.at);
        }
    }

    /// A slot to run one password check in, waiting up to the configured time; `None` when
    /// the process is saturated. Move the permit into the blocking task so the slot is held
    /// until the computation ends, even if the client goes away.
    pub async fn password_permit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = tokio::time::timeout(self.config.check_wait, Arc::clone(&self.checks).acquire_owned()).await;
        let permit = permit.ok()?.ok()?;
        self.checked.fetch_add(1, Ordering::Relaxed);
        Some(permit)
    }

    /// Password checks started so far (tests and diagnostics).
    pub fn password_checks(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }

    /// Keys currently remembered (tests and diagnostics).
    pub fn remembered_keys(&self) -> usize {
        self.entries.lock().map_or(0, |map| map.len())
    }
}

/// Failed client authentications at `POST /oauth/introspect`, per client address (IPv6: per
/// /64), in a sliding window: an address at its limit gets 429 before its credential is looked
/// up, so wrong secrets cannot keep the database busy.
///
/// Unlike the login throttle it checks first and counts failures after, without reserving: a
/// direct server may have many introspections in flight at once, and reserving would count
/// those (successful) calls against it. The race this leaves costs one indexed lookup per
/// concurrent attempt (no argon2 here), bounded by the connection pool. Not keyed by client
/// id: ids are not secret, and anyone could then lock a server out of introspection.
#[derive(Debug)]
pub struct ClientAuthThrottle {
    limit: usize,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ClientAuthThrottle {
    /// A throttle allowing `limit` failures per address within `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self { limit: limit.max(1), window, entries: Mutex::new(HashMap::new()) }
    }

    /// Refuses an address that reached its limit of failures; otherwise lets it try.
    pub fn check(&self, ip: &str, now: Instant) -> Result<(), Throttled> {
        let Ok(mut map) = self.entries.lock() else {
            return Err(Throttled { retry_after: 1, first: false });
        };
        let Some(entry) = map.get_mut(&ip_key(ip)) else { return Ok(()) };
        prune(entry, now, self.window, self.limit);
        if entry.times.len() < self.limit {
            return Ok(());
        }
        let left = entry
            .times
            .front()
            .map_or(self.window, |oldest| self.window.saturating_sub(now.saturating_duration_since(*oldest)));
        entry.refusals = entry.refusals.saturating_add(1);
        Err(Throttled { retry_after: left.as_secs().max(1), first: entry.refusals == 1 })
    }

    /// Counts one failed authentication from `ip`.
    pub fn failed(&self, ip: &str, now: Instant) {
        let Ok(mut map) = self.entries.lock() else { return };
        bound(&mut map, now, self.window, self.limit);
        let entry = map.entry(ip_key(ip)).or_default();
        prune(entry, now, self.window, self.limit);
        // Failures past the limit are refused before they are checked, so none is recorded
        // beyond it; keeping at most `limit` instants bounds each entry.
        if entry.times.len() >= self.limit {
            entry.times.pop_front();
        }
        entry.times.push_back(now);
    }
}

/// Removes one reserved instant of `key` (the attempt's own).
fn forget(map: &mut HashMap<String, Entry>, key: &str, at: Instant) {
    if let Some(entry) = map.get_mut(key) {
        if let Some(i) = entry.times.iter().rposition(|t| *t == at) {
            entry.times.remove(i);
        }
        if entry.times.is_empty() {
            map.remove(key);
        }
    }
}

/// Keeps the map under [`MAX_KEYS`] before two keys are added: first drops keys with no
/// attempt left in the window, then, if an active flood still fills it, the keys whose last
/// attempt is oldest (freeing their budget early is the price of bounded memory).
fn bound(map: &mut HashMap<String, Entry>, now: Instant, window: Duration, limit: usize) {
    if map.len() + 2 <= MAX_KEYS {
        return;
    }
    map.retain(|_, entry| {
        prune(entry, now, window, limit);
        !entry.times.is_empty()
    });
    if map.len() + 2 <= MAX_KEYS {
        return;
    }
    let mut by_age: Vec<(Instant, String)> =
        map.iter().map(|(key, entry)| (entry.times.back().copied().unwrap_or(now), key.clone())).collect();
    by_age.sort_unstable();
    let excess = map.len().saturating_sub(MAX_KEYS * 9 / 10);
    for (_, key) in by_age.into_iter().take(excess) {
        map.remove(&key);
    }
}

/// The throttle key of a client address: IPv6 clients are keyed by their /64, since one
/// subscriber usually holds a whole /64 and could otherwise rotate through it.
pub(crate) fn ip_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
        Ok(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{ip}"),
    }
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.trim().to_lowercase())
}

/// Drops attempts older than the window; a key back under its limit starts a new stretch of
/// refusals (so its next refusal is audited again).
fn prune(entry: &mut Entry, now: Instant, window: Duration, limit: usize) {
    while entry.times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        entry.times.pop_front();
    }
    if entry.times.len() < limit {
        entry.refusals = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            per_account: 3,
            per_ip: 5,
            window: Duration::from_secs(60),
            ..ThrottleConfig::default()
        })
    }

    #[test]
    fn account_is_blocked_after_its_limit_until_the_window_passes() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..3 {
            let _failed = t.reserve("1.1.1.1", "a@x", start).unwrap();
        }
        let refused = t.reserve("2.2.2.2", "A@X", start + Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused, Throttled { retry_after: 50, first: true });
        assert!(t.reserve("2.2.2.2", "a@x", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn concurrent_attempts_reserve_their_slot_before_any_is_decided() {
        let t = throttle();
        let now = Instant::now();
        let admitted: Vec<Attempt> = (0..200).filter_map(|_| t.reserve("1.1.1.1", "a@x", now).ok()).collect();
        assert_eq!(admitted.len(), 3, "only the account's limit gets through, undecided or not");
    }

    #[test]
    fn only_the_first_refusal_of_a_stretch_is_marked_for_the_audit_log() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            let _failed = t.reserve("1.1.1.1", "a@x", now).unwrap();
        }
        assert!(t.reserve("1.1.1.1", "a@x", now).unwrap_err().first);
        for _ in 0..100 {
            assert!(!t.reserve("1.1.1.1", "a@x", now).unwrap_err().first);
        }
        let later = now + Duration::from_secs(61);
        for _ in 0..3 {
            let _failed = t.reserve("1.1.1.1", "a@x", later).unwrap();
        }
        assert!(t.reserve("1.1.1.1", "a@x", later).unwrap_err().first, "a new stretch is audited again");
    }

    #[test]
    fn address_is_blocked_across_accounts() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..5 {
            let _failed = t.reserve("1.1.1.1", &format!("user{i}@x"), now).unwrap();
        }
        assert!(t.reserve("1.1.1.1", "fresh@x", now).is_err());
        assert!(t.reserve("9.9.9.9", "fresh@x", now).is_ok());
    }

    #[test]
    fn ipv6_clients_share_the_budget_of_their_64() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..5 {
            let _failed = t.reserve(&format!("2001:db8:1:2::{i:x}"), &format!("user{i}@x"), now).unwrap();
        }
        assert!(t.reserve("2001:db8:1:2:ffff::1", "fresh@x", now).is_err());
        assert!(t.reserve("2001:db8:1:3::1", "fresh@x", now).is_ok());
        assert_eq!(ip_key("::ffff:10.0.0.1"), "ip:10.0.0.1");
    }

    #[test]
    fn success_clears_the_account_and_does_not_count_against_the_address() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..2 {
            let _failed = t.reserve("1.1.1.1", "a@x", now).unwrap();
        }
        let ok = t.reserve("1.1.1.1", "a@x", now).unwrap();
        t.succeeded(ok);
        for _ in 0..3 {
            let _failed = t.reserve("3.3.3.3", "a@x", now).unwrap();
        }
        // 1.1.1.1 has two failures left on record, not three.
        for i in 0..3 {
            let _failed = t.reserve("1.1.1.1", &format!("other{i}@x"), now).unwrap();
        }
        assert!(t.reserve("1.1.1.1", "more@x", now).is_err());
    }

    #[test]
    fn released_attempts_do_not_count() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..10 {
            let attempt = t.reserve("1.1.1.1", "a@x", now).unwrap();
            t.release(attempt);
        }
        assert_eq!(t.remembered_keys(), 0);
    }

    #[test]
    fn client_auth_refuses_an_address_at_its_limit_until_the_window_passes() {
        let t = ClientAuthThrottle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check("1.1.1.1", start).is_ok());
            t.failed("1.1.1.1", start);
        }
        assert_eq!(
            t.check("1.1.1.1", start + Duration::from_secs(10)),
            Err(Throttled { retry_after: 50, first: true })
        );
        assert!(!t.check("1.1.1.1", start + Duration::from_secs(10)).unwrap_err().first);
        assert!(t.check("2.2.2.2", start).is_ok(), "other addresses keep their budget");
        assert!(t.check("1.1.1.1", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn client_auth_successes_and_checks_never_count() {
        let t = ClientAuthThrottle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(t.check("1.1.1.1", now).is_ok());
        }
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_distinct_keys() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32) {
            let _failed = t.reserve(&std::net::Ipv4Addr::from(i).to_string(), &format!("u{i}@x"), now).unwrap();
        }
        assert!(t.remembered_keys() <= MAX_KEYS);
    }
}
