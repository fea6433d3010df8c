//! Tessera's pool through PgBouncer in transaction mode, LISTEN on a direct connection
//! (issue #16). Debian's `pgbouncer` comes from `scripts/install-deps test`; without it this
//! test fails rather than skips.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::database::Database;
use tessera::server::{AppState, Application};
use tessera_store::Actor;
use tessera_testkit::{TokenSpec, fresh_db};

/// A running PgBouncer, stopped when dropped.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=` in a URL's query.
fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// PgBouncer on a loopback port in front of the test cluster at `url` (a unix socket URL),
/// pooling per transaction with at most two server connections, so clients share them.
fn start_pgbouncer(url: &str, user: &str) -> Bouncer {
    let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("pgbouncer is not installed: run `scripts/install-deps test` (Debian package `pgbouncer`)");
    let socket_dir = query_param(url, "host").expect("the test cluster is reached over a unix socket");
    let port = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).and_then(|a| a.rsplit(':').next());
    let server_port = port.expect("the test cluster's port");
    let listen_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::Builder::new().prefix("tessera-pgbouncer-").tempdir_in("/tmp").unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("userlist.txt"), format!("\"{user}\" \"\"\n")).unwrap();
    let ini = format!(
        "[databases]\n* = host={socket_dir} port={server_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
         listen_port = {listen_port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {d}/userlist.txt\n\
         pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n\
         server_reset_query = DEALLOCATE ALL\nserver_reset_query_always = 1\n\
         ignore_startup_parameters = extra_float_digits,options\nlogfile = {d}/pgbouncer.log\n\
         pidfile = {d}/pgbouncer.pid\n"
    );
    std::fs::write(dir.path().join("pgbouncer.ini"), ini).unwrap();
    let mut command = Command::new(binary);
    // PgBouncer refuses to run as root: as root, it runs as the cluster's own user.
    if nix_is_root() {
        let status = Command::new("chown").args(["-R", "postgres", &d.to_string()]).status().unwrap();
        assert!(status.success(), "chown the pgbouncer directory to postgres");
        command.args(["-u", "postgres"]);
    }
    let child = command.arg(dir.path().join("pgbouncer.ini")).spawn().expect("start pgbouncer");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", listen_port)).is_err() {
        let log = std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "pgbouncer did not start listening; its log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Bouncer { child, port: listen_port, _dir: dir }
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[tokio::test]
async fn api_mcp_revocation_and_usage_work_with_the_pool_behind_pgbouncer_in_transaction_mode() {
    let db = fresh_db().await;
    let pg_user = db.url.split("://").nth(1).unwrap().split('@').next().unwrap().to_owned();
    let bouncer = start_pgbouncer(&db.url, &pg_user);
    let database = db.url.split('?').next().unwrap().rsplit('/').next().unwrap().to_owned();
    let pooled = format!("postgres://{pg_user}@127.0.0.1:{}/{database}", bouncer.port);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let args = ["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--public-url", &base];
    let args = [&args[..], &["--database-url", &pooled, "--listen-database-url", &db.url, "serve"]].concat();
    let settings = Cli::parse_from(args).settings;
    let database = Database::open(&settings).await.unwrap();
    let state = AppState::start(&database, settings).await.unwrap();
    tokio::spawn(Application::build(state.clone(), listener).unwrap().run());

    let user = db.store.create_user("bounced@example.com", None, false, &Actor::cli()).await.unwrap();
    let spec = |scopes: &str| TokenSpec {
        rate_limit_per_hour: Some(36_000),
        ..TokenSpec::new(user.id, scopes, &base, &format!("{base}/mcp"))
    };
    let ring = state.validator.key_ring();
    let (token, record) = spec("read:tokens read:tasks execute:mcp").insert(&db.store, &ring).await;
    let (admin, _) = spec("read:tokens write:tokens").insert(&db.store, &ring).await;
    let client = reqwest::Client::new();
    let mcp = |token: String| {
        client
            .post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
            .send()
    };

    // Many clients at once on two server connections: statements of different clients meet
    // on one server connection, which named prepared statements would not survive.
    let calls = (0..40).map(|i| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            if i % 2 == 0 {
                client.get(format!("{base}/api/v2/tokens")).bearer_auth(token).send().await.unwrap()
            } else {
                let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
                crate::support::mcp_post(&client, &format!("{base}/mcp"), &token, &list).await
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for res in results {
        let status = res.status();
        assert_eq!(status, 200, "{}", res.text().await.unwrap());
    }
    let res = mcp(token.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["result"]["isError"], false, "{body}");

    let revoked = client
        .delete(format!("{base}/api/v2/tokens/{}", record.id))
        .bearer_auth(&admin)
        .json(&json!({"reason": "pgbouncer test"}))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "revoke: {}", revoked.status());
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = mcp(token.clone()).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the revoked token still answers {status} after a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    state.metering.usage.flush(&state.store).await.unwrap();
    let now = chrono::Utc::now();
    let rows = db.store.usage_rows(record.id, now - chrono::Duration::hours(2), now + chrono::Duration::hours(2));
    let ok: i64 = rows.await.unwrap().iter().filter(|r| r.outcome.as_str() == "ok").map(|r| r.count).sum();
    assert_eq!(ok, 41, "every accepted call is counted");
}
