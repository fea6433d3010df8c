//! Test support: a fresh, migrated database per test.
//!
//! The server comes from `TEST_DATABASE_URL` (any PostgreSQL you point it at, or the one
//! `with-test-db` starts for the whole run). Each test gets its own database cloned from a
//! migrated template (`CREATE DATABASE … TEMPLATE …`), which is much faster than migrating.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[cfg(feature = "app")]
pub mod app;
mod tokens;

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tessera_store::{Store, StoreConfig};

#[cfg(feature = "app")]
pub use app::{SpawnedApp, Tweaks, spawn_app, spawn_app_on, spawn_app_with};
pub use tokens::{TokenSpec, insert_server, key_ring, token_service};

/// Set in the child process of [`assert_passes_beside_a_silent_proxy`].
pub const PROXY_CHILD: &str = "TESSERA_TEST_PROXY_CHILD";

/// Runs the test `test` (its path as libtest names it) again in a child process of this test
/// binary, with [`PROXY_CHILD`] set and every proxy variable pointing at a listener nobody
/// answers on, and asserts that the child passed and never connected to that listener: an
/// HTTP client that must reach the address it checked (webhooks, CIMD) ignores the
/// environment's proxies. A child process because reqwest reads them once per process.
pub fn assert_passes_beside_a_silent_proxy(test: &str) {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("proxy address"));
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
    child.args([test, "--exact", "--nocapture"]).env(PROXY_CHILD, "1");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        child.env(var, &proxy_url);
    }
    let out = child.env_remove("NO_PROXY").env_remove("no_proxy").output().expect("run the child");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("1 passed"), "{printed}");
    proxy.set_nonblocking(true).expect("nonblocking");
    assert!(proxy.accept().is_err(), "the request went through the proxy");
}

/// Environment variable naming the server tests run against.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// A database that belongs to one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Connection URL of this test's database.
    pub url: String,
    /// A store connected to it.
    pub store: Store,
}

/// Creates a fresh database for one test, migrated to the newest schema.
pub async fn fresh_db() -> TestDb {
    let server = std::env::var(TEST_DATABASE_URL).unwrap_or_else(|_| {
        panic!(
            "{TEST_DATABASE_URL} is not set: run the suite with `scripts/test`, or \
             `cargo run -p tessera-testkit --bin with-test-db -- cargo nextest run`, or point \
             {TEST_DATABASE_URL} at a PostgreSQL server you own"
        )
    });
    let template = ensure_template(&server).await;
    // The creating process's id is in the name, so `with-test-db` can drop the database once
    // that process (one test, under nextest) has ended: see [`drop_finished_databases`].
    let name = format!("{TEST_DB_PREFIX}{}_{}", std::process::id(), uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server).await.expect("connect to the test server");
    let mut attempt = 0;
    loop {
        let created =
            sqlx::query(&format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#)).execute(&mut admin).await;
        match created {
            Ok(_) => break,
            // Another test may be cloning the same template this instant.
            Err(e) if attempt < 50 && e.to_string().contains("is being accessed by other users") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
    admin.close().await.ok();
    let url = with_database(&server, &name);
    let store = Store::connect(&url, &StoreConfig { max_connections: 8, ..StoreConfig::default() })
        .await
        .expect("connect to the test database");
    TestDb { url, store }
}

/// How every per-test database's name begins: `t_<pid>_<uuid>`.
const TEST_DB_PREFIX: &str = "t_";

/// Drops the per-test databases whose creating process has ended (it is not in `/proc`), so
/// a long run's databases do not pile up on disk; returns how many were dropped. Only for a
/// server on this machine (`with-test-db`'s own), where those process ids mean something.
pub async fn drop_finished_databases(server: &str) -> Result<usize, sqlx::Error> {
    let mut admin = PgConnection::connect(server).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'").fetch_all(&mut admin).await?;
    let mut dropped = 0;
    for name in names {
        let pid = name.strip_prefix(TEST_DB_PREFIX).and_then(|rest| rest.split('_').next());
        let Some(pid) = pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // FORCE ends connections a finished test's server may have left behind.
        sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)).execute(&mut admin).await?;
        dropped += 1;
    }
    admin.close().await.ok();
    Ok(dropped)
}

/// Makes sure a migrated template for this build's migrations exists; returns its name.
async fn ensure_template(server: &str) -> String {
    let template = format!("tessera_tpl_{}", tessera_store::migrations_fingerprint());
    let mut admin = PgConnection::connect(server).await.expect("connect to the test server");
    sqlx::query("SELECT pg_advisory_lock(7370709)").execute(&mut admin).await.expect("lock");
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&template)
        .fetch_one(&mut admin)
        .await
        .expect("look up template");
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{building}""#)).execute(&mut admin).await.expect("drop");
        sqlx::query(&format!(r#"CREATE DATABASE "{building}""#)).execute(&mut admin).await.expect("create template");
        let store = Store::connect(&with_database(server, &building), &StoreConfig::default())
            .await
            .expect("connect to template");
        store.migrate().await.expect("migrate template");
        store.close().await;
        // Renamed only once complete, so a half-built template is never cloned. A backend of
        // the just-closed pool may still be exiting for a few milliseconds: retry.
        let mut attempt = 0;
        loop {
            let renamed = sqlx::query(&format!(r#"ALTER DATABASE "{building}" RENAME TO "{template}""#))
                .execute(&mut admin)
                .await;
            match renamed {
                Ok(_) => break,
                Err(e) if attempt < 50 && e.to_string().contains("is being accessed by other users") => {
                    attempt += 1;
                    // Nothing but this process uses the half-built database (the advisory lock
                    // is held): a backend still attached is a leftover of the closed pool, and
                    // has been seen to linger for minutes on a loaded machine. End it.
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&building)
                    .execute(&mut admin)
                    .await
                    .expect("end leftover connections to the template");
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => panic!("publish template: {e}"),
            }
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(7370709)").execute(&mut admin).await.expect("unlock");
    admin.close().await.ok();
    template
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{authority}/{database}?{q}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_and_socket_query_kept() {
        assert_eq!(
            with_database("postgres://u@localhost:5432/postgres?host=/tmp/x", "t1"),
            "postgres://u@localhost:5432/t1?host=/tmp/x"
        );
        assert_eq!(with_database("postgres://u:p@h:1/db", "t2"), "postgres://u:p@h:1/t2");
        assert_eq!(with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
    }
}
