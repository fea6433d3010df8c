//! A real `tessera serve` process: what it writes to stderr (quiet by default, one line per
//! request only when asked, never a query string) and what it records for the CLI; and two
//! of them on one database sharing a token's rate limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tessera_testkit::fresh_db;

/// Issuer shared by the server and the CLI that mints the test token.
const PUBLIC_URL: &str = "http://127.0.0.1";

fn tessera(database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("DATABASE_URL", database_url)
        .env("TESSERA_PUBLIC_URL", PUBLIC_URL)
        .env("TESSERA_BIND", "127.0.0.1:0")
        .current_dir(std::env::temp_dir());
    cmd
}

/// A user and a token for the MCP endpoint, minted through the CLI.
fn mint(url: &str) -> String {
    let out = tessera(url).args(["user", "add", "--email", "logs@example.com"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tessera(url)
        .args(["token", "issue", "--user", "logs@example.com", "--name", "logs", "--scopes", "read:tasks execute:mcp"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The line without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `tessera serve` whose stderr lines arrive on `lines`.
struct Server {
    child: Child,
    port: u16,
    lines: Receiver<String>,
}

/// Starts `tessera serve` (default pretty logs) and waits for its "listening" line.
fn serve(mut cmd: Command) -> Server {
    let mut child = cmd.arg("serve").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(strip_ansi(&line));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("tessera serve did not start");
        if line.contains("tessera listening") {
            let port = line.split_whitespace().find_map(|w| w.strip_prefix("port=")).unwrap();
            break port.trim_matches(|c: char| !c.is_ascii_digit()).parse().unwrap();
        }
    };
    Server { child, port, lines }
}

impl Server {
    /// Stops the server and returns every line it wrote after "listening".
    fn stop(self) -> Vec<String> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let mut child = self.child;
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "tessera did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.lines.try_iter().collect()
    }
}

/// Sends `n` authenticated `tools/list` calls over 4 keep-alive connections (`query` appended
/// to the URL) and checks every one succeeded.
async fn mcp_calls(port: u16, token: &str, n: usize, query: &str) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/mcp{query}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let lanes = (0..4).map(|lane| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            for _ in (lane..n).step_by(4) {
                let res = crate::support::mcp_post(&client, &url, token, &body).await;
                assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
            }
        }
    });
    futures_util::future::join_all(lanes).await;
}

#[tokio::test]
async fn a_thousand_mcp_requests_with_default_settings_write_fewer_than_twenty_log_lines() {
    let db = fresh_db().await;
    let token = mint(&db.url);
    let server = serve(tessera(&db.url));
    mcp_calls(server.port, &token, 1000, "").await;
    let lines = server.stop();
    assert!(lines.len() < 20, "{} lines after start-up:\n{}", lines.len(), lines.join("\n"));
}

#[tokio::test]
async fn access_log_writes_one_line_per_request_without_the_query_string() {
    let db = fresh_db().await;
    let token = mint(&db.url);
    let mut cmd = tessera(&db.url);
    cmd.env("TESSERA_ACCESS_LOG", "1");
    let server = serve(cmd);
    mcp_calls(server.port, &token, 10, "?secret-query=hunter2").await;
    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://127.0.0.1:{}/api/v2/tokens?q=private-search&cursor=zzz", server.port))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let lines = server.stop();
    let access: Vec<&String> = lines.iter().filter(|l| l.contains("tessera::access")).collect();
    assert_eq!(access.len(), 11, "{}", lines.join("\n"));
    assert!(access.iter().all(|l| l.contains("status=")), "{}", lines.join("\n"));
    assert!(access.iter().any(|l| l.contains("path=/api/v2/tokens")), "{}", lines.join("\n"));
    for secret in ["hunter2", "secret-query", "private-search", "cursor=", token.as_str()] {
        assert!(!lines.iter().any(|l| l.contains(secret)), "`{secret}` in the logs:\n{}", lines.join("\n"));
    }
}

#[tokio::test]
async fn serve_records_its_public_url_and_the_cli_issuer_follows_it() {
    use clap::Parser;
    use tessera::cli::Cli;
    use tessera::database::Database;

    let db = fresh_db().await;
    let settings = |extra: &[&str]| {
        let mut args = vec!["tessera", "--database-url", db.url.as_str()];
        args.extend_from_slice(extra);
        args.push("migrate");
        Cli::parse_from(args).settings
    };
    let plain = settings(&[]);
    let opened = Database::open(&plain).await.unwrap();
    // Nothing recorded yet: the bind address, with a warning.
    assert_eq!(opened.issuer(&plain).await.unwrap(), "http://127.0.0.1:8080");

    let mut cmd = tessera(&db.url);
    cmd.env("TESSERA_PUBLIC_URL", "https://mcp.example.test/");
    let server = serve(cmd);
    assert_eq!(opened.issuer(&plain).await.unwrap(), "https://mcp.example.test");
    // An explicit public URL wins over the recorded one.
    let explicit = settings(&["--public-url", "https://other.example.test"]);
    assert_eq!(opened.issuer(&explicit).await.unwrap(), "https://other.example.test");
    // And `token issue` without TESSERA_PUBLIC_URL mints for the server's recorded URL.
    let mut add = tessera(&db.url);
    add.env_remove("TESSERA_PUBLIC_URL").args(["user", "add", "--email", "iss@example.com"]);
    assert!(add.output().unwrap().status.success());
    let mut issue = tessera(&db.url);
    issue.env_remove("TESSERA_PUBLIC_URL").args([
        "token",
        "issue",
        "--user",
        "iss@example.com",
        "--name",
        "iss",
        "--scopes",
        "read:tasks",
    ]);
    let out = issue.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let payload = token.trim().split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://mcp.example.test");
    assert_eq!(claims["aud"], "https://mcp.example.test/mcp");
    server.stop();
    opened.close().await;
}

#[tokio::test]
async fn two_serve_processes_on_one_database_share_a_tokens_rate_limit() {
    let db = fresh_db().await;
    let out = tessera(&db.url).args(["user", "add", "--email", "limited@example.com"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 6000/h: a burst of 100, then one every 0.6 s; each process alone would grant its own burst.
    let out = tessera(&db.url)
        .args(["token", "issue", "--user", "limited@example.com", "--name", "limited"])
        .args(["--scopes", "read:tasks execute:mcp", "--rate-limit", "6000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (a, b) = (serve(tessera(&db.url)), serve(tessera(&db.url)));
    let bases = [a.port, b.port].map(|port| format!("http://127.0.0.1:{port}"));
    let (accepted, bound) = crate::scale::alternate(&bases, &token, 300, 6000).await;
    a.stop();
    b.stop();
    eprintln!("two processes accepted {accepted} of 300 (bound {bound:.0})");
    assert!(f64::from(accepted) <= bound, "accepted {accepted}, at most {bound:.0} allowed");
    assert!(accepted >= 80, "accepted only {accepted} of a burst of 100");
}
