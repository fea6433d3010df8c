//! What the OpenAPI document promises, the server accepts (found by schemathesis, issue 11):
//! optional bodies may be `null`, integers may be written `30.0`, an empty cursor is the
//! first page, and only a JSON object is ever read as a body.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn revoke_with_a_null_body_uses_the_defaults() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    let res = app.as_session(&session, Method::DELETE, &path).json(&Value::Null).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "revoked");
}

#[tokio::test]
async fn rotate_with_a_null_body_uses_the_defaults() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}/rotate", token["id"].as_str().unwrap());
    let res = app.as_session(&session, Method::POST, &path).json(&Value::Null).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_integer_written_with_a_zero_fraction_is_that_integer() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let body = json!({"name": "t", "scopes": ["read:tasks"], "expires_in_days": 7.0, "rate_limit_per_hour": 60.0});
    let res = app.as_session(&session, Method::POST, "/api/v2/tokens").json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["rate_limit_per_hour"], 60);
}

#[tokio::test]
async fn a_fractional_integer_field_is_400_invalid_body() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let body = json!({"name": "t", "scopes": ["read:tasks"], "expires_in_days": 7.5});
    let res = app.as_session(&session, Method::POST, "/api/v2/tokens").json(&body).send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_body");
}

#[tokio::test]
async fn a_json_array_body_is_400_not_an_empty_patch() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    let res = app.as_session(&session, Method::PATCH, &path).json(&json!([null, null])).send().await.unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_body");
    assert!(body["message"].as_str().unwrap().contains("JSON object"), "{body}");
}

#[tokio::test]
async fn a_json_array_create_body_is_400_even_with_the_fields_in_order() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res =
        app.as_session(&session, Method::POST, "/api/v2/tokens").json(&json!(["t", null, ["read:tasks"]])).send().await;
    assert_eq!(error_code(res.unwrap(), StatusCode::BAD_REQUEST).await.0, "invalid_body");
}

#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    app.issue(&session, "t", &["read:tasks"]).await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens?cursor=").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["items"].as_array().unwrap().len(), 1);
}
