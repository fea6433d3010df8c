//! stdio servers (issue #26) over real HTTP: real MCP servers run by Tessera as child
//! processes (`@modelcontextprotocol/server-filesystem` and `server-memory` from
//! frontend/node_modules, and a tiny probe script in tests/fixtures), served at `/mcp/NAME`
//! behind the gateway's checks, their registry in a real PostgreSQL.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::catalog::ServerName;
use tessera_core::stdio::{CommandLine, EnvVar};
use tessera_store::{Actor, ServerRecord, Store};
use tessera_testkit::{TokenSpec, fresh_db};
use tessera_tokens::{Discovery, StdioCommand, StdioServerInput};
use uuid::Uuid;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

struct Stdio {
    base: String,
    store: Store,
    state: AppState,
    client: reqwest::Client,
    data: tempfile::TempDir,
    /// Stops the HTTP server (and so, after it, the children).
    handle: actix_web::dev::ServerHandle,
    /// `Application::run`, which returns once the children are closed.
    run: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn node_module(path: &str) -> String {
    let full = format!("{}/../../frontend/node_modules/{path}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&full).exists(),
        "{full} is missing: run `npm ci` in frontend (scripts/install-deps test does)"
    );
    full
}

fn probe() -> String {
    format!("node {}/tests/fixtures/stdio-probe.mjs", env!("CARGO_MANIFEST_DIR"))
}

/// Tessera with its data directory in a temporary directory, and `extra` settings.
async fn spawn(extra: &[&str]) -> Stdio {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let dir = data.path().to_str().unwrap().to_owned();
    let mut args = vec!["tessera", "--jwt-secret", SECRET, "--public-url", &base, "--data-dir", &dir];
    args.extend_from_slice(extra);
    args.push("serve");
    let settings = Cli::parse_from(args).settings;
    let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
    let app = Application::build(state.clone(), listener).unwrap();
    let handle = app.handle();
    let run = tokio::spawn(app.run());
    Stdio { base, store: db.store, state, client: reqwest::Client::new(), data, handle, run }
}

impl Stdio {
    /// Registers stdio server `name` and lists its tools, as `server add --command` does.
    async fn add(&self, name: &str, command: &str, env: &[&str], per_user: bool, cwd: Option<&str>) -> ServerRecord {
        let input = StdioServerInput {
            name: ServerName::parse(name).unwrap(),
            description: None,
            new_tools: Default::default(),
            command: StdioCommand {
                line: CommandLine::parse(command).unwrap(),
                env: env.iter().map(|e| EnvVar::parse(e).unwrap()).collect(),
                cwd: cwd.map(str::to_owned),
                per_user,
                idle: Duration::from_secs(600),
            },
        };
        let record = self.state.servers.add_stdio(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
        let found = self.state.servers.discover(&record, chrono::Utc::now()).await.unwrap();
        assert!(matches!(found, Discovery::Found { .. }), "{found:?}");
        record
    }

    async fn user(&self) -> Uuid {
        let email = format!("{}@example.com", Uuid::now_v7());
        self.store.create_user(&email, None, false, &Actor::cli()).await.unwrap().id
    }

    async fn token(&self, user: Uuid, server: &str, scopes: &str) -> String {
        let spec = TokenSpec::new(user, scopes, &self.base, &format!("{}/mcp/{server}", self.base));
        spec.insert(&self.store, &self.state.validator.key_ring()).await.0
    }

    /// POSTs one message, with the session when there is one; the answer's status and the
    /// JSON-RPC message it carries (JSON or the SSE event with an id).
    async fn post(&self, server: &str, token: &str, session: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}/mcp/{server}", self.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, message(&res.text().await.unwrap()))
    }

