//! Which token opened which upstream session: another token presenting the id gets 404, as
//! if the session did not exist. In memory, per process, in front of the `gateway_sessions`
//! table that every replica shares (a miss here is looked up there, in `proxy.rs`).

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// Most sessions remembered; past it the oldest binding is forgotten (its client then gets
/// 404 and opens a new session, as the spec has clients do).
const MAX_SESSIONS: usize = 100_000;

/// Session bindings: (server, session id) → token id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<(String, String), (Uuid, u64)>>,
    counter: std::sync::atomic::AtomicU64,
}

impl Sessions {
    /// Binds `session` on `server` to `token` (first binding wins).
    pub(crate) fn bind(&self, server: &str, session: &str, token: Uuid) {
        let seq = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.entry((server.to_owned(), session.to_owned())).or_insert((token, seq));
    }

    /// Whether `token` may use `session` on `server`.
    pub(crate) fn owned_by(&self, server: &str, session: &str, token: Uuid) -> bool {
        let Ok(map) = self.map.lock() else { return false };
        map.get(&(server.to_owned(), session.to_owned())).is_some_and(|(t, _)| *t == token)
    }

    /// Forgets a session (after DELETE).
    pub(crate) fn end(&self, server: &str, session: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&(server.to_owned(), session.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_the_token_that_opened_it() {
        let s = Sessions::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        s.bind("gh", "sid", a);
        s.bind("gh", "sid", b);
        assert!(s.owned_by("gh", "sid", a));
        assert!(!s.owned_by("gh", "sid", b));
        assert!(!s.owned_by("other", "sid", a));
        s.end("gh", "sid");
        assert!(!s.owned_by("gh", "sid", a));
    }
}
