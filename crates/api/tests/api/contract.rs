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

#[tokio::test]
async fn patching_a_user_with_an_empty_object_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("root@example.com", true).await;
    let session = app.login("root@example.com").await;
    let user = app.create_user("dev@example.com", false).await;
    let path = format!("/api/v2/users/{}", user.id);
    let set = app.as_session(&session, Method::PATCH, &path).json(&json!({"rate_limit_per_hour": 60})).send();
    assert_eq!(set.await.unwrap().status(), StatusCode::OK);
    let res = app.as_session(&session, Method::PATCH, &path).json(&json!({})).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["email"].as_str(), body["rate_limit_per_hour"].as_i64()),
        (Some("dev@example.com"), Some(60)),
        "{body}"
    );
}

#[tokio::test]
async fn patching_an_unknown_user_with_an_empty_object_is_404() {
    let app = spawn_app().await;
    app.create_user("root@example.com", true).await;
    let session = app.login("root@example.com").await;
    let path = format!("/api/v2/users/{}", uuid::Uuid::now_v7());
    let res = app.as_session(&session, Method::PATCH, &path).json(&json!({})).send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn a_webhook_with_an_empty_url_is_400_invalid_url() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.as_session(&session, Method::POST, "/api/v2/webhooks").json(&json!({"url": ""})).send();
    let (code, body) = error_code(res.await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_url");
    assert!(body["message"].as_str().unwrap().contains("http:// or https://"), "{body}");
}

#[tokio::test]
async fn changing_a_webhooks_url_to_an_empty_one_is_400_invalid_url() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let created = app
        .as_session(&session, Method::POST, "/api/v2/webhooks")
        .json(&json!({"url": "https://hooks.example.com/tessera"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let res = app.as_session(&session, Method::PATCH, &format!("/api/v2/webhooks/{id}")).json(&json!({"url": ""}));
    assert_eq!(error_code(res.send().await.unwrap(), StatusCode::BAD_REQUEST).await.0, "invalid_url");
}

#[tokio::test]
async fn tool_classes_are_set_with_read_write_or_hidden_and_cleared_with_null() {
    let app = spawn_app().await;
    app.create_user("root@example.com", true).await;
    let session = app.login("root@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "notes", "url": "http://127.0.0.1:9/mcp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let patch = |tools: Value| {
        app.as_session(&session, Method::PATCH, "/api/v2/servers/notes/tools").json(&json!({ "tools": tools })).send()
    };
    let res = patch(json!({"a": "read", "b": "write", "c": "hidden"})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tools: Value = res.json().await.unwrap();
    let classes: Vec<_> = tools.as_array().unwrap().iter().map(|t| (t["name"].clone(), t["access"].clone())).collect();
    assert_eq!(classes, [(json!("a"), json!("read")), (json!("b"), json!("write")), (json!("c"), json!("hidden"))]);
    assert_eq!(patch(json!({"a": null})).await.unwrap().status(), StatusCode::OK);
    let res = patch(json!({"a": "admin"})).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
