//! Token management: issue, list, get, patch, revoke, rotate, validate.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn create_token_returns_201_location_and_the_secret_once() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "laptop", "description": "my laptop", "scopes": ["read:tasks", "execute:mcp"],
                      "expires_in_days": 7, "rate_limit_per_hour": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v2/tokens/{id}"));
    assert_eq!(body["user_id"], json!(user.id));
    assert_eq!(body["scopes"], json!(["execute:mcp", "read:tasks"]));
    assert_eq!(body["status"], "active");
    assert_eq!(body["rate_limit_per_hour"], 100);
    assert!(body["token"].as_str().unwrap().split('.').count() == 3);

    let got: Value = app.as_session(&session, Method::GET, &location).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["id"], body["id"]);
    assert_eq!(got["description"], "my laptop");
    assert!(got.get("token").is_none(), "the secret is returned only once");
}

#[tokio::test]
async fn expiry_defaults_to_30_days() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let body = app.issue(&session, "t", &["read:tasks"]).await;
    let created: chrono::DateTime<chrono::Utc> = body["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_days(), 30);
}

#[tokio::test]
async fn list_paginates_across_pages_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    for i in 0..25 {
        app.issue(&session, &format!("token {i}"), &["read:tasks"]).await;
    }
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v2/tokens?limit=10&cursor={c}"),
            None => "/api/v2/tokens?limit=10".to_owned(),
        };
        let page: Value = app.as_session(&session, Method::GET, &path).send().await.unwrap().json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        for item in items {
            assert!(seen.insert(item["id"].as_str().unwrap().to_owned()), "no token twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn list_defaults_to_20_and_filters_by_status_and_name() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    for i in 0..22 {
        app.issue(&session, &format!("ci runner {i}"), &["read:tasks"]).await;
    }
    let laptop = app.issue(&session, "Laptop", &["read:tasks"]).await;
    let page: Value =
        app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);

    let id = laptop["id"].as_str().unwrap();
    let res = app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let revoked: Value = app
        .as_session(&session, Method::GET, "/api/v2/tokens?status=revoked")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = revoked["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], laptop["id"]);

    let found: Value =
        app.as_session(&session, Method::GET, "/api/v2/tokens?q=lap").send().await.unwrap().json().await.unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    let active: Value = app
        .as_session(&session, Method::GET, "/api/v2/tokens?status=active&limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["items"].as_array().unwrap().len(), 22);
}

#[tokio::test]
async fn patch_renames_describes_limits_and_narrows_scopes() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks", "write:context"]).await;
    let id = token["id"].as_str().unwrap();
    let shorter = chrono::Utc::now() + chrono::Duration::days(2);
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"name": "renamed", "description": "d", "rate_limit_per_hour": 10,
                      "scopes": ["read:tasks"], "expires_at": shorter}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["description"], "d");
    assert_eq!(body["rate_limit_per_hour"], 10);
    assert_eq!(body["scopes"], json!(["read:tasks"]));

    // Narrowing takes effect at once for validation.
    let (status, validated) = app.validate(token["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!validated["scopes"].as_array().unwrap().contains(&json!("write:context")));

    // `null` clears the description and the limit.
    let body: Value = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"description": null, "rate_limit_per_hour": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["rate_limit_per_hour"], Value::Null);
    assert_eq!(body["name"], "renamed");
}

#[tokio::test]
async fn patch_widening_scopes_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{}", token["id"].as_str().unwrap()))
        .json(&json!({"scopes": ["read:tasks", "write:tasks"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "scope_widening");
    assert!(body["message"].as_str().unwrap().contains("write:tasks"));
}

#[tokio::test]
async fn patch_extending_expiry_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let later = chrono::Utc::now() + chrono::Duration::days(100);
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{}", token["id"].as_str().unwrap()))
        .json(&json!({"expires_at": later}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "expiry_extension");
}

#[tokio::test]
async fn revoke_is_idempotent_keeps_the_reason_and_validate_then_says_revoked() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let secret = token["token"].as_str().unwrap();
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    assert_eq!(app.validate(secret).await.0, StatusCode::OK);

    let res = app.as_session(&session, Method::DELETE, &path).json(&json!({"reason": "laptop lost"})).send().await;
    let body: Value = res.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["revoke_reason"], "laptop lost");

    let again = app.as_session(&session, Method::DELETE, &path).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], "revoked");
    assert_eq!(again["revoked_at"], body["revoked_at"]);

    let (status, v) = app.validate(secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["active"], false);
    assert_eq!(v["error"], "revoked");
}

