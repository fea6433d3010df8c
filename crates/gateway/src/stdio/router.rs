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
}

impl Router {
    /// Sends list changes to `peer` from now on.
    pub(crate) fn subscribe(&self, peer: Peer<RoleServer>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        subs.retain(|p| !p.is_transport_closed());
        if subs.len() < MAX_SUBSCRIBERS {
            subs.push(peer);
        }
    }

    /// Routes progress on `ours` (the token the child saw) to `client` as `theirs`.
    pub(crate) fn expect_progress(&self, ours: ProgressToken, client: Peer<RoleServer>, theirs: ProgressToken) {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).insert(ours, (client, theirs));
    }

    /// Forgets a request's progress route (it was answered).
    pub(crate) fn forget_progress(&self, ours: &ProgressToken) {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).remove(ours);
    }

    /// Delivers one progress notification to its client, if it still waits.
    pub(crate) async fn progress(&self, mut params: ProgressNotificationParam) {
        let route = self.progress.lock().unwrap_or_else(PoisonError::into_inner).get(&params.progress_token).cloned();
        if let Some((client, theirs)) = route {
            params.progress_token = theirs;
            let _ = client.send_notification(ServerNotification::ProgressNotification(Notification::new(params))).await;
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
