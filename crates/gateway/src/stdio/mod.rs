//! stdio servers (issue #26): MCP servers Tessera runs as child processes, served at
//! `/mcp/NAME` like any upstream. The gateway forwards to an in-process bridge (an rmcp
//! Streamable HTTP server on a loopback port, [`bridge`]) with its existing HTTP path, so
//! every check of that path applies unchanged; the bridge forwards each request to the
//! child's MCP session, which this pool starts, restarts and stops.

pub(crate) mod bridge;
mod child;
mod router;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tessera_store::ServerRecord;
use tessera_tokens::{ServerService, StdioCommand};
use uuid::Uuid;

pub use bridge::{StdioBridge, StdioLink};
use child::Child;
use router::Router;

/// How long a request waits for a process that is being started or restarted before it
/// is answered 503 with `Retry-After`.
const RESTART_WAIT: Duration = Duration::from_secs(3);
/// First restart delay after a crash; doubled per crash in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before dying was healthy: its crash count starts again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// How often idle per-user processes (and processes of removed servers) are looked for.
const REAP_EVERY: Duration = Duration::from_secs(15);

/// What the pool needs of its deployment.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// Processes' homes live under `{data_dir}/stdio/`.
    pub data_dir: PathBuf,
    /// Most processes at once (`TESSERA_STDIO_MAX_PROCESSES`).
    pub max_processes: usize,
    /// Handshake and per-request limit (`TESSERA_UPSTREAM_TIMEOUT`): a child that does not
    /// answer within it is killed.
    pub timeout: Duration,
    /// The `PATH` children get (Tessera's own).
    pub path: String,
}

impl StdioConfig {
    /// Settings with Tessera's `PATH` and the default bound of 64 processes.
    pub fn new(data_dir: PathBuf, timeout: Duration) -> Self {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
        Self { data_dir, max_processes: 64, timeout, path }
    }
}

/// Why no process can serve a request now: answered 503 `upstream_unavailable` with
/// `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// `TESSERA_STDIO_MAX_PROCESSES` processes run already.
    Full,
    /// It crashed and restarts after a backoff (seconds until then).
    Restarting(u64),
    /// It could not be started (why, for the log).
    Failed(String),
    /// Not a stdio server, or its command is missing.
    NotStdio,
}

impl Unavailable {
    /// Seconds a client should wait.
    pub fn retry_after(&self) -> u64 {
        match self {
            Self::Restarting(s) => (*s).max(1),
            _ => 5,
        }
    }
}

/// The stdio servers' processes of this Tessera instance; cheap to clone.
#[derive(Debug, Clone)]
pub struct StdioPool {
    inner: Arc<Pool>,
}

type Key = (Uuid, Option<Uuid>);

#[derive(Debug)]
struct Pool {
    servers: ServerService,
    config: StdioConfig,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    /// Commands by server id (a stdio server's command never changes under its id).
    commands: Mutex<HashMap<Uuid, Arc<StdioCommand>>>,
    /// Processes started and not yet ended (or reserved while starting).
    running: Arc<AtomicUsize>,
    /// The runtime children's sessions run on: the one that made the pool (the main one),
    /// not an HTTP worker's, which stops with the HTTP server before children are closed.
    runtime: tokio::runtime::Handle,
}