#[tokio::test]
async fn rotation_keeps_the_old_token_working_inside_the_grace_then_fails_as_rotated() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks", "execute:mcp"]).await;
    let old_secret = token["token"].as_str().unwrap();
    let id = token["id"].as_str().unwrap();
    let res = app
        .as_session(&session, Method::POST, &format!("/api/v2/tokens/{id}/rotate"))
        .json(&json!({"grace_seconds": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let new: Value = res.json().await.unwrap();
    assert_ne!(new["id"], token["id"]);
    assert_eq!(new["rotated_from"], token["id"]);
    assert_eq!(new["name"], token["name"]);
    assert_eq!(new["scopes"], token["scopes"]);
    let new_secret = new["token"].as_str().unwrap();

    assert_eq!(app.validate(old_secret).await.0, StatusCode::OK, "inside the grace");
    assert_eq!(app.validate(new_secret).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, v) = app.validate(old_secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "rotated");
    assert_eq!(app.validate(new_secret).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rotate_without_body_ends_the_old_token_at_once() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::POST, &format!("/api/v2/tokens/{}/rotate", token["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("location").is_some());
    let (status, v) = app.validate(token["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "rotated");
}

#[tokio::test]
async fn rotating_a_revoked_token_is_409() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    app.as_session(&session, Method::DELETE, &path).send().await.unwrap();
    let res = app.as_session(&session, Method::POST, &format!("{path}/rotate")).send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::CONFLICT).await.0, "token_inactive");
}

#[tokio::test]
async fn rotate_grace_out_of_range_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::POST, &format!("/api/v2/tokens/{}/rotate", token["id"].as_str().unwrap()))
        .json(&json!({"grace_seconds": 86401}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_grace");
}

#[tokio::test]
async fn validate_returns_the_effective_inheritance_expanded_scopes() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["write:tasks"]).await;
    let (status, v) = app.validate(token["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["active"], true);
    assert_eq!(v["id"], token["id"]);
    assert_eq!(v["sub"], json!(user.id));
    assert_eq!(v["name"], "t");
    assert_eq!(v["expires_at"], token["expires_at"]);
    assert_eq!(v["scopes"], json!(["mcp:access", "mcp:read", "mcp:write", "read:tasks", "write:tasks"]));
}

#[tokio::test]
async fn validate_without_a_token_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let res = app.request(Method::POST, "/api/v2/tokens/validate").send().await.unwrap();
    assert!(res.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer"));
    let (code, body) = error_code(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "missing_token");
    assert_eq!(body["active"], false);
}

#[tokio::test]
async fn validate_a_garbage_token_is_401_malformed() {
    let app = spawn_app().await;
    let (status, v) = app.validate("not-a-jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["active"], false);
    assert_eq!(v["error"], "malformed");
}

#[tokio::test]
async fn other_users_token_is_404() {
    let app = spawn_app().await;
    let (_, ann) = app.signed_in("ann@example.com").await;
    let (_, bob) = app.signed_in("bob@example.com").await;
    let token = app.issue(&ann, "ann's", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/rotate")),
        (Method::GET, format!("{path}/usage")),
    ] {
        let mut rb = app.as_session(&bob, method.clone(), &path);
        if method == Method::PATCH {
            rb = rb.json(&json!({"name": "mine now"}));
        }
        let (code, _) = error_code(rb.send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(code, "not_found", "{method} {path}");
    }
    let bobs: Value = app.as_session(&bob, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    assert!(bobs["items"].as_array().unwrap().is_empty());
    // Ann's token is untouched.
    assert_eq!(app.validate(token["token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_token_id_is_404() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{}", uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn admins_see_and_manage_every_token() {
    let app = spawn_app().await;
    let (_, ann) = app.signed_in("ann@example.com").await;
    app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let token = app.issue(&ann, "ann's", &["read:tasks"]).await;
    let list: Value = app.as_session(&admin, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    assert_eq!(app.as_session(&admin, Method::GET, &path).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.as_session(&admin, Method::DELETE, &path).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_credential_with_write_tokens_can_mint_within_its_own_scopes() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "write:tokens write:tasks").await;
    let res = app
        .as_bearer(&credential, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "child", "scopes": ["read:tasks", "write:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let child: Value = res.json().await.unwrap();
    assert_eq!(child["user_id"], json!(user.id));
    // And read them back with the same credential (write:tokens implies read:tokens).
    let list = app.as_bearer(&credential, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(list.status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_credential_cannot_mint_scopes_beyond_its_own() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "write:tokens read:tasks").await;
    let res = app
        .as_bearer(&credential, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "child", "scopes": ["write:tasks"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "scope_exceeds_credential");
    assert_eq!(body["details"]["missing"], json!(["write:tasks"]));
}

#[tokio::test]
async fn bearer_credential_cannot_rotate_a_token_wider_than_itself() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let session = app.login("bot@example.com").await;
    let wide = app.issue(&session, "wide", &["write:agents"]).await;
    let credential = app.issue_direct(&user, "write:tokens").await;
    let res = app
        .as_bearer(&credential, Method::POST, &format!("/api/v2/tokens/{}/rotate", wide["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "scope_exceeds_credential");
    assert_eq!(app.validate(wide["token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bearer_without_read_tokens_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "read:tasks").await;
    let res = app.as_bearer(&credential, Method::GET, "/api/v2/tokens").send().await.unwrap();
    let www = res.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
    assert!(www.contains("insufficient_scope") && www.contains("read:tokens"), "{www}");
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "insufficient_scope");
}

#[tokio::test]
async fn bearer_with_only_read_tokens_cannot_mint() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "read:tokens").await;
    let res = app
        .as_bearer(&credential, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "x", "scopes": ["read:tokens"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "insufficient_scope");
}

#[tokio::test]
async fn revoked_bearer_credential_is_401_invalid_token() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let credential = app.issue(&session, "script", &["read:tokens"]).await;
    let secret = credential["token"].as_str().unwrap();
    assert_eq!(app.as_bearer(secret, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), StatusCode::OK);
    app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{}", credential["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let res = app.as_bearer(secret, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert!(res.headers().get("www-authenticate").unwrap().to_str().unwrap().contains("invalid_token"));
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "revoked");
}

/// A person in a team is offered, and may be issued, only what it allows.
#[tokio::test]
async fn scopes_beyond_the_owners_allowance_are_403_scope_not_allowed() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    let actor = tessera_store::Actor::cli();
    let now = chrono::Utc::now();
    app.store.create_team(&actor, "readers", &["read:tasks".to_owned()], &[], now).await.unwrap();
    app.store.set_team_member(&actor, "readers", user.id, true).await.unwrap();
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks", "write:tasks"], "expires_in_days": 1}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::FORBIDDEN).await;
    assert_eq!(code, "scope_not_allowed");
    assert_eq!(body["details"]["missing"], json!(["write:tasks"]), "{body}");
    let limits: Value =
        app.as_session(&session, Method::GET, "/api/v2/limits").send().await.unwrap().json().await.unwrap();
    assert_eq!(limits["grantable_scopes"], json!(["read:tasks"]), "the form offers only the allowance");
    assert_eq!(app.issue(&session, "ok", &["read:tasks"]).await["scopes"], json!(["read:tasks"]));
}
