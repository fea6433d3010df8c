//! Prunes the state replicas share through PostgreSQL (issue #16): refilled rate-limit
//! budgets and gateway session bindings no replica will need again. Every replica runs it;
//! the deletes are idempotent.

use std::time::Duration;

use chrono::Utc;
use tessera_store::Store;
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
