//! The LISTEN side of `tessera_token_events`, reconnecting on its own.

use std::time::Duration;

use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::{Store, StoreError};

/// The channel every token state change is announced on.
pub const EVENTS_CHANNEL: &str = "tessera_token_events";

/// What a listener learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEvent {
    /// The token's row changed (revoked, rotated, patched): evict it.
    Changed(Uuid),
    /// The connection dropped: events may be missed from now on, so trust no cache.
    Disconnected,
    /// Listening again: whatever was cached while disconnected must be dropped.
    Reconnected,
    /// A liveness probe ([`Store::heartbeat`]) came through: the feed still delivers.
    Heartbeat,
    /// A registered server (its row, headers or tools) changed or went away: evict it.
    ServerChanged(String),
}

/// Payload of the liveness probe on [`EVENTS_CHANNEL`].
const HEARTBEAT: &str = "heartbeat";
/// Prefix of a server-change payload (`server:NAME`); a token id never starts with it.
const SERVER_PREFIX: &str = "server:";

/// A stream of [`TokenEvent`]s that survives database restarts.
#[derive(Debug)]
pub struct TokenEvents {
    store: Store,
    listener: Option<PgListener>,
    backoff: Duration,
}

impl Store {
    /// Sends a liveness probe on the events channel (over the pool, not the listener), so
    /// every listener can tell a silent feed from a dead one.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(HEARTBEAT).execute(self.exec()).await?;
        Ok(())
    }

    /// Starts listening; fails only if the first connection cannot be made.
    pub async fn token_events(&self) -> Result<TokenEvents, StoreError> {
        let listener = connect(self).await?;
        Ok(TokenEvents { store: self.clone(), listener: Some(listener), backoff: Duration::from_millis(100) })
    }
}

async fn connect(store: &Store) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(store.session_pool()).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    Ok(listener)
}

impl TokenEvents {
    /// Waits for the next event. Never fails: connection trouble becomes
    /// `Disconnected`, then `Reconnected` once listening again.
    pub async fn next(&mut self) -> TokenEvent {
        loop {
            match self.listener.as_mut() {
                Some(listener) => match listener.try_recv().await {
                    Ok(Some(n)) if n.payload() == HEARTBEAT => return TokenEvent::Heartbeat,
                    Ok(Some(n)) if n.payload().starts_with(SERVER_PREFIX) => {
                        let name = n.payload().trim_start_matches(SERVER_PREFIX);
                        return TokenEvent::ServerChanged(name.to_owned());
                    }
                    Ok(Some(n)) => match n.payload().parse::<Uuid>() {
                        Ok(id) => return TokenEvent::Changed(id),
                        Err(_) => {
                            tracing::warn!(payload = n.payload(), "ignoring malformed token event");
                        }
                    },
                    Ok(None) | Err(_) => {
                        self.listener = None;
                        return TokenEvent::Disconnected;
                    }
                },
                None => match connect(&self.store).await {
                    Ok(listener) => {
                        self.listener = Some(listener);
                        self.backoff = Duration::from_millis(100);
                        return TokenEvent::Reconnected;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "token event listener cannot reconnect yet");
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                    }
                },
            }
        }
    }
}

/// Announces a change of `token_id` inside the caller's transaction.
pub(crate) async fn notify(conn: &mut sqlx::PgConnection, token_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(token_id.to_string()).execute(conn).await?;
    Ok(())
}

/// Announces a change of server `name` (row, headers, tools) inside the caller's transaction,
/// so every gateway evicts it once the change is visible.
pub(crate) async fn notify_server(conn: &mut sqlx::PgConnection, name: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(format!("{SERVER_PREFIX}{name}"))
        .execute(conn)
        .await?;
    Ok(())
}
