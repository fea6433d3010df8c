//! Prunes the state replicas share through PostgreSQL (issue #16): refilled rate-limit
//! budgets and gateway session bindings no replica will need again. Every replica runs it;
//! the deletes are idempotent. Also refreshes connected accounts' upstream tokens before they
//! end (issue #25), off the request path; a claim in the row keeps replicas from refreshing
//! one connection twice.

use std::time::Duration;

use chrono::Utc;
use tessera_store::Store;
use tessera_tokens::ServerService;
use tokio::task::JoinHandle;

/// How often shared state is pruned.
const EVERY: Duration = Duration::from_secs(600);

/// A gateway session binding older than this is forgotten by the other replicas (the one
/// that saw the `initialize` keeps serving it; elsewhere the client gets 404 and
/// initializes again, as the protocol has it).
pub const SESSION_MAX_AGE_HOURS: i64 = 24;

/// Starts the pruning task.
pub fn spawn(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Utc::now();
            match store.prune_shared_state(now - chrono::Duration::hours(SESSION_MAX_AGE_HOURS), now).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "pruned shared rate-limit and session state"),
                Err(e) => tracing::warn!(error = %e, "could not prune shared state"),
            }
        }
    })
}

/// How often connected accounts are checked for tokens to refresh: a refresh is due in the
/// last half of a token's life (see `tessera_upstream_oauth::rules::refresh_due`), so any
/// token living longer than twice this is refreshed before it ends.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Starts the task that refreshes connected accounts' upstream tokens.
pub fn spawn_refresher(servers: ServerService) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match servers.refresh_expiring(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(refreshed = n, "refreshed connected accounts' upstream tokens"),
                Err(e) => tracing::warn!(error = %e, "could not refresh connected accounts"),
            }
        }
    })
}
