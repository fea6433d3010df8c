//! `/api/v2/teams`: administrators make teams whose allowances bound their members; a shrinking
//! allowance narrows the members' tokens before the answer.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn admin(app: &TestApp) -> Session {
    app.create_user("admin@example.com", true).await;
    app.login("admin@example.com").await
}

async fn call(app: &TestApp, session: &Session, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let req = app.as_session(session, method, path);
    let req = if let Some(b) = body { req.json(&b) } else { req };
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_admin_makes_a_team_and_everyone_is_listed_beside_it() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let body = json!({"name": "dev team", "allowance": ["read:tasks", "execute:mcp"], "groups": ["engineering"]});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(body)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/api/v2/teams/dev%20team");
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["allowance"], json!(["execute:mcp", "read:tasks"]));
    assert_eq!(created["groups"], json!(["engineering"]));
    let list: Value = call(&app, &session, Method::GET, "/api/v2/teams", None).await.json().await.unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev team", "everyone"]);
    assert_eq!(list[1]["allowance"], Value::Null, "everyone allows every scope until narrowed");
    let again = json!({"name": "dev team", "allowance": []});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(again)).await;
    assert_eq!(error_code(res, StatusCode::CONFLICT).await.0, "team_exists");
}

#[tokio::test]
async fn bad_allowances_and_the_builtin_team_are_refused_with_clear_codes() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let admin_scope = json!({"name": "root", "allowance": ["mcp:admin"]});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(admin_scope)).await;
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "admin_scope_forbidden");
    let typo = json!({"name": "typo", "allowance": ["read:taks"]});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(typo)).await;
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "unknown_scope");
    let res = call(&app, &session, Method::DELETE, "/api/v2/teams/everyone", None).await;
    assert_eq!(error_code(res, StatusCode::CONFLICT).await.0, "builtin_team");
    let res = call(&app, &session, Method::PUT, "/api/v2/teams/everyone/members/admin@example.com", None).await;
    assert_eq!(error_code(res, StatusCode::CONFLICT).await.0, "builtin_team");
    let res = call(&app, &session, Method::GET, "/api/v2/teams/nope", None).await;
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn joining_a_narrow_team_narrows_the_members_tokens_at_once() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let (user, _) = app.signed_in("ann@example.com").await;
    let token = app.issue_direct(&user, "read:tasks write:tasks execute:mcp").await;
    let body = json!({"name": "readers", "allowance": ["read:tasks", "execute:mcp"]});
    assert_eq!(call(&app, &session, Method::POST, "/api/v2/teams", Some(body)).await.status(), StatusCode::CREATED);
    let res = call(&app, &session, Method::PUT, "/api/v2/teams/readers/members/ann@example.com", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let team: Value = res.json().await.unwrap();
    assert_eq!(team["members"], json!(["ann@example.com"]));
    assert_eq!(team["tokens_narrowed"], 1);
    let (status, valid) = app.validate(&token).await;
    assert_eq!(status, StatusCode::OK, "still active: {valid}");
    let scopes = valid["scopes"].as_array().unwrap();
    assert!(scopes.contains(&json!("read:tasks")), "{valid}");
    assert!(!scopes.contains(&json!("write:tasks")) && !scopes.contains(&json!("mcp:write")), "{valid}");
}

#[tokio::test]
async fn teams_are_for_administrators_only() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("user@example.com").await;
    let res = call(&app, &session, Method::GET, "/api/v2/teams", None).await;
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "admin_required");
}

#[tokio::test]
async fn names_no_team_or_account_can_have_are_404_or_400_never_500() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    for path in ["/api/v2/teams/a%00b", "/api/v2/teams/everyone%00"] {
        let res = call(&app, &session, Method::GET, path, None).await;
        assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found", "{path}");
    }
    let body = json!({"name": "ops", "allowance": []});
    assert_eq!(call(&app, &session, Method::POST, "/api/v2/teams", Some(body)).await.status(), StatusCode::CREATED);
    let res = call(&app, &session, Method::PUT, "/api/v2/teams/ops/members/a%00@example.com", None).await;
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
    let long_group = json!({"name": "g", "allowance": [], "groups": ["x".repeat(257)]});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(long_group)).await;
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_name");
    let control = json!({"name": "a\u{7}b", "allowance": []});
    let res = call(&app, &session, Method::POST, "/api/v2/teams", Some(control)).await;
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_name");
}
