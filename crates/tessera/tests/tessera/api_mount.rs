//! The binary mounts the REST API and prints its OpenAPI document.

use std::net::TcpListener;
use std::process::Command;

use clap::Parser;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_testkit::fresh_db;

#[tokio::test]
async fn the_server_mounts_api_v2_and_openapi_json() {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = Cli::parse_from(["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "serve"]).settings;
    let app = Application::build(AppState::for_store(db.store, settings).await.unwrap(), listener).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());

    let res = reqwest::get(format!("{base}/api/v2/auth/me")).await.unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");

    let served = reqwest::get(format!("{base}/openapi.json")).await.unwrap().text().await.unwrap();
    assert_eq!(served, tessera_api::openapi_json());
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).arg("openapi").env_remove("DATABASE_URL").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        committed,
        "openapi.json is stale: run `cargo run -q -p tessera -- openapi > openapi.json`"
    );
}
