//! Per-token rate limits.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn over_the_rate_limit_is_429_then_recovers() {
    let app = spawn_app().await;
    // 3600/h: one request per second sustained, a burst of 60.
    let token = issue_with(&app, Issue { rate_limit_per_hour: Some(3600), ..Issue::scopes("read:tasks") }).await;
    let (interval, burst) = tessera_auth::quota_for(3600);
    for i in 0..burst {
        let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
        assert_eq!(res.status(), 200, "request {i} of the burst");
        assert_eq!(res.headers()["ratelimit-limit"], "3600");
    }
    let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert!(res.headers().contains_key("ratelimit-reset"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");

    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 200, "one more request is allowed after the emission interval");

    app.state.flush_usage().await.unwrap();
    let rows = app
        .store
        .usage_rows(
            token.id,
            chrono::Utc::now() - chrono::Duration::hours(2),
            chrono::Utc::now() + chrono::Duration::hours(2),
        )
        .await
        .unwrap();
    let limited: i64 = rows.iter().filter(|u| u.outcome.as_str() == "429").map(|u| u.count).sum();
    assert_eq!(limited, 1, "the refused request is counted as 429");
}

#[tokio::test]
async fn tokens_without_a_limit_get_no_rate_limit_headers() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn two_tokens_of_one_user_share_the_users_limit_at_mcp() {
    let app = spawn_app().await;
    let user_id = new_user(&app.store).await;
    // 60/h for the user: a burst of one shared by all their tokens.
    app.store.set_user_rate_limit(user_id, Some(60), &tessera_store::Actor::cli()).await.unwrap();
    let first = issue_with(&app, Issue { user_id: Some(user_id), ..Issue::scopes("read:tasks") }).await;
    let second = issue_with(&app, Issue { user_id: Some(user_id), ..Issue::scopes("read:tasks") }).await;
    assert_eq!(post_mcp(&app, Some(&first.secret), &initialize_body()).await.status(), 200);
    let res = post_mcp(&app, Some(&second.secret), &initialize_body()).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["ratelimit-policy"], "\"user\";q=60;w=3600");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["details"]["limit_scope"], "user");
}
