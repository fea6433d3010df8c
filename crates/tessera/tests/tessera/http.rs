//! The HTTP server in-process over real HTTP, against a real database.

use std::net::TcpListener;

use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_store::Store;
use tessera_testkit::fresh_db;

async fn spawn(store: Store) -> String {
    spawn_with(store, &[]).await
}

async fn spawn_with(store: Store, flags: &[&str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut args = vec!["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef"];
    args.extend_from_slice(flags);
    args.push("serve");
    let settings = Cli::parse_from(args).settings;
    let state = AppState::for_store(store, settings).await.unwrap();
    let app = Application::build(state, listener).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    base
}

#[tokio::test]
async fn health_answers_without_a_database_check() {
    let db = fresh_db().await;
    let base = spawn(db.store).await;
    let res = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_single_worker_serves_concurrent_requests() {
    let db = fresh_db().await;
    let base = spawn_with(db.store, &["--workers", "1"]).await;
    let client = reqwest::Client::new();
    let requests = (0..8).map(|_| client.get(format!("{base}/ready")).send());
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn ready_is_200_when_the_database_is_migrated() {
    let db = fresh_db().await;
    let base = spawn(db.store).await;
    let res = reqwest::get(format!("{base}/ready")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn ready_is_503_with_retry_after_when_the_database_is_unreachable() {
    let pool = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let base = spawn(Store::from_pool(pool)).await;
    let res = reqwest::get(format!("{base}/ready")).await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_ready");
}