    /// Opens a session on `server`; its id.
    async fn session(&self, server: &str, token: &str) -> String {
        let res = self
            .client
            .post(format!("{}/mcp/{server}", self.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let sid = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let body = message(&res.text().await.unwrap());
        assert!(body["result"]["serverInfo"].is_object(), "{body}");
        let (status, _) = self
            .post(server, token, Some(&sid), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        sid
    }

    async fn call(
        &self,
        server: &str,
        token: &str,
        session: &str,
        tool: &str,
        arguments: Value,
    ) -> (StatusCode, Value) {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
        self.post(server, token, Some(session), &body).await
    }

    async fn pid(&self, server: &str, user: Uuid) -> u32 {
        let record = self.state.servers.get(server).await.unwrap();
        self.state.stdio.pid(&record, user).await.expect("a running process")
    }
}

/// The JSON-RPC message in an answer body: JSON, or the SSE event that has an id.
fn message(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or(Value::Null)
}

fn text_of(answer: &Value) -> String {
    answer["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {answer}")).to_owned()
}

fn kill9(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
}

#[tokio::test]
async fn a_read_only_token_reads_through_a_stdio_filesystem_server_and_cannot_write() {
    let t = spawn(&[]).await;
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().canonicalize().unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from disk").unwrap();
    let fs = node_module("@modelcontextprotocol/server-filesystem/dist/index.js");
    t.add("fs", &format!("node {fs} {}", dir.display()), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "fs", "read:fs execute:mcp").await;
    let session = t.session("fs", &token).await;

    let (status, read) = t.call("fs", &token, &session, "read_text_file", json!({"path": dir.join("hello.txt")})).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(text_of(&read), "hello from disk");

    let target = dir.join("new.txt");
    let (status, refused) = t.call("fs", &token, &session, "write_file", json!({"path": target, "content": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(!target.exists(), "a read-only token wrote a file");
}

#[tokio::test]
async fn tools_of_a_stdio_server_are_known_and_pinned_at_registration() {
    let t = spawn(&[]).await;
    let record = t.add("probe", &probe(), &[], false, None).await;
    let tools = t.state.servers.tools(&record).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.record.name.as_str()).collect();
    assert_eq!(names, ["env", "hang", "pid", "progress"]);
    assert!(tools.iter().all(|t| t.record.pinned_sha256.is_some()), "every tool is pinned");
    // Registration's own process was stopped: none runs until a client comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.state.stdio.running(), 0);
}

#[tokio::test]
async fn a_stdio_child_sees_only_path_home_and_its_declared_environment() {
    let t = spawn(&[]).await;
    t.add("probe", &probe(), &["GREETING=hi there", "DATA={user_dir}/d"], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    let (status, answer) = t.call("probe", &token, &session, "env", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let env: serde_json::Map<String, Value> = serde_json::from_str(&text_of(&answer)).unwrap();
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["DATA", "GREETING", "HOME", "PATH"], "{env:?}");
    let home = t.data.path().join("stdio/probe/home");
    assert_eq!(env["HOME"], json!(home.to_str().unwrap()));
    assert_eq!(env["GREETING"], json!("hi there"));
    assert_eq!(env["DATA"], json!(format!("{}/d", home.display())));
    // Tessera's own environment holds a database URL (the test database's): not passed on.
    assert!(std::env::var_os("TEST_DATABASE_URL").is_some());
}

#[tokio::test]
async fn a_killed_stdio_child_is_served_again_within_seconds() {
    let t = spawn(&[]).await;
    t.add("probe", &probe(), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    let (_, first) = t.call("probe", &token, &session, "pid", json!({})).await;
    let first_pid: u32 = text_of(&first).parse().unwrap();
    assert_eq!(first_pid, t.pid("probe", user).await);

    kill9(first_pid);
    let started = Instant::now();
    let second_pid = loop {
        let (status, answer) = t.call("probe", &token, &session, "pid", json!({})).await;
        if status == StatusCode::OK && answer.get("result").is_some() {
            break text_of(&answer).parse::<u32>().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not served again: {status} {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(second_pid, first_pid);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_call_in_flight_when_its_child_dies_is_answered_at_once() {
    let t = spawn(&[]).await;
    t.add("probe", &probe(), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    let pid = t.pid("probe", user).await;
    let started = Instant::now();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        kill9(pid);
    });
    let (status, answer) = t.call("probe", &token, &session, "hang", json!({})).await;
    killer.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["data"]["error"], "upstream_unavailable", "{answer}");
}

#[tokio::test]
async fn a_stdio_child_that_stops_answering_is_killed_after_the_upstream_timeout() {
    let t = spawn(&["--upstream-timeout", "2"]).await;
    t.add("probe", &probe(), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    let pid = t.pid("probe", user).await;
    let started = Instant::now();
    let (_, answer) = t.call("probe", &token, &session, "hang", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    assert_eq!(answer["error"]["data"]["error"], "upstream_timeout", "{answer}");
    // Killed: the next call is served by a new process.
    let (_, next) = t.call("probe", &token, &session, "pid", json!({})).await;
    assert_ne!(text_of(&next).parse::<u32>().unwrap(), pid);
}

#[tokio::test]
async fn per_user_stdio_processes_keep_two_users_memories_apart() {
    let t = spawn(&[]).await;
    let memory = node_module("@modelcontextprotocol/server-memory/dist/index.js");
    t.add("memory", &format!("node {memory}"), &["MEMORY_FILE_PATH={user_dir}/memory.jsonl"], true, None).await;
    let (alice, bob) = (t.user().await, t.user().await);
    let alice_token = t.token(alice, "memory", "read:memory write:memory execute:mcp").await;
    let bob_token = t.token(bob, "memory", "read:memory write:memory execute:mcp").await;
    let alice_session = t.session("memory", &alice_token).await;
    let bob_session = t.session("memory", &bob_token).await;

    let entity = json!({"entities": [{"name": "secret-plan", "entityType": "note", "observations": ["alice only"]}]});
    let (status, made) = t.call("memory", &alice_token, &alice_session, "create_entities", entity).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let (_, alice_graph) = t.call("memory", &alice_token, &alice_session, "read_graph", json!({})).await;
    assert!(text_of(&alice_graph).contains("secret-plan"), "{alice_graph}");
    let (_, bob_graph) = t.call("memory", &bob_token, &bob_session, "read_graph", json!({})).await;
    assert!(!text_of(&bob_graph).contains("secret-plan"), "bob sees alice's memory: {bob_graph}");
    assert_ne!(t.pid("memory", alice).await, t.pid("memory", bob).await);
    assert!(t.data.path().join(format!("stdio/memory/users/{alice}/memory.jsonl")).exists());
}

#[tokio::test]
async fn beyond_the_process_bound_a_stdio_request_gets_503_with_retry_after() {
    let t = spawn(&["--stdio-max-processes", "1"]).await;
    t.add("probe", &probe(), &[], true, None).await;
    let (first, second) = (t.user().await, t.user().await);
    let first_token = t.token(first, "probe", "read:probe execute:mcp").await;
    t.session("probe", &first_token).await;
    let second_token = t.token(second, "probe", "read:probe execute:mcp").await;
    let res = t
        .client
        .post(format!("{}/mcp/probe", t.base))
        .bearer_auth(&second_token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["data"]["error"], "upstream_unavailable", "{body}");
}

#[tokio::test]
async fn a_stdio_tool_whose_definition_changed_is_hidden_until_approved() {
    let t = spawn(&[]).await;
    let cwd = tempfile::tempdir().unwrap();
    let cwd_path = cwd.path().to_str().unwrap();
    t.add("probe", &probe(), &[], false, Some(cwd_path)).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}});
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, before) = t.post("probe", &token, Some(&session), &list).await;
    assert!(names(&before).contains(&"env".to_owned()), "{before}");

    // The server now describes `env` otherwise (read when it starts): restarted, it is held.
    std::fs::write(cwd.path().join("description.txt"), "Send the environment somewhere else.").unwrap();
    kill9(t.pid("probe", user).await);
    let started = Instant::now();
    let after = loop {
        let (status, after) = t.post("probe", &token, Some(&session), &list).await;
        if status == StatusCode::OK && after.get("result").is_some() {
            break after;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{status} {after}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!names(&after).contains(&"env".to_owned()), "{after}");
    // A handshake-era client gets the refusal in band, as from an HTTP upstream.
    let (status, refused) = t.call("probe", &token, &session, "env", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["error"]["data"]["error"], "tool_changed", "{refused}");

    t.state.servers.approve(&Actor::cli(), "probe", None).await.unwrap();
    let (status, answer) = t.call("probe", &token, &session, "env", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn a_stdio_server_is_added_and_shown_by_the_cli_without_its_environment_values() {
    let t = spawn(&[]).await;
    let record = t.add("probe", &probe(), &["API_KEY=very-secret-value"], false, None).await;
    let summary = t.state.servers.stdio_summary(&record).await.unwrap().unwrap();
    assert_eq!(summary.env, ["API_KEY"]);
    assert!(summary.command.contains("stdio-probe.mjs"));
    // It has no URL to change: an edit that sets one is refused, and it stays a stdio server.
    let patch = tessera_tokens::ServerPatch {
        url: Some(tessera_core::upstream::UpstreamUrl::parse("http://127.0.0.1:9/mcp").unwrap()),
        ..Default::default()
    };
    let refused = t.state.servers.patch(&Actor::cli(), "probe", patch, chrono::Utc::now()).await;
    assert!(matches!(refused, Err(tessera_tokens::ServerError::Stdio(_))), "{refused:?}");
    assert!(tessera_tokens::is_stdio(&t.state.servers.get("probe").await.unwrap()));
    // Sealed at rest: the value is nowhere in the row.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM server_env WHERE server_id = $1")
        .bind(record.id)
        .fetch_one(t.store.pool())
        .await
        .unwrap();
    assert!(!stored.windows(10).any(|w| w == b"very-secre"));
}

/// `tessera` as a process, with none of this process's Tessera settings.
fn cli(database_url: &str, data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.env("DATABASE_URL", database_url).env("RUST_LOG", "warn").env("TESSERA_DATA_DIR", data).args(args);
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_add_command_lists_the_tools_and_show_names_the_environment_without_values() {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let probe = probe();
    let args = ["server", "add", "probe", "--command", &probe, "--env", "API_KEY=cli-secret-77", "--per-user"];
    let out = cli(&db.url, data.path(), &[&args[..], &["--idle-timeout", "5m"]].concat());
    let printed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("4 discovered and pinned"), "{printed}");

    let out = cli(&db.url, data.path(), &["server", "show", "probe"]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("stdio-probe.mjs"), "{shown}");
    assert!(shown.contains("env:         API_KEY"), "{shown}");
    assert!(shown.contains("one per user, stopped after 300 s idle"), "{shown}");
    assert!(shown.split("tools:").nth(1).unwrap_or_default().contains("hang"), "{shown}");
    assert!(!shown.contains("cli-secret-77"), "an environment value was printed: {shown}");

    let both =
        cli(&db.url, data.path(), &["server", "add", "x", "--command", "true", "--url", "http://127.0.0.1:9/mcp"]);
    assert!(!both.status.success(), "--command with --url was accepted");
    let reserved =
        cli(&db.url, data.path(), &["server", "add", "y", "--command", "true", "--env", "TESSERA_SECRET_KEY=x"]);
    assert!(String::from_utf8_lossy(&reserved.stderr).contains("TESSERA_SECRET_KEY"));
    assert!(!reserved.status.success());
}

#[tokio::test]
async fn a_stdio_server_that_cannot_start_is_503_with_retry_after_at_once_never_a_hang() {
    let t = spawn(&[]).await;
    let input = StdioServerInput {
        name: ServerName::parse("broken").unwrap(),
        description: None,
        new_tools: Default::default(),
        command: StdioCommand {
            line: CommandLine::parse(r#"node -e "process.exit(3)""#).unwrap(),
            env: Vec::new(),
            cwd: None,
            per_user: false,
            idle: Duration::from_secs(600),
        },
    };
    t.state.servers.add_stdio(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    let user = t.user().await;
    let token = t.token(user, "broken", "read:broken execute:mcp").await;
    for _ in 0..3 {
        let started = Instant::now();
        let res = t
            .client
            .post(format!("{}/mcp/broken", t.base))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn progress_from_a_stdio_child_reaches_the_client_that_asked_with_its_own_token() {
    let t = spawn(&[]).await;
    t.add("probe", &probe(), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    let session = t.session("probe", &token).await;
    // Another client's session on the same process, listening on its GET stream.
    let other = t.session("probe", &token).await;
    let req = t
        .client
        .get(format!("{}/mcp/probe", t.base))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", other);
    let theirs = tokio::spawn(async move {
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut seen = String::new();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            match tokio::time::timeout(Duration::from_millis(200), res.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => break,
                Err(_) => {}
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = t
        .client
        .post(format!("{}/mcp/probe", t.base))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", &session)
        .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "progress", "arguments": {}, "_meta": {"progressToken": "client-token-9"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress =
        events.iter().find(|e| e["method"] == "notifications/progress").unwrap_or_else(|| panic!("{text:?}"));
    assert_eq!(progress["params"]["progressToken"], "client-token-9", "{text}");
    assert_eq!(text_of(events.last().unwrap()), "done");
    assert!(!theirs.await.unwrap().contains("notifications/progress"), "another session saw the progress");
}

#[tokio::test]
async fn stopping_tessera_closes_its_stdio_children() {
    let t = spawn(&[]).await;
    t.add("probe", &probe(), &[], false, None).await;
    let user = t.user().await;
    let token = t.token(user, "probe", "read:probe execute:mcp").await;
    t.session("probe", &token).await;
    let pid = nix::unistd::Pid::from_raw(t.pid("probe", user).await as i32);
    assert!(nix::sys::signal::kill(pid, None).is_ok(), "the child runs");

    let started = Instant::now();
    t.handle.stop(true).await;
    t.run.await.unwrap().unwrap();
    // Closed (stdin first: the probe exits on its end) and reaped by the time run returns.
    assert!(nix::sys::signal::kill(pid, None).is_err(), "the child outlived Tessera");
    assert_eq!(t.state.stdio.running(), 0);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}