struct Slot {
    server: String,
    per_user: bool,
    idle: Duration,
    state: tokio::sync::Mutex<SlotState>,
    last_used: Mutex<Instant>,
    router: Arc<Router>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct SlotState {
    child: Option<Arc<Child>>,
    /// Crashes in a row.
    failures: u32,
    /// No start before this (backoff).
    not_before: Option<Instant>,
}

impl StdioPool {
    /// A pool over `servers`' commands; starts its reaper on the current runtime.
    pub fn new(servers: ServerService, config: StdioConfig) -> Self {
        let pool = Self {
            inner: Arc::new(Pool {
                servers,
                config,
                slots: Mutex::default(),
                commands: Mutex::default(),
                running: Arc::default(),
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        let weak = Arc::downgrade(&pool.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REAP_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                StdioPool { inner }.reap().await;
            }
        });
        pool
    }

    /// Processes running now.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// The process serving `user` on `server`, started if needed: waits up to a few seconds
    /// for a restart, never longer.
    pub(crate) async fn acquire(&self, server: &ServerRecord, user: Uuid) -> Result<Arc<Slotted>, Unavailable> {
        let command = self.command(server).await?;
        let key = (server.id, command.per_user.then_some(user));
        let slot = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(key).or_insert_with(|| {
                Arc::new(Slot {
                    server: server.name.clone(),
                    per_user: command.per_user,
                    idle: command.idle,
                    state: tokio::sync::Mutex::default(),
                    last_used: Mutex::new(Instant::now()),
                    router: Arc::default(),
                })
            }))
        };
        *slot.last_used.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        // Another request is starting it (a first start may take a while: npx, uvx): waited
        // for a few seconds, then 503 with Retry-After, never a hang.
        let Ok(mut state) = tokio::time::timeout(RESTART_WAIT, slot.state.lock()).await else {
            return Err(Unavailable::Restarting(RESTART_WAIT.as_secs()));
        };
        if let Some(child) = &state.child {
            if child.alive() {
                return Ok(Arc::new(Slotted { child: Arc::clone(child), router: Arc::clone(&slot.router) }));
            }
            // It died: back off before the next start, longer for each crash in a row.
            let died = child.died.get().copied().unwrap_or_else(Instant::now);
            state.failures = if died.duration_since(child.started) < HEALTHY_RUN { state.failures + 1 } else { 1 };
            state.not_before = Some(died + backoff(state.failures));
            state.child = None;
        }
        if let Some(at) = state.not_before {
            let wait = at.saturating_duration_since(Instant::now());
            if wait > RESTART_WAIT {
                return Err(Unavailable::Restarting(wait.as_secs().saturating_add(1)));
            }
            tokio::time::sleep(wait).await;
        }
        let running = &self.inner.running;
        if running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.inner.config.max_processes).then_some(n + 1)
            })
            .is_err()
        {
            tracing::warn!(server = %server.name, max = self.inner.config.max_processes, "stdio process limit reached");
            return Err(Unavailable::Full);
        }
        let spawn = child::Spawn {
            server: server.name.clone(),
            command: Arc::clone(&command),
            home: self.home(server, key.1),
            path: self.inner.config.path.clone(),
        };
        let start = child::start(spawn, Arc::clone(&slot.router), self.inner.config.timeout);
        let started = self.inner.runtime.spawn(start).await.unwrap_or_else(|e| Err(format!("the start failed: {e}")));
        match started {
            Ok(child) => {
                let child = Arc::new(child);
                // The slot's count is given back when the process ends, however it ends.
                let (died, counter) = (Arc::clone(&child.died), Arc::clone(running));
                let peer = child.peer.clone();
                self.inner.runtime.spawn(async move {
                    while died.get().is_none() && !peer.is_transport_closed() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    counter.fetch_sub(1, Ordering::AcqRel);
                });
                state.child = Some(Arc::clone(&child));
                state.not_before = None;
                Ok(Arc::new(Slotted { child, router: Arc::clone(&slot.router) }))
            }
            Err(why) => {
                running.fetch_sub(1, Ordering::AcqRel);
                state.failures += 1;
                state.not_before = Some(Instant::now() + backoff(state.failures));
                tracing::warn!(server = %server.name, error = %why, "stdio server could not be started");
                Err(Unavailable::Failed(why))
            }
        }
    }

    /// The process id serving `user` on `server`, if one runs (for tests and operators).
    pub async fn pid(&self, server: &ServerRecord, user: Uuid) -> Option<u32> {
        let per_user = self.command(server).await.ok()?.per_user;
        let slot = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(server.id, per_user.then_some(user)))
            .cloned()?;
        let state = slot.state.lock().await;
        state.child.as_ref().filter(|c| c.alive()).and_then(|c| c.pid())
    }

    /// Closes every process (stdin closed, then TERM, then KILL) and waits for them.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> =
            self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, s)| s).collect();
        for slot in &slots {
            if let Some(child) = slot.state.lock().await.child.take() {
                child.close();
            }
        }
        // rmcp waits up to 3 s after closing stdin and 3 s after TERM before it kills.
        let deadline = Instant::now() + Duration::from_secs(8);
        while self.running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn command(&self, server: &ServerRecord) -> Result<Arc<StdioCommand>, Unavailable> {
        if let Some(found) = self.inner.commands.lock().unwrap_or_else(PoisonError::into_inner).get(&server.id) {
            return Ok(Arc::clone(found));
        }
        let command = match self.inner.servers.stdio_command(server).await {
            Ok(Some(command)) => Arc::new(command),
            Ok(None) => return Err(Unavailable::NotStdio),
            Err(e) => return Err(Unavailable::Failed(e.to_string())),
        };
        let mut commands = self.inner.commands.lock().unwrap_or_else(PoisonError::into_inner);
        if commands.len() >= 1024 {
            commands.clear();
        }
        commands.insert(server.id, Arc::clone(&command));
        Ok(command)
    }

    /// A process's home: `{data_dir}/stdio/NAME/home`, or per user `.../users/ID`.
    fn home(&self, server: &ServerRecord, user: Option<Uuid>) -> PathBuf {
        let base = self.inner.config.data_dir.join("stdio").join(&server.name);
        match user {
            Some(user) => base.join("users").join(user.to_string()),
            None => base.join("home"),
        }
    }

    /// Stops idle per-user processes, and processes of servers removed or replaced.
    async fn reap(&self) {
        let slots: Vec<(Key, Arc<Slot>)> = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, s)| (*k, Arc::clone(s)))
            .collect();
        for (key, slot) in slots {
            let idle = slot.last_used.lock().unwrap_or_else(PoisonError::into_inner).elapsed();
            let gone = match self.inner.servers.get(&slot.server).await {
                Ok(record) => record.id != key.0,
                Err(tessera_tokens::ServerError::NotFound) => true,
                Err(_) => false,
            };
            if gone || (slot.per_user && idle >= slot.idle) {
                let mut state = slot.state.lock().await;
                if let Some(child) = state.child.take() {
                    tracing::info!(server = %slot.server, gone, "stopping an idle stdio server process");
                    child.close();
                }
                drop(state);
                self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
                if gone {
                    self.inner.commands.lock().unwrap_or_else(PoisonError::into_inner).remove(&key.0);
                }
            }
        }
    }

    /// Lists a stdio server's tools at registration: a process of its own, stopped after.
    pub(crate) async fn list_once(
        config: &StdioConfig,
        name: &str,
        command: &StdioCommand,
    ) -> Result<Vec<rmcp::model::Tool>, String> {
        let spawn = child::Spawn {
            server: name.to_owned(),
            command: Arc::new(command.clone()),
            home: config.data_dir.join("stdio").join(name).join("discovery"),
            path: config.path.clone(),
        };
        let child = child::start(spawn, Arc::default(), config.timeout).await?;
        let listed = tokio::time::timeout(config.timeout, child.peer.list_all_tools()).await;
        child.close();
        match listed {
            Ok(Ok(tools)) => Ok(tools),
            Ok(Err(e)) => Err(format!("tools/list failed: {e}")),
            Err(_) => {
                child.kill();
                Err(format!("no tool list within {} s", config.timeout.as_secs()))
            }
        }
    }
}

