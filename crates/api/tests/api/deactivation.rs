//! Deactivating an account (issue #24's deprovisioning): at once, its tokens and grants stop
//! working, its sessions end and it cannot sign in; reactivating brings none of the tokens back.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn set_active(app: &TestApp, admin: &Session, id: uuid::Uuid, active: bool) -> reqwest::Response {
    app.as_session(admin, Method::PATCH, &format!("/api/v2/users/{id}"))
        .json(&json!({ "active": active }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deactivated_accounts_tokens_sessions_and_sign_in_stop_at_once() {
    let app = spawn_app().await;
    app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let (user, session) = app.signed_in("leaver@example.com").await;
    let token = app.issue_direct(&user, "read:tokens read:tasks").await;
    let child = app.issue(&session, "cli", &["read:tasks"]).await;
    assert_eq!(app.validate(&token).await.0, StatusCode::OK);

    let res = set_active(&app, &admin, user.id, false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["active"], false);

    assert_eq!(app.validate(&token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.validate(child["token"].as_str().unwrap()).await.0, StatusCode::UNAUTHORIZED);
    let mine = app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::UNAUTHORIZED, "the session ended");
    let login = app.login_response("leaver@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED, "sign-in refused");

    // Reactivated: signs in again, but the old tokens stay revoked.
    assert_eq!(set_active(&app, &admin, user.id, true).await.status(), StatusCode::OK);
    assert_eq!(app.login_response("leaver@example.com", PASSWORD).await.status(), StatusCode::OK);
    let (status, body) = app.validate(&token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let audit: Value = app
        .as_session(&admin, Method::GET, &format!("/api/v2/tokens/{}", child["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["revoke_reason"], "its owner's account was deactivated");
}

#[tokio::test]
async fn an_administrator_cannot_deactivate_themselves_nor_may_others_deactivate_anyone() {
    let app = spawn_app().await;
    let root = app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let res = set_active(&app, &admin, root.id, false).await;
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_body");
    let (_, plain) = app.signed_in("plain@example.com").await;
    let res = set_active(&app, &plain, root.id, false).await;
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "admin_required");
}
