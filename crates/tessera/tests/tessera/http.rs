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

#[tokio::test]
async fn every_route_answers_an_unsupported_method_with_a_json_405_naming_the_allowed_ones() {
    use tessera_store::Actor;
    use tessera_testkit::TokenSpec;

    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let args = ["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--public-url", &base, "serve"];
    let state = AppState::for_store(db.store.clone(), Cli::parse_from(args).settings).await.unwrap();
    let user = db.store.create_user("methods@example.com", None, false, &Actor::cli()).await.unwrap();
    let spec = TokenSpec {
        name: "methods".to_owned(),
        ..TokenSpec::new(
            user.id,
            "read:tokens write:tokens read:tasks execute:mcp",
            &state.settings.issuer(),
            &state.settings.mcp_resource(),
        )
    };
    let (token, record) = spec.insert(&db.store, &state.validator.key_ring()).await;
    let app = Application::build(state, listener).unwrap();
    tokio::spawn(app.run());

    let id = record.id;
    let cases: Vec<(reqwest::Method, String, &[&str])> = vec![
        (reqwest::Method::POST, "/health".into(), &["GET"]),
        (reqwest::Method::DELETE, "/ready".into(), &["GET"]),
        (reqwest::Method::PUT, "/metrics".into(), &["GET"]),
        (reqwest::Method::POST, "/.well-known/jwks.json".into(), &["GET"]),
        (reqwest::Method::POST, "/.well-known/oauth-protected-resource".into(), &["GET"]),
        (reqwest::Method::DELETE, "/.well-known/oauth-protected-resource/mcp".into(), &["GET"]),
        (reqwest::Method::POST, "/openapi.json".into(), &["GET"]),
        (reqwest::Method::GET, "/mcp".into(), &["POST"]),
        (reqwest::Method::DELETE, "/mcp".into(), &["POST"]),
        (reqwest::Method::PUT, "/mcp".into(), &["POST"]),
        (reqwest::Method::PUT, "/api/v2/tokens".into(), &["GET", "POST"]),
        (reqwest::Method::GET, "/api/v2/tokens/validate".into(), &["POST"]),
        (reqwest::Method::POST, format!("/api/v2/tokens/{id}"), &["GET", "PATCH", "DELETE"]),
        (reqwest::Method::GET, format!("/api/v2/tokens/{id}/rotate"), &["POST"]),
        (reqwest::Method::DELETE, format!("/api/v2/tokens/{id}/audit"), &["GET"]),
        (reqwest::Method::POST, format!("/api/v2/tokens/{id}/usage"), &["GET"]),
        (reqwest::Method::GET, "/api/v2/auth/login".into(), &["POST"]),
        (reqwest::Method::GET, "/api/v2/auth/logout".into(), &["POST"]),
        (reqwest::Method::DELETE, "/api/v2/auth/me".into(), &["GET"]),
        (reqwest::Method::POST, "/".into(), &["GET", "HEAD"]),
        (reqwest::Method::DELETE, "/assets/app.js".into(), &["GET", "HEAD"]),
    ];
    let client = reqwest::Client::new();
    for (method, path, allowed) in cases {
        let res = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        let allow = res.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
        listed.sort_unstable();
        let mut expected = allowed.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected, "{method} {path}: Allow: {allow}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
        assert!(body["message"].is_string(), "{method} {path}");
    }
}