/// A process and its slot's router, for one request.
pub(crate) struct Slotted {
    pub(crate) child: Arc<Child>,
    pub(crate) router: Arc<Router>,
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

/// For a stdio server: its process for `user` is running, else the 503 to answer (`None`
/// for any other server).
pub(crate) async fn admit(
    state: &crate::GatewayState,
    server: &ServerRecord,
    user: Uuid,
    id: Option<&serde_json::Value>,
) -> Option<actix_web::HttpResponse> {
    if !tessera_tokens::is_stdio(server) {
        return None;
    }
    let Some(link) = state.inner.stdio.as_ref() else {
        tracing::warn!(server = %server.name, "a stdio server is registered but this process runs none");
        return Some(unavailable_response(&Unavailable::NotStdio, id));
    };
    match link.pool.acquire(server, user).await {
        Ok(_) => None,
        Err(why) => Some(unavailable_response(&why, id)),
    }
}

/// 503 `upstream_unavailable` with `Retry-After`, in JSON-RPC form for a request with an id.
fn unavailable_response(why: &Unavailable, id: Option<&serde_json::Value>) -> actix_web::HttpResponse {
    let message = match why {
        Unavailable::Full => "too many stdio server processes are running; try again later",
        Unavailable::Restarting(_) => "the stdio server is restarting; try again shortly",
        Unavailable::Failed(_) | Unavailable::NotStdio => "the stdio server cannot be started right now",
    };
    let code = tessera_core::ErrorCode::UpstreamUnavailable;
    let mut res = actix_web::HttpResponse::ServiceUnavailable();
    res.insert_header((actix_web::http::header::RETRY_AFTER, why.retry_after().to_string()))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    match id {
        Some(id) => res.json(serde_json::json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32000, "message": message, "data": {"error": code}},
        })),
        None => res.json(serde_json::json!({"error": code, "message": message})),
    }
}

/// Adds the bridge's secret and the request's server and user to a request for the bridge.
pub(crate) fn bridge_headers(
    up: hyper::http::request::Builder,
    link: &StdioLink,
    server: &str,
    user: Uuid,
) -> hyper::http::request::Builder {
    up.header(bridge::SECRET_HEADER, &*link.secret)
        .header(bridge::SERVER_HEADER, server)
        .header(bridge::USER_HEADER, user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_exponentially_up_to_a_bound() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
