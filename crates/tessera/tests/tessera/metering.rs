//! One process, one budget: a token's rate limit is spent by `/mcp` and `/api/v2` calls
//! alike, and both are counted in its usage.

use std::net::TcpListener;

use chrono::{Duration, Utc};
use clap::Parser;
use serde_json::json;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_store::Actor;
use tessera_testkit::TokenSpec;
use tessera_testkit::fresh_db;

#[tokio::test]
async fn api_and_mcp_calls_share_one_rate_limit_and_are_both_counted() {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let args = ["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--public-url", &base, "serve"];
    let state = AppState::for_store(db.store.clone(), Cli::parse_from(args).settings).await.unwrap();
    let user = db.store.create_user("shared@example.com", None, false, &Actor::cli()).await.unwrap();
    let now = Utc::now();
    let spec = TokenSpec {
        name: "shared budget".to_owned(),
        expires_at: now + Duration::days(1),
        // 120 per hour: a burst of two, then one every 30 s.
        rate_limit_per_hour: Some(120),
        ..TokenSpec::new(
            user.id,
            "read:tokens read:tasks execute:mcp",
            &state.settings.issuer(),
            &state.settings.mcp_resource(),
        )
    };
    let (token, record) = spec.insert(&db.store, &state.validator.key_ring()).await;
    let app = Application::build(state.clone(), listener).unwrap();
    tokio::spawn(app.run());

    let client = reqwest::Client::new();
    let api = || client.get(format!("{base}/api/v2/tokens")).bearer_auth(&token).send();
    let mcp = || {
        client
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
            .send()
    };
    assert_eq!(api().await.unwrap().status(), 200);
    assert_eq!(mcp().await.unwrap().status(), 200);
    assert_eq!(mcp().await.unwrap().status(), 429, "the API call spent part of the MCP budget");
    assert_eq!(api().await.unwrap().status(), 429, "the MCP calls spent the API budget");

    state.metering.usage.flush(&state.store).await.unwrap();
    let rows = state.store.usage_rows(record.id, now - Duration::hours(2), now + Duration::hours(2)).await;
    let mut rows: Vec<(String, String, i64)> =
        rows.unwrap().into_iter().map(|r| (r.method, r.outcome.as_str().to_owned(), r.count)).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("api GET /api/v2/tokens".to_owned(), "429".to_owned(), 1),
            ("api GET /api/v2/tokens".to_owned(), "ok".to_owned(), 1),
            ("tools/list".to_owned(), "429".to_owned(), 1),
            ("tools/list".to_owned(), "ok".to_owned(), 1),
        ]
    );
}
