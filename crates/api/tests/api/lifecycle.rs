//! The token lifecycle's authorization rules over real HTTP: what an admin's bearer token,
//! an admin's session and a token acting as credential may and may not do.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Ann (not admin) with a token; root (admin) exists. Returns ann's token's id.
async fn anns_token(app: &TestApp) -> String {
    let (_, ann) = app.signed_in("ann@example.com").await;
    let token = app.issue(&ann, "ann's", &["read:tasks"]).await;
    token["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn admins_bearer_without_mcp_admin_sees_only_its_owners_tokens() {
    let app = spawn_app().await;
    let id = anns_token(&app).await;
    let root = app.create_user("root@example.com", true).await;
    let bearer = app.issue_direct(&root, "write:tokens").await;
    let list: Value = app.as_bearer(&bearer, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(|t| t["user_id"] == json!(root.id)), "{list}");
    let path = format!("/api/v2/tokens/{id}");
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::POST, format!("{path}/rotate")),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/usage")),
        (Method::GET, format!("{path}/audit")),
    ] {
        let mut req = app.as_bearer(&bearer, method.clone(), &path);
        if method == Method::PATCH {
            req = req.json(&json!({"name": "mine now"}));
        }
        let res = req.send().await.unwrap();
        assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found", "{method} {path}");
    }
    assert_eq!(app.validate(&bearer).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bearer_with_mcp_admin_manages_other_users_tokens_but_cannot_rotate_them() {
    let app = spawn_app().await;
    let id = anns_token(&app).await;
    let root = app.create_user("root@example.com", true).await;
    let bearer = app.issue_direct(&root, "mcp:admin").await;
    let path = format!("/api/v2/tokens/{id}");
    assert_eq!(app.as_bearer(&bearer, Method::GET, &path).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.as_bearer(&bearer, Method::GET, &format!("{path}/audit")).send().await.unwrap().status(), 200);
    let rotate = app.as_bearer(&bearer, Method::POST, &format!("{path}/rotate")).send().await.unwrap();
    let (code, body) = error_code(rotate, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "not_owner");
    assert!(body.get("token").is_none());
    let revoke = app.as_bearer(&bearer, Method::DELETE, &path).send().await.unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let audit = app.store.audit_for_token(id.parse().unwrap(), 10).await.unwrap();
    let row = audit.iter().find(|r| r.action == "token.revoke").unwrap();
    assert_eq!(row.actor_user_id, Some(root.id), "the audit row names the acting admin");
    assert!(row.actor_token_id.is_some(), "and the token it acted with");
}

#[tokio::test]
async fn admin_session_cannot_rotate_another_users_token_and_receives_no_secret() {
    let app = spawn_app().await;
    let id = anns_token(&app).await;
    app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let res = app.as_session(&admin, Method::POST, &format!("/api/v2/tokens/{id}/rotate")).send().await.unwrap();
    let (code, body) = error_code(res, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "not_owner");
    assert!(body.get("token").is_none());
}

#[tokio::test]
async fn token_minted_by_a_token_expires_with_its_maker_and_inherits_its_limit() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let (maker, maker_id) = app.issue_limited(&user, "write:tokens read:tasks", 600).await;
    let res = app
        .as_bearer(&maker, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "child", "scopes": ["read:tasks"], "expires_in_days": 365}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let child: Value = res.json().await.unwrap();
    let maker_row = app.store.get_token(maker_id).await.unwrap().unwrap();
    let child_expiry: chrono::DateTime<chrono::Utc> = child["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(child_expiry <= maker_row.expires_at, "{child_expiry} > {}", maker_row.expires_at);
    assert_eq!(child["rate_limit_per_hour"], 600, "an unlimited request gets the maker's limit");
    assert_eq!(child["minted_by"], json!(maker_id));
}

#[tokio::test]
async fn a_token_cannot_lift_its_own_rate_limit() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "write:tokens", 600).await;
    let res = app
        .as_bearer(&token, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"rate_limit_per_hour": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "rate_limit_exceeds_credential");
    let looser = app
        .as_bearer(&token, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"rate_limit_per_hour": 601}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(looser, StatusCode::FORBIDDEN).await.0, "rate_limit_exceeds_credential");
}

#[tokio::test]
async fn a_token_rotating_itself_gets_no_fresh_lifetime() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "write:tokens", 600).await;
    let before = app.store.get_token(id).await.unwrap().unwrap();
    let res = app.as_bearer(&token, Method::POST, &format!("/api/v2/tokens/{id}/rotate")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let new: Value = res.json().await.unwrap();
    let expiry: chrono::DateTime<chrono::Utc> = new["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expiry <= before.expires_at, "{expiry} > {}", before.expires_at);
}

#[tokio::test]
async fn revoking_a_token_revokes_every_token_it_minted() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let session = app.login("bot@example.com").await;
    let (maker, maker_id) = app.issue_limited(&user, "write:tokens read:tasks", 600).await;
    let child: Value = app
        .as_bearer(&maker, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "child", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(app.validate(child["token"].as_str().unwrap()).await.0, StatusCode::OK);
    let res = app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{maker_id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, body) = app.validate(child["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "revoked");
    let audit = app.store.audit_for_token(maker_id, 10).await.unwrap();
    let row = audit.iter().find(|r| r.action == "token.revoke").unwrap();
    assert_eq!(row.details["also_revoked"], json!([child["id"]]));
}
