//! The `tessera` command line, run as a real process against a real database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use tessera_testkit::fresh_db;

fn tessera(database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.env("DATABASE_URL", database_url).env("RUST_LOG", "warn").current_dir(std::env::temp_dir());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run tessera")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

fn add_user(url: &str, email: &str) {
    let out = run(tessera(url).args(["user", "add", "--email", email]));
    assert!(out.status.success(), "{}", stderr(&out));
}

fn issue(url: &str, email: &str, scopes: &str) -> Output {
    issue_with(url, email, scopes, &[])
}

/// `token issue` with `extra` arguments (`--days`, `--rate-limit`, ...).
fn issue_with(url: &str, email: &str, scopes: &str, extra: &[&str]) -> Output {
    run(tessera(url).args(["token", "issue", "--user", email, "--name", "ci", "--scopes", scopes]).args(extra))
}

fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// One clear line on stderr, no panic, no backtrace.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure, got success: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "promote", "--help"],
        vec!["user", "demote", "--help"],
        vec!["user", "list", "--help"],
        vec!["token", "issue", "--help"],
        vec!["token", "list", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["token", "rotate", "--help"],
        vec!["server", "add", "--help"],
        vec!["server", "list", "--help"],
        vec!["server", "show", "--help"],
        vec!["server", "remove", "--help"],
        vec!["server", "tool", "--help"],
        vec!["server", "approve", "--help"],
        vec!["server", "credentials", "--help"],
        vec!["server", "edit", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
    ] {
        let out = run(tessera("postgres://unused").args(&args));
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

/// `serve`'s thirty-odd options (database, bind, OAuth...) are listed under `serve --help`
/// alone; every other command's help fits a screen.
#[test]
fn only_serve_help_lists_serve_options() {
    let serve = stdout(&run(tessera("postgres://unused").args(["serve", "--help"])));
    assert!(serve.contains("--bind") && serve.contains("--oauth-access-ttl"), "{serve}");
    for args in [
        vec!["--help"],
        vec!["user", "--help"],
        vec!["user", "add", "--help"],
        vec!["token", "issue", "--help"],
        vec!["server", "--help"],
        vec!["server", "add", "--help"],
        vec!["keys", "rotate", "--help"],
    ] {
        let help = stdout(&run(tessera("postgres://unused").args(&args)));
        // `server add` is the longest: HTTP, direct, connected-account and stdio options.
        assert!(help.lines().count() <= 48, "{args:?}: {} lines\n{help}", help.lines().count());
        assert!(!help.contains("--bind") && !help.contains("--oauth"), "{args:?}: {help}");
        assert!(help.contains("--database-url"), "{args:?}: {help}");
    }
}

#[tokio::test]
async fn issued_token_is_an_eddsa_at_jwt_printed_alone_on_stdout() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = issue(&db.url, "dev@example.com", "read:tasks execute:mcp");
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1);
    let header = jwt_part(&token, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["scope"], "execute:mcp read:tasks");
    assert_eq!(claims["client_id"], "tessera");
}

#[tokio::test]
async fn jwt_secret_switches_signing_to_hs256() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = run(tessera(&db.url).env("TESSERA_JWT_SECRET", "0123456789abcdef0123456789abcdef").args([
        "token",
        "issue",
        "--user",
        "dev@example.com",
        "--name",
        "ci",
        "--scopes",
        "read:tasks",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(jwt_part(&stdout(&out), 0)["alg"], "HS256");
}

#[tokio::test]
async fn cli_can_grant_mcp_admin_to_an_administrator() {
    let db = fresh_db().await;
    let out = run(tessera(&db.url).args(["user", "add", "--email", "root@example.com", "--admin"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = issue(&db.url, "root@example.com", "mcp:admin");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(jwt_part(&stdout(&out), 1)["scope"], "mcp:admin");
}

#[tokio::test]
async fn unknown_scope_is_refused_naming_the_valid_ones() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = issue(&db.url, "dev@example.com", "read:tasks fly:away");
    assert_one_line_error(&out, "fly:away");
    assert!(stderr(&out).contains("write:context"), "names the valid scopes: {}", stderr(&out));
}

#[tokio::test]
async fn zero_days_is_refused() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = issue_with(&db.url, "dev@example.com", "read:tasks", &["--days", "0"]);
    assert_one_line_error(&out, "between 1 and 365");
}

#[tokio::test]
async fn a_rate_limit_beyond_the_maximum_is_refused_naming_the_core_bounds() {
    use tessera_core::values::{RATE_LIMIT_MAX, RATE_LIMIT_MIN};
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let beyond = (RATE_LIMIT_MAX + 1).to_string();
    let out = issue_with(&db.url, "dev@example.com", "read:tasks", &["--rate-limit", &beyond]);
    assert_one_line_error(&out, &format!("between {RATE_LIMIT_MIN} and {RATE_LIMIT_MAX}, got {beyond}"));
}

#[tokio::test]
async fn four_hundred_days_is_refused() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = issue_with(&db.url, "dev@example.com", "read:tasks", &["--days", "400"]);
    assert_one_line_error(&out, "between 1 and 365");
}

#[tokio::test]
async fn duplicate_email_is_refused() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = run(tessera(&db.url).args(["user", "add", "--email", "DEV@example.com"]));
    assert_one_line_error(&out, "already exists");
}

#[test]
fn unreachable_database_url_is_one_clear_line() {
    let out = run(tessera("postgres://nobody@127.0.0.1:1/nothing").args(["user", "list"]));
    assert_one_line_error(&out, "cannot reach the database");
}

#[tokio::test]
async fn password_from_stdin_is_stored_as_argon2id() {
    let db = fresh_db().await;
    let mut child = tessera(&db.url)
        .args(["user", "add", "--email", "pw@example.com", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse battery\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'pw@example.com'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

/// An account made without a password (as single sign-on makes them) gets one from an admin.
#[tokio::test]
async fn user_password_sets_a_password_on_an_account_that_had_none() {
    let db = fresh_db().await;
    add_user(&db.url, "sso@example.com");
    let mut child = tessera(&db.url)
        .args(["user", "password", "sso@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse battery\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, hash) = db.store.credentials("sso@example.com").await.unwrap().unwrap();
    assert!(hash.unwrap().starts_with("$argon2id$"));
}

#[tokio::test]
async fn promote_makes_an_admin_and_list_shows_it() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    assert!(run(tessera(&db.url).args(["user", "promote", "dev@example.com"])).status.success());
    let out = run(tessera(&db.url).args(["user", "list"]));
    let line = stdout(&out).lines().find(|l| l.contains("dev@example.com")).unwrap().to_owned();
    assert!(line.contains("yes"), "{line}");
}

#[tokio::test]
async fn user_limit_sets_and_clears_the_shared_rate_limit() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = run(tessera(&db.url).args(["user", "limit", "dev@example.com", "500"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let line = |out: &Output| stdout(out).lines().find(|l| l.contains("dev@example.com")).unwrap().to_owned();
    assert!(line(&run(tessera(&db.url).args(["user", "list"]))).contains(" 500 "));
    let out = run(tessera(&db.url).args(["user", "limit", "dev@example.com", "off"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!line(&run(tessera(&db.url).args(["user", "list"]))).contains(" 500 "));
    assert_one_line_error(&run(tessera(&db.url).args(["user", "limit", "dev@example.com", "0"])), "rate");
    assert_one_line_error(&run(tessera(&db.url).args(["user", "limit", "nobody@example.com", "5"])), "user");
}

#[tokio::test]
async fn revoked_token_is_listed_as_revoked() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let token = stdout(&issue(&db.url, "dev@example.com", "read:tasks"));
    let id = jwt_part(&token, 1)["jti"].as_str().unwrap().to_owned();
    let out = run(tessera(&db.url).args(["token", "revoke", &id, "--reason", "leaked"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&run(tessera(&db.url).args(["token", "list", "--status", "revoked"])));
    assert!(list.contains(&id), "{list}");
    assert!(!list.contains(&token), "list never prints secrets");
}

#[tokio::test]
async fn rotate_prints_a_new_secret_for_a_new_token() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let old = stdout(&issue(&db.url, "dev@example.com", "read:tasks"));
    let old_id = jwt_part(&old, 1)["jti"].as_str().unwrap().to_owned();
    let out = run(tessera(&db.url).args(["token", "rotate", &old_id, "--grace-seconds", "60"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let new = stdout(&out);
    assert_ne!(new, old);
    assert_ne!(jwt_part(&new, 1)["jti"].as_str().unwrap(), old_id);
}

#[tokio::test]
async fn revoking_an_unknown_token_says_so() {
    let db = fresh_db().await;
    let out = run(tessera(&db.url).args(["token", "revoke", "0190c1b2-0000-7000-8000-000000000000"]));
    assert_one_line_error(&out, "no token");
}

#[tokio::test]
async fn keys_rotate_adds_a_new_signing_key() {
    let db = fresh_db().await;
    let before = stdout(&run(tessera(&db.url).args(["keys", "list"])));
    let out = run(tessera(&db.url).args(["keys", "rotate"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let kid = stdout(&out);
    let after = stdout(&run(tessera(&db.url).args(["keys", "list"])));
    assert_eq!(before.lines().count() + 1, after.lines().count());
    let signing = after.lines().find(|l| l.contains(" yes ")).unwrap();
    assert!(signing.starts_with(&kid), "{after}");
}

#[tokio::test]
async fn a_server_registered_at_the_cli_lends_its_scopes_and_never_prints_its_credentials() {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let server = |args: &[&str]| {
        let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).arg("server").args(args));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        format!("{}{}", stdout(&out), stderr(&out))
    };
    server(&["add", "notes", "--url", "http://127.0.0.1:9/mcp", "--header", "X-Api-Key: cli-secret-91"]);
    server(&["tool", "notes", "wipe", "--access", "hidden"]);
    let shown = server(&["show", "notes"]) + &server(&["list"]);
    assert!(shown.contains("x-api-key") && shown.contains("wipe") && shown.contains("hidden"), "{shown}");
    assert!(!shown.contains("cli-secret-91"), "{shown}");
    assert!(data.path().join("secret.key").exists());

    add_user(&db.url, "dev@example.com");
    let out = issue(&db.url, "dev@example.com", "read:notes call:notes/add");
    assert!(out.status.success(), "{}", stderr(&out));
    let aud = jwt_part(&stdout(&out), 1)["aud"].clone();
    assert!(aud.as_array().unwrap().iter().any(|a| a.as_str().unwrap().ends_with("/mcp/notes")), "{aud}");

    server(&["remove", "notes"]);
    assert_one_line_error(&issue(&db.url, "dev@example.com", "read:notes"), "read:notes");
}

#[tokio::test]
async fn a_call_scope_typo_is_refused_naming_the_servers_tools() {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args([
        "server",
        "add",
        "files",
        "--url",
        "http://127.0.0.1:9/mcp",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let server = db.store.get_server("files").await.unwrap().unwrap();
    let listed = tessera_store::DiscoveredTool {
        name: "read_file".into(),
        description: None,
        read_only_hint: Some(true),
        definition: None,
    };
    db.store.record_discovered_tools(&server, &[listed], chrono::Utc::now()).await.unwrap();
    add_user(&db.url, "dev@example.com");
    let out = issue(&db.url, "dev@example.com", "call:files/reed_file");
    assert_one_line_error(&out, "call:files/reed_file");
    assert!(stderr(&out).contains("read_file"), "names the known tools: {}", stderr(&out));
    assert!(issue(&db.url, "dev@example.com", "call:files/read_file").status.success());
}

/// `server add` asks the upstream (a real rmcp server: another Tessera's `/mcp`) for its
/// tools with the server's own header, so `server show` lists them before any client did.
/// (Multi-threaded: the upstream's database pool runs on this runtime while the CLI blocks.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_add_lists_the_upstreams_tools_at_once() {
    let upstream = crate::gateway::spawn().await;
    let credential = upstream.token("read:tasks execute:mcp").await;
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let header = format!("Authorization: Bearer {credential}");
    let url = format!("{}/mcp", upstream.base);
    let out = run(tessera(&db.url)
        .env("TESSERA_DATA_DIR", data.path())
        .args(["server", "add", "up", "--url", &url, "--header", &header]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("discovered"), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(stderr(&out), "", "no warning when the upstream answered");
    let show = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args(["server", "show", "up"]));
    let shown = stdout(&show);
    let tools = shown.split("tools:").nth(1).unwrap_or_default();
    assert!(tools.contains("whoami"), "{shown}");
    assert!(!shown.contains(&credential), "the header value is never printed");
}

#[tokio::test]
async fn server_add_registers_an_unreachable_upstream_with_a_warning() {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let out = run(tessera(&db.url).env_remove("RUST_LOG").env("TESSERA_DATA_DIR", data.path()).args([
        "server",
        "add",
        "later",
        "--url",
        "http://127.0.0.1:9/mcp",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("warning: could not list later's tools"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no transport log: {err}");
    assert!(err.contains("learnt when a client first lists them"), "{err}");
    assert!(db.store.get_server("later").await.unwrap().is_some());
}

/// An empty, unmigrated database on the test server (so `migrate` has work to log).
async fn empty_db() -> String {
    let server = std::env::var(tessera_testkit::TEST_DATABASE_URL).unwrap();
    let name = format!("empty_{}", uuid::Uuid::now_v7().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server).await.unwrap();
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#)).execute(&mut admin).await.unwrap();
    tessera_testkit::with_database(&server, &name)
}

#[tokio::test]
async fn commands_log_no_info_lines_unless_verbose() {
    let quiet = empty_db().await;
    let out = run(tessera(&quiet).env_remove("RUST_LOG").arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no start-up chatter without -v");
    assert_eq!(stdout(&out), "migrations applied; schema is current");

    let verbose = empty_db().await;
    let out = run(tessera(&verbose).env_remove("RUST_LOG").args(["-v", "migrate"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("applied database migrations"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_direct_server_prints_its_credential_once_and_its_tokens_name_its_url() {
    let db = fresh_db().await;
    let out =
        run(tessera(&db.url).args(["server", "add", "notes", "--url", "https://notes.example.com/mcp", "--direct"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("client id:     tsc_") && printed.contains("client secret: tss_"), "{printed}");
    add_user(&db.url, "dev@example.com");
    let out = issue(&db.url, "dev@example.com", "read:notes");
    assert!(out.status.success(), "{}", stderr(&out));
    let aud = jwt_part(&stdout(&out), 1)["aud"].to_string();
    assert!(aud.contains("https://notes.example.com/mcp") && !aud.contains("/mcp/notes"), "{aud}");
    let out = run(tessera(&db.url).args(["server", "credentials", "notes", "--rotate", "--grace", "60"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("client secret: tss_"));
    let out = run(tessera(&db.url).args(["server", "credentials", "nope", "--rotate"]));
    assert_one_line_error(&out, "no direct server nope");
}

#[tokio::test]
async fn issuing_a_token_mixing_a_direct_servers_scopes_with_others_exits_non_zero() {
    let db = fresh_db().await;
    let out =
        run(tessera(&db.url).args(["server", "add", "notes", "--url", "https://notes.example.com/mcp", "--direct"]));
    assert!(out.status.success(), "{}", stderr(&out));
    add_user(&db.url, "dev@example.com");
    let out = run(tessera(&db.url).env("TESSERA_PUBLIC_URL", "https://tessera.example.com").args([
        "token",
        "issue",
        "--user",
        "dev@example.com",
        "--name",
        "mixed",
        "--scopes",
        "read:notes read:tokens",
    ]));
    assert_one_line_error(&out, "issue a separate token for: read:tokens");
}

#[tokio::test]
async fn editing_a_direct_server_refuses_headers_and_a_move_unless_tokens_may_be_invalidated() {
    let db = fresh_db().await;
    let out =
        run(tessera(&db.url).args(["server", "add", "notes", "--url", "https://notes.example.com/mcp", "--direct"]));
    assert!(out.status.success(), "{}", stderr(&out));
    add_user(&db.url, "dev@example.com");
    assert!(issue(&db.url, "dev@example.com", "read:notes").status.success());
    let out = run(tessera(&db.url).args(["server", "edit", "notes", "--header", "X-Key: v"]));
    assert_one_line_error(&out, "takes no upstream headers");
    let out = run(tessera(&db.url).args(["server", "edit", "notes", "--url", "https://notes2.example.com/mcp"]));
    assert_one_line_error(&out, "1 active token(s)");
    let out = run(tessera(&db.url).args([
        "server",
        "edit",
        "notes",
        "--url",
        "https://notes2.example.com/mcp",
        "--invalidate-tokens",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 token(s) in force name the old URL"), "{}", stdout(&out));
}

fn team(url: &str, args: &[&str]) -> Output {
    run(tessera(url).arg("team").args(args))
}

/// `token issue` with the public URL set, so a refusal is the only line on stderr.
fn issue_for(url: &str, email: &str, scopes: &str) -> Output {
    run(tessera(url)
        .env("TESSERA_PUBLIC_URL", "http://127.0.0.1:8080")
        .args(["token", "issue", "--user", email, "--name", "ci", "--scopes", scopes]))
}

#[tokio::test]
async fn a_teams_allowance_bounds_what_its_members_may_be_issued() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = team(&db.url, &["add", "devs", "--allow", "read:tasks execute:mcp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(team(&db.url, &["member", "add", "devs", "dev@example.com"]).status.success());
    let refused = issue_for(&db.url, "dev@example.com", "read:tasks write:tasks");
    assert_one_line_error(&refused, "write:tasks");
    assert!(stderr(&refused).contains("allow"), "{}", stderr(&refused));
    assert!(issue_for(&db.url, "dev@example.com", "read:tasks execute:mcp").status.success());
}

#[tokio::test]
async fn narrowing_everyone_takes_scopes_out_of_tokens_at_once_but_not_out_of_admins() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let out = run(tessera(&db.url).args(["user", "add", "--email", "root@example.com", "--admin"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(issue_for(&db.url, "dev@example.com", "read:tasks write:tasks read:agents").status.success());
    assert!(issue_for(&db.url, "root@example.com", "write:tasks").status.success());
    let out = team(&db.url, &["allow", "everyone", "read:tasks read:agents"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 token(s) narrowed"), "{}", stdout(&out));
    let dev = db.store.user_by_email("dev@example.com").await.unwrap().unwrap();
    let ids = db.store.active_token_ids(dev.id, chrono::Utc::now()).await.unwrap();
    let token = db.store.get_token(ids[0]).await.unwrap().unwrap();
    assert_eq!(token.scopes, ["read:agents", "read:tasks"], "still active, with fewer scopes");
    let root = db.store.user_by_email("root@example.com").await.unwrap().unwrap();
    let ids = db.store.active_token_ids(root.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(db.store.get_token(ids[0]).await.unwrap().unwrap().scopes, ["write:tasks"]);
    assert_one_line_error(&issue_for(&db.url, "dev@example.com", "write:tasks"), "write:tasks");
}

#[tokio::test]
async fn teams_are_listed_with_everyone_which_cannot_be_removed_or_hold_admin() {
    let db = fresh_db().await;
    assert!(team(&db.url, &["add", "ops", "--allow", "write:tasks"]).status.success());
    let listed = stdout(&team(&db.url, &["list"]));
    assert!(listed.contains("everyone") && listed.contains("every scope"), "{listed}");
    assert!(listed.contains("ops") && listed.contains("write:tasks"), "{listed}");
    assert_one_line_error(&team(&db.url, &["remove", "everyone"]), "everyone");
    assert_one_line_error(&team(&db.url, &["add", "ops", "--allow", "read:tasks"]), "already exists");
    assert_one_line_error(&team(&db.url, &["add", "root", "--allow", "mcp:admin"]), "mcp:admin");
    assert_one_line_error(&team(&db.url, &["add", "typo", "--allow", "read:taks"]), "read:taks");
    assert_one_line_error(&team(&db.url, &["member", "add", "ops", "nobody@example.com"]), "nobody@example.com");
}

#[tokio::test]
async fn user_disable_revokes_every_token_and_enable_brings_none_back() {
    let db = fresh_db().await;
    add_user(&db.url, "leaver@example.com");
    assert!(issue_for(&db.url, "leaver@example.com", "read:tasks").status.success());
    let out = run(tessera(&db.url).args(["user", "disable", "leaver@example.com"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let user = db.store.user_by_email("leaver@example.com").await.unwrap().unwrap();
    assert!(user.disabled_at.is_some());
    assert!(db.store.active_token_ids(user.id, chrono::Utc::now()).await.unwrap().is_empty());
    let out = run(tessera(&db.url).args(["user", "enable", "leaver@example.com"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let user = db.store.user_by_email("leaver@example.com").await.unwrap().unwrap();
    assert!(user.disabled_at.is_none());
    assert!(db.store.active_token_ids(user.id, chrono::Utc::now()).await.unwrap().is_empty());
    assert_one_line_error(&run(tessera(&db.url).args(["user", "disable", "nobody@example.com"])), "user");
}

/// `server add --user-auth header`: each user brings their own credential; no discovery is
/// tried (the server would refuse a call without one) and `server show` says how many connected.
#[tokio::test]
async fn server_add_with_user_auth_registers_a_server_whose_users_connect_their_own() {
    let db = fresh_db().await;
    let data = tempfile::tempdir().unwrap();
    let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args([
        "server",
        "add",
        "gh",
        "--url",
        "http://127.0.0.1:9/mcp",
        "--user-auth",
        "header",
        "--user-header",
        "Authorization",
        "--user-header-prefix",
        "Bearer ",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("each user connects their own authorization at"), "{}", stdout(&out));
    assert!(stdout(&out).contains("/#/connections/gh"), "{}", stdout(&out));
    assert_eq!(stderr(&out), "", "no discovery warning");
    let show = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args(["server", "show", "gh"]));
    assert!(stdout(&show).contains("user auth:   each user's own authorization (0 connected)"), "{}", stdout(&show));

    let refused = run(tessera(&db.url).args([
        "server",
        "add",
        "bad",
        "--url",
        "http://127.0.0.1:9/mcp",
        "--user-auth",
        "header",
    ]));
    assert!(!refused.status.success(), "--user-auth needs --user-header");
}

#[tokio::test]
async fn a_non_administrator_is_refused_mcp_admin_and_scim_naming_them() {
    let db = fresh_db().await;
    add_user(&db.url, "dev@example.com");
    let refused = issue_for(&db.url, "dev@example.com", "read:tasks scim");
    assert_one_line_error(&refused, "scim");
    let refused = issue_for(&db.url, "dev@example.com", "mcp:admin");
    assert_one_line_error(&refused, "mcp:admin");
    assert!(stderr(&refused).contains("administrators only"), "{}", stderr(&refused));
}

#[tokio::test]
async fn demoting_an_administrator_takes_mcp_admin_and_scim_out_of_their_tokens_at_once() {
    let db = fresh_db().await;
    let out = run(tessera(&db.url).args(["user", "add", "--email", "root@example.com", "--admin"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(issue_for(&db.url, "root@example.com", "scim read:tasks").status.success());
    assert!(issue_for(&db.url, "root@example.com", "mcp:admin").status.success());
    let out = run(tessera(&db.url).args(["user", "demote", "root@example.com"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let root = db.store.user_by_email("root@example.com").await.unwrap().unwrap();
    assert!(!root.is_admin);
    let ids = db.store.active_token_ids(root.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(ids.len(), 1, "the mcp:admin-only token is revoked");
    assert_eq!(db.store.get_token(ids[0]).await.unwrap().unwrap().scopes, ["read:tasks"]);
    assert_one_line_error(&issue_for(&db.url, "root@example.com", "scim"), "scim");
}

/// `server approve` prints what changed (a line diff of the pinned and the served definition)
/// and pins the served one.
#[tokio::test]
async fn server_approve_prints_each_diff_and_pins_the_served_definition() {
    use tessera_store::{DiscoveredTool, ServedDefinition};
    let db = fresh_db().await;
    let server = tessera_testkit::insert_server(&db.store, "notes").await;
    let listing = |description: &str| {
        let tool = serde_json::json!({"name": "search", "description": description, "inputSchema": {"type": "object"}});
        let definition = Some(ServedDefinition::of(&tool));
        vec![DiscoveredTool {
            name: "search".into(),
            description: Some(description.into()),
            read_only_hint: None,
            definition,
        }]
    };
    let now = chrono::Utc::now();
    db.store.record_discovered_tools(&server, &listing("Searches the notes."), now).await.unwrap();
    let held =
        db.store.record_discovered_tools(&server, &listing("Searches, then mails them out."), now).await.unwrap();
    assert_eq!(held.len(), 1);
    let data = tempfile::tempdir().unwrap();
    let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args(["server", "show", "notes"]));
    assert!(stdout(&out).contains("(held: changed)"), "{}", stdout(&out));
    let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args(["server", "approve", "notes"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("approved notes/search"), "{printed}");
    assert!(printed.contains("-   \"description\": \"Searches the notes.\","), "{printed}");
    assert!(printed.contains("+   \"description\": \"Searches, then mails them out.\","), "{printed}");
    let tools = db.store.server_tools(server.id).await.unwrap();
    assert_eq!(tools[0].hold, None);
    assert_eq!(tools[0].pinned_definition.as_ref().unwrap()["description"], "Searches, then mails them out.");
    let out = run(tessera(&db.url).env("TESSERA_DATA_DIR", data.path()).args(["server", "approve", "notes", "search"]));
    assert_one_line_error(&out, "not held");
}
