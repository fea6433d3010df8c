//! Alert signals noticed while admitting requests (issue #17): the first 429 of a token's
//! hour, a burst of 401s for one token id, a token used from a network it was not seen on.
//!
//! The request path never waits for them: a signal is a `try_send` on a bounded channel
//! (dropped when full, counted in the log), and the composition root's writer turns it into
//! an `alert_events` row. Cheap in-memory filters keep the channel quiet: each token hour,
//! failure burst and (token, network) pair is sent at most once per process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use tessera_core::alerts::network_of;
use tessera_core::validate::Principal;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::limits::LimitScope;

/// Entries each in-memory filter keeps before it is cleared (a reset only lets a signal
/// through again, which the database's `dedupe` key still absorbs).
const MAX_REMEMBERED: usize = 100_000;
/// The window a burst of 401s is counted in.
const FAILURE_WINDOW_SECS: i64 = 300;
/// Default 401s within the window that make a burst (`TESSERA_ALERT_AUTH_FAILURES`).
pub const DEFAULT_AUTH_FAILURE_THRESHOLD: u32 = 10;

/// Something the alert writer should record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertSignal {
    /// The token's (or its user's) budget refused a call, first time this hour.
    RateLimited {
        /// The token.
        token_id: Uuid,
        /// `token` or `user`.
        scope: &'static str,
        /// Requests per hour of that budget.
        limit: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A burst of 401s for one (signature-valid) token id.
    AuthFailures {
        /// The token.
        token_id: Uuid,
        /// 401s counted in the window.
        count: u32,
        /// When the threshold was reached.
        at: DateTime<Utc>,
    },
    /// The token was used from a network (/24 or /48) this process had not seen it on.
    Used {
        /// The token.
        token_id: Uuid,
        /// The network, e.g. `203.0.113.0/24`.
        network: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The request path's side of the alert channel; one per process.
#[derive(Debug)]
pub struct AlertSink {
    tx: Mutex<Option<mpsc::Sender<AlertSignal>>>,
    limited: Mutex<HashSet<(Uuid, i64)>>,
    failures: Mutex<HashMap<Uuid, (i64, u32)>>,
    networks: Mutex<HashSet<(Uuid, String)>>,
    failure_threshold: AtomicU32,
}

impl Default for AlertSink {
    fn default() -> Self {
        Self {
            tx: Mutex::new(None),
            limited: Mutex::default(),
            failures: Mutex::default(),
            networks: Mutex::default(),
            failure_threshold: AtomicU32::new(DEFAULT_AUTH_FAILURE_THRESHOLD),
        }
    }
}

impl AlertSink {
    /// Opens the channel (the composition root's writer holds the receiver); until then,
    /// signals are dropped.
    pub fn connect(&self, capacity: usize, auth_failure_threshold: u32) -> mpsc::Receiver<AlertSignal> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        if let Ok(mut slot) = self.tx.lock() {
            *slot = Some(tx);
        }
        self.failure_threshold.store(auth_failure_threshold.max(1), Ordering::Relaxed);
        rx
    }

    fn send(&self, signal: AlertSignal) {
        let Ok(slot) = self.tx.lock() else { return };
        if let Some(tx) = slot.as_ref()
            && tx.try_send(signal).is_err()
        {
            tracing::warn!("alert channel full or closed: dropping an alert signal");
        }
    }

    /// A call was refused by `scope`'s budget.
    pub fn rate_limited(&self, principal: &Principal, scope: LimitScope, limit: u32, now: DateTime<Utc>) {
        let hour = now.timestamp().div_euclid(3600);
        if !remember(&self.limited, (principal.token_id, hour)) {
            return;
        }
        self.send(AlertSignal::RateLimited { token_id: principal.token_id, scope: scope.as_str(), limit, at: now });
    }

    /// A signature-valid token was refused with 401 (revoked, rotated, expired row, ...).
    pub fn auth_failure(&self, token_id: Uuid, now: DateTime<Utc>) {
        let threshold = self.failure_threshold.load(Ordering::Relaxed);
        let ts = now.timestamp();
        let reached = {
            let Ok(mut map) = self.failures.lock() else { return };
            if map.len() >= MAX_REMEMBERED && !map.contains_key(&token_id) {
                map.clear();
            }
            let entry = map.entry(token_id).or_insert((ts, 0));
            if ts.saturating_sub(entry.0) >= FAILURE_WINDOW_SECS {
                *entry = (ts, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            // Exactly at the threshold: one signal per burst, not one per further 401.
            (entry.1 == threshold).then_some(entry.1)
        };
        if let Some(count) = reached {
            self.send(AlertSignal::AuthFailures { token_id, count, at: now });
        }
    }

    /// An admitted call from `ip`.
    pub fn used(&self, token_id: Uuid, ip: Option<&str>, now: DateTime<Utc>) {
        let Some(network) = ip.and_then(network_of) else { return };
        if !remember(&self.networks, (token_id, network.clone())) {
            return;
        }
        self.send(AlertSignal::Used { token_id, network, at: now });
    }
}

/// Adds `key`; true when it was new.
fn remember<K: std::hash::Hash + Eq>(set: &Mutex<HashSet<K>>, key: K) -> bool {
    let Ok(mut set) = set.lock() else { return false };
    if set.len() >= MAX_REMEMBERED && !set.contains(&key) {
        set.clear();
    }
    set.insert(key)
}
