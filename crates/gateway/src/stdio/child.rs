//! One child process: started with a clean environment, spoken to as an MCP client over its
//! stdin and stdout (rmcp's child-process transport), its stderr copied to Tessera's log.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rmcp::model::{
    CancelledNotificationParam, ClientCapabilities, ClientConfig, Implementation, InitializeResult,
    ProgressNotificationParam, ResourceUpdatedNotificationParam, ServerNotification,
};
use rmcp::service::{NotificationContext, Peer, RunningServiceCancellationToken};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tessera_core::stdio::expand_user_dir;
use tessera_tokens::StdioCommand;
use tokio::io::AsyncReadExt;

use super::router::Router;

/// A running child and the MCP session Tessera holds with it.
pub(crate) struct Child {
    /// Requests go here.
    pub(crate) peer: Peer<RoleClient>,
    /// What it answered to `initialize` (answered to each client's `initialize`).
    pub(crate) info: Arc<InitializeResult>,
    pid: Option<u32>,
    cancel: std::sync::Mutex<Option<RunningServiceCancellationToken>>,
    /// Set when the session ended (the process exited or was killed).
    pub(crate) died: Arc<OnceLock<Instant>>,
    /// When it was started.
    pub(crate) started: Instant,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl Child {
    /// Whether its session still runs.
    pub(crate) fn alive(&self) -> bool {
        self.died.get().is_none() && !self.peer.is_transport_closed()
    }

    /// Kills it at once (a child that stopped answering); its session then ends.
    pub(crate) fn kill(&self) {
        // Dead from now on: the next request starts another instead of reaching this one.
        let _ = self.died.set(Instant::now());
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Closes it the polite way: stdin closed, then TERM, then KILL (rmcp's transport close).
    pub(crate) fn close(&self) {
        if let Some(cancel) = self.cancel.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            cancel.cancel();
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// Where and how one process runs.
pub(crate) struct Spawn {
    pub(crate) server: String,
    pub(crate) command: Arc<StdioCommand>,
    /// Its `HOME` (and `{user_dir}`), created private if missing.
    pub(crate) home: std::path::PathBuf,
    /// Tessera's own `PATH`, the only variable of Tessera's that the child sees.
    pub(crate) path: String,
}

/// Starts a process and completes the MCP handshake within `timeout`. Its session's tasks
/// run on the runtime this is polled on: the pool runs it on its own (see `StdioPool`).
pub(crate) async fn start(spawn: Spawn, router: Arc<Router>, timeout: Duration) -> Result<Child, String> {
    make_private_dir(&spawn.home).map_err(|e| format!("cannot make its home directory: {e}"))?;
    let home = spawn.home.to_string_lossy().into_owned();
    let line = &spawn.command.line;
    let mut cmd = tokio::process::Command::new(line.program());
    cmd.args(line.args().iter().map(|a| expand_user_dir(a, &home)))
        // Nothing of Tessera's environment (DATABASE_URL, TESSERA_*) reaches the child.
        .env_clear()
        .env("PATH", &spawn.path)
        .env("HOME", &home)
        .envs(spawn.command.env.iter().map(|v| (v.name(), expand_user_dir(v.expose_value(), &home))))
        .current_dir(spawn.command.cwd.as_deref().unwrap_or(&home))
        // Its own process group: a terminal's Ctrl-C reaches Tessera, which closes its
        // children in order, and not the children behind its back.
        .process_group(0)
        .kill_on_drop(true);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", line.program()))?;
    let pid = transport.id();
    if let Some(stderr) = stderr {
        tokio::spawn(copy_stderr(spawn.server.clone(), stderr));
    }
    let handler = ChildHandler { server: spawn.server.clone(), router };
    let running = match tokio::time::timeout(timeout, handler.serve(transport)).await {
        Ok(Ok(running)) => running,
        Ok(Err(e)) => return Err(format!("the MCP handshake failed: {e}")),
        Err(_) => return Err(format!("no MCP handshake within {} s", timeout.as_secs())),
    };
    let peer = running.peer().clone();
    let info = peer.peer_info().ok_or("the server sent no initialize result")?;
    let info = Arc::new(initialize_result(&info));
    let cancel = running.cancellation_token();
    let died = Arc::new(OnceLock::new());
    let watch = Arc::clone(&died);
    let server = spawn.server.clone();
    tokio::spawn(async move {
        let reason = running.waiting().await;
        let _ = watch.set(Instant::now());
        tracing::info!(server = %server, ?pid, ?reason, "stdio server process ended");
    });
    tracing::info!(server = %spawn.server, ?pid, "stdio server process started");
    Ok(Child { peer, info, pid, cancel: std::sync::Mutex::new(Some(cancel)), died, started: Instant::now() })
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Lines per second copied from one child's stderr; the rest are counted and the count
/// logged, so a chatty child cannot flood Tessera's log.
const STDERR_LINES_PER_SECOND: u32 = 20;
/// Longest stderr line logged (the rest of it is cut).
const STDERR_LINE_MAX: usize = 1000;

async fn copy_stderr(server: String, mut stderr: tokio::process::ChildStderr) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let (mut window, mut shown, mut suppressed) = (Instant::now(), 0u32, 0u64);
    let mut emit = |line: &[u8]| {
        if window.elapsed() >= Duration::from_secs(1) {
            if suppressed > 0 {
                tracing::warn!(server = %server, suppressed, "stdio server stderr lines suppressed");
            }
            (window, shown, suppressed) = (Instant::now(), 0, 0);
        }
        if shown < STDERR_LINES_PER_SECOND {
            shown += 1;
            tracing::info!(server = %server, "stderr: {}", String::from_utf8_lossy(line).trim_end());
        } else {
            suppressed += 1;
        }
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&line);
                line.clear();
            } else if line.len() < STDERR_LINE_MAX {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

/// Tessera as the child's MCP client: notifications go to the clients they belong to.
struct ChildHandler {
    server: String,
    router: Arc<Router>,
}

// A log message (`notifications/message`) is tied to no request, so it has no one client
// to go to: rmcp's default drops it rather than showing it to every client of a process.
impl ClientHandler for ChildHandler {
    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.router.progress(params).await;
    }

    async fn on_cancelled(&self, params: CancelledNotificationParam, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, request = ?params.request_id, "the stdio server cancelled a request");
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.router
            .broadcast(ServerNotification::ResourceUpdatedNotification(rmcp::model::Notification::new(params)))
            .await;
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.router.broadcast(ServerNotification::ResourceListChangedNotification(Default::default())).await;
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.router.broadcast(ServerNotification::ToolListChangedNotification(Default::default())).await;
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.router.broadcast(ServerNotification::PromptListChangedNotification(Default::default())).await;
    }

    fn get_info(&self) -> ClientConfig {
        // No sampling, elicitation or roots: a request from the child has no one client to
        // go to, so Tessera does not offer them (rmcp answers such a request with an error).
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("tessera", env!("CARGO_PKG_VERSION")))
    }
}

/// The child's `initialize` answer as each client is answered.
fn initialize_result(info: &rmcp::model::ServerPeerInfo) -> InitializeResult {
    let mut result = InitializeResult::new(info.capabilities.clone());
    result.protocol_version = info.protocol_version.clone();
    if let Some(server) = &info.server_info {
        result = result.with_server_info(server.clone());
    }
    if let Some(instructions) = &info.instructions {
        result = result.with_instructions(instructions.clone());
    }
    result
}
