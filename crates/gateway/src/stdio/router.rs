//! Where a child's notifications go: a progress notification to the client whose request
//! carried its token (with that client's own token back), list changes to every client of
//! the process. Kept per process slot, so clients stay subscribed across restarts.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rmcp::RoleServer;
use rmcp::model::{Notification, ProgressNotificationParam, ProgressToken, ServerNotification};
use rmcp::service::Peer;

/// Most client sessions kept subscribed to one process (closed ones are dropped first).
const MAX_SUBSCRIBERS: usize = 4096;

#[derive(Default)]
pub(crate) struct Router {
    /// Client sessions that initialized on this process.
    subscribers: Mutex<Vec<Peer<RoleServer>>>,
    /// The token Tessera sent the child → the client and the token it sent.
    progress: Mutex<HashMap<ProgressToken, (Peer<RoleServer>, ProgressToken)>>,
    /// Progress that came before its route: rmcp picks the token it sends the child while
    /// sending the request, so a fast child can report progress before the route is known.
    early: Mutex<HashMap<ProgressToken, Vec<ProgressNotificationParam>>>,
}

/// Early progress kept at most (tokens); the table is cleared beyond it.
const MAX_EARLY: usize = 1024;

impl Router {
    /// Sends list changes to `peer` from now on.
    pub(crate) fn subscribe(&self, peer: Peer<RoleServer>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        subs.retain(|p| !p.is_transport_closed());
        if subs.len() < MAX_SUBSCRIBERS {
            subs.push(peer);
        }
    }

    /// Routes progress on `ours` (the token the child saw) to `client` as `theirs`, and
    /// delivers what already came on it.
    pub(crate) async fn expect_progress(&self, ours: ProgressToken, client: Peer<RoleServer>, theirs: ProgressToken) {
        let route = (client, theirs);
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).insert(ours.clone(), route.clone());
        let early = self.early.lock().unwrap_or_else(PoisonError::into_inner).remove(&ours).unwrap_or_default();
        for params in early {
            deliver(&route, params).await;
        }
    }

    /// Forgets a request's progress route (it was answered).
    pub(crate) fn forget_progress(&self, ours: &ProgressToken) {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).remove(ours);
        self.early.lock().unwrap_or_else(PoisonError::into_inner).remove(ours);
    }

    /// Delivers one progress notification to its client, or keeps it until its route is
    /// known.
    pub(crate) async fn progress(&self, params: ProgressNotificationParam) {
        let route = self.progress.lock().unwrap_or_else(PoisonError::into_inner).get(&params.progress_token).cloned();
        match route {
            Some(route) => deliver(&route, params).await,
            None => {
                let mut early = self.early.lock().unwrap_or_else(PoisonError::into_inner);
                if early.len() >= MAX_EARLY {
                    early.clear();
                }
                early.entry(params.progress_token.clone()).or_default().push(params);
            }
        }
    }

    /// Sends `notification` to every client of the process.
    pub(crate) async fn broadcast(&self, notification: ServerNotification) {
        let subs: Vec<Peer<RoleServer>> = {
            let mut subs = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subs.retain(|p| !p.is_transport_closed());
            subs.clone()
        };
        for peer in subs {
            let _ = peer.send_notification(notification.clone()).await;
        }
    }
}

/// Sends progress to the client of `route` with the client's own token.
async fn deliver(route: &(Peer<RoleServer>, ProgressToken), mut params: ProgressNotificationParam) {
    params.progress_token = route.1.clone();
    let _ = route.0.send_notification(ServerNotification::ProgressNotification(Notification::new(params))).await;
}
