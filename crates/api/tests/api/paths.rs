//! Paths as the token guide writes them (issue 17): every route also answers with a
//! trailing slash — the same handler, never a redirect.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn post_tokens_with_a_trailing_slash_creates_a_token_without_a_redirect() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("slash@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens/")
        .json(&json!({"name": "from the guide", "scopes": ["read:tasks", "execute:mcp"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    assert!(body["token"].is_string(), "{body}");
}

#[tokio::test]
async fn get_tokens_with_a_trailing_slash_lists_them_and_counts_usage_under_the_route() {
    let app = spawn_app().await;
    let user = app.create_user("lister@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "read:tokens", 600).await;
    let res = app.as_bearer(&token, Method::GET, "/api/v2/tokens/?limit=5").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["items"].as_array().is_some_and(|items| !items.is_empty()), "{body}");

    app.metering.usage.flush(&app.store).await.unwrap();
    let now = Utc::now();
    let rows = app.store.usage_rows(id, now - Duration::hours(2), now + Duration::hours(2)).await.unwrap();
    let rows: Vec<_> = rows.into_iter().map(|r| (r.method, r.outcome.as_str().to_owned(), r.count)).collect();
    assert_eq!(rows, [("api GET /api/v2/tokens".to_owned(), "ok".to_owned(), 1)]);
}

#[tokio::test]
async fn every_token_route_answers_with_a_trailing_slash() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("routes@example.com").await;
    let issued = app.issue(&session, "routes", &["read:tasks"]).await;
    let id = issued["id"].as_str().unwrap();
    let secret = issued["token"].as_str().unwrap();

    let get = app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let usage = app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage/")).send().await.unwrap();
    assert_eq!(usage.status(), StatusCode::OK);
    let me = app.as_session(&session, Method::GET, "/api/v2/auth/me/").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let validate = app.as_bearer(secret, Method::POST, "/api/v2/tokens/validate/").send().await.unwrap();
    assert_eq!(validate.status(), StatusCode::OK);
    let patch = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{id}/"))
        .json(&json!({"description": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::OK, "{}", patch.text().await.unwrap());
    let rotate = app
        .as_session(&session, Method::POST, &format!("/api/v2/tokens/{id}/rotate/"))
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await
        .unwrap();
    assert!(rotate.status().is_success(), "{}", rotate.text().await.unwrap());
    let revoke = app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{id}/")).send().await.unwrap();
    assert!(revoke.status().is_success(), "{}", revoke.text().await.unwrap());
}

#[tokio::test]
async fn an_unknown_path_with_a_trailing_slash_is_still_a_json_404() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/api/v2/nothing-here/").send().await.unwrap();
    let (code, _) = error_code(res, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
}
