//! `GET /tokens/{id}/audit`: the token's audit entries, oldest first, to its owner only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn owner_sees_issue_then_revoke_without_any_secret() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let secret = token["token"].as_str().unwrap().to_owned();
    let id = token["id"].as_str().unwrap();
    let res = app
        .as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"reason": "laptop lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/audit")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&secret), "the secret leaked into the audit: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let items = body["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["token.issue", "token.revoke"]);
    assert!(items[0]["id"].as_i64().unwrap() < items[1]["id"].as_i64().unwrap());
    assert_eq!(items[1]["actor_user_id"], user.id.to_string());
    assert_eq!(items[1]["details"]["reason"], "laptop lost");
    for key in ["id", "at", "action", "actor_user_id", "actor_token_id", "ip", "details"] {
        assert!(items[0].get(key).is_some(), "missing {key} in {}", items[0]);
    }

    let res =
        app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/audit?limit=1")).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["action"], "token.issue");
}

#[tokio::test]
async fn another_users_token_audit_is_404() {
    let app = spawn_app().await;
    let (_, ann) = app.signed_in("ann@example.com").await;
    let (_, bob) = app.signed_in("bob@example.com").await;
    let token = app.issue(&ann, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}/audit", token["id"].as_str().unwrap());
    let res = app.as_session(&bob, Method::GET, &path).send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn audit_limit_out_of_range_or_not_a_number_is_json_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let id = token["id"].as_str().unwrap();
    for limit in ["0", "201"] {
        let path = format!("/api/v2/tokens/{id}/audit?limit={limit}");
        let res = app.as_session(&session, Method::GET, &path).send().await.unwrap();
        assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_limit", "limit={limit}");
    }
    let path = format!("/api/v2/tokens/{id}/audit?limit=lots");
    let res = app.as_session(&session, Method::GET, &path).send().await.unwrap();
    error_code(res, StatusCode::BAD_REQUEST).await;
}
