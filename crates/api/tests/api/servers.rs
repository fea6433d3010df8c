//! `/api/v2/servers`: the upstream registry, for administrators only; header values go in
//! and never come out.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "upstream-secret-5b1e77";

async fn admin(app: &TestApp) -> Session {
    app.create_user("admin@example.com", true).await;
    app.login("admin@example.com").await
}

async fn add(app: &TestApp, session: &Session, name: &str) -> reqwest::Response {
    app.as_session(session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": name, "url": "http://127.0.0.1:9/mcp", "description": "notes",
                      "headers": {"Authorization": format!("Bearer {SECRET}"), "X-Team": "blue"}}))
        .send()
        .await
        .unwrap()
}

/// PATCHes the classes of `server`'s tools (`{"tool": "read" | "write" | "hidden"}`).
async fn set_classes(app: &TestApp, session: &Session, server: &str, tools: Value) -> reqwest::Response {
    app.as_session(session, Method::PATCH, &format!("/api/v2/servers/{server}/tools"))
        .json(&json!({ "tools": tools }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_registers_a_server_and_never_gets_header_values_back() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let res = add(&app, &session, "notes").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/api/v2/servers/notes");
    let created = res.text().await.unwrap();
    let one =
        app.as_session(&session, Method::GET, "/api/v2/servers/notes").send().await.unwrap().text().await.unwrap();
    let all = app.as_session(&session, Method::GET, "/api/v2/servers").send().await.unwrap().text().await.unwrap();
    for body in [&created, &one, &all] {
        assert!(!body.contains(SECRET), "{body}");
    }
    let view: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(view["headers"], json!(["authorization", "x-team"]));
    assert_eq!(view["resource"], format!("{PUBLIC_URL}/mcp/notes"));
    assert_eq!(view["scopes"], json!(["read:notes", "write:notes"]));
}

#[tokio::test]
async fn a_person_who_is_not_admin_may_not_see_servers() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("user@example.com").await;
    let res = app.as_session(&session, Method::GET, "/api/v2/servers").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "admin_required");
}

#[tokio::test]
async fn a_bearer_token_needs_mcp_admin_in_itself() {
    let app = spawn_app().await;
    let admin = app.create_user("admin@example.com", true).await;
    let ordinary = app.issue_direct(&admin, "read:tokens write:tokens").await;
    let res = app.as_bearer(&ordinary, Method::GET, "/api/v2/servers").send().await.unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"mcp:admin\""));
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "insufficient_scope");
    let token = app.issue_direct(&admin, "mcp:admin").await;
    let res = app.as_bearer(&token, Method::GET, "/api/v2/servers").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn reserved_or_malformed_names_and_bad_urls_are_400() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    for (body, code) in [
        (json!({"name": "tasks", "url": "http://127.0.0.1:9/mcp"}), "invalid_name"),
        (json!({"name": "Bad_Name", "url": "http://127.0.0.1:9/mcp"}), "invalid_name"),
        (json!({"name": "ok", "url": "ftp://127.0.0.1/mcp"}), "invalid_server"),
        (json!({"name": "ok", "url": "http://127.0.0.1/mcp", "headers": {"Host": "x"}}), "invalid_server"),
    ] {
        let res = app.as_session(&session, Method::POST, "/api/v2/servers").json(&body).send().await.unwrap();
        assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, code, "{body}");
    }
}

#[tokio::test]
async fn a_taken_name_is_409() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    assert_eq!(add(&app, &session, "notes").await.status(), StatusCode::CREATED);
    assert_eq!(error_code(add(&app, &session, "notes").await, StatusCode::CONFLICT).await.0, "server_exists");
}

#[tokio::test]
async fn server_scopes_are_grantable_once_registered_and_bind_the_token_to_its_resource() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let refused = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:notes"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(refused, StatusCode::BAD_REQUEST).await.0, "unknown_scope");
    add(&app, &session, "notes").await;
    let issued = app.issue(&session, "t", &["read:tasks", "call:notes/add_note"]).await;
    assert_eq!(issued["audience"], json!([format!("{PUBLIC_URL}/mcp"), format!("{PUBLIC_URL}/mcp/notes")]));
    let limits: Value =
        app.as_session(&session, Method::GET, "/api/v2/limits").send().await.unwrap().json().await.unwrap();
    let grantable = limits["grantable_scopes"].as_array().unwrap();
    assert!(grantable.contains(&json!("write:notes")) && !grantable.contains(&json!("mcp:admin")));
}

#[tokio::test]
async fn a_call_scope_for_a_tool_the_server_is_known_not_to_have_is_400_naming_its_tools() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "files").await;
    // Before an upstream listing was seen, any well-formed tool name may be granted.
    let res = set_classes(&app, &session, "files", json!({"wipe": "hidden"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.issue(&session, "early", &["call:files/anything"]).await;
    let server = app.store.get_server("files").await.unwrap().unwrap();
    let listed = |name: &str| tessera_store::DiscoveredTool {
        name: name.into(),
        description: None,
        read_only_hint: None,
        definition: None,
    };
    app.store
        .record_discovered_tools(&server, &[listed("read_file"), listed("wipe")], chrono::Utc::now())
        .await
        .unwrap();
    let typo = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["call:files/reed_file"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(typo, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "unknown_scope");
    assert_eq!(body["details"]["known_tools"], json!(["read_file"]), "hidden tools are not offered");
    assert!(body["message"].as_str().unwrap().contains("read_file"), "{body}");
    app.issue(&session, "right", &["call:files/read_file"]).await;
}

#[tokio::test]
async fn an_unknown_scope_message_names_the_call_form() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:nothing"]}))
        .send()
        .await
        .unwrap();
    let (_, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert!(body["message"].as_str().unwrap().contains("call:SERVER/TOOL"), "{body}");
}

#[tokio::test]
async fn tool_classes_can_be_overridden_before_discovery() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "notes").await;
    let res = set_classes(&app, &session, "notes", json!({"delete_all": "hidden", "list_notes": "read"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tools: Value = app
        .as_session(&session, Method::GET, "/api/v2/servers/notes/tools")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tools[0]["name"], "delete_all");
    assert_eq!(tools[0]["access"], "hidden");
    assert_eq!(tools[0]["scope"], "call:notes/delete_all");
    assert_eq!(tools[1]["access_override"], "read");
    let missing = set_classes(&app, &session, "nope", json!({"x": "read"})).await;
    assert_eq!(error_code(missing, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn the_limits_list_each_server_with_its_tools_that_are_not_hidden() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "notes").await;
    let res = set_classes(&app, &session, "notes", json!({"delete_all": "hidden", "list_notes": "read"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let limits: Value =
        app.as_session(&session, Method::GET, "/api/v2/limits").send().await.unwrap().json().await.unwrap();
    assert_eq!(limits["servers"], json!([{"name": "notes", "description": "notes", "tools": ["list_notes"]}]));
}

#[tokio::test]
async fn anonymous_callers_of_the_limits_learn_nothing_about_registered_servers() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "notes").await;
    let limits: Value = app.request(Method::GET, "/api/v2/limits").send().await.unwrap().json().await.unwrap();
    assert_eq!(limits["servers"], json!([]));
    let grantable = limits["grantable_scopes"].as_array().unwrap();
    assert!(!grantable.iter().any(|s| s.as_str().unwrap().contains("notes")), "{limits}");
}

#[tokio::test]
async fn patching_headers_replaces_them_and_still_hides_values() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "notes").await;
    let res = app
        .as_session(&session, Method::PATCH, "/api/v2/servers/notes")
        .json(&json!({"headers": {"X-Api-Key": SECRET}, "description": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(!body.contains(SECRET));
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["headers"], json!(["x-api-key"]));
    assert_eq!(view["description"], Value::Null);
}

#[tokio::test]
async fn removing_a_server_is_204_then_404_and_its_scopes_leave_tokens() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    add(&app, &session, "notes").await;
    let issued = app.issue(&session, "t", &["read:tasks", "write:notes"]).await;
    let res = app.as_session(&session, Method::DELETE, "/api/v2/servers/notes").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let again = app.as_session(&session, Method::DELETE, "/api/v2/servers/notes").send().await.unwrap();
    assert_eq!(error_code(again, StatusCode::NOT_FOUND).await.0, "not_found");
    let id = issued["id"].as_str().unwrap();
    let token: Value = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["scopes"], json!(["read:tasks"]));
}

/// Registering asks the upstream (here the app's own `/mcp`, a real rmcp server) for its
/// tools with the server's header: they are known before any client lists them.
#[tokio::test]
async fn registering_a_server_lists_its_tools_at_once() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let owner = app.create_user("owner@example.com", false).await;
    let credential = app.issue_direct(&owner, "read:tasks execute:mcp").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "self", "url": app.url("/mcp"), "headers": {"Authorization": format!("Bearer {credential}")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert!(created["tools_discovered"].as_u64().unwrap() >= 1, "{created}");
    assert!(created.get("warning").is_none(), "{created}");
    let tools: Value =
        app.as_session(&session, Method::GET, "/api/v2/servers/self/tools").send().await.unwrap().json().await.unwrap();
    assert!(tools.to_string().contains("\"whoami\""), "{tools}");
}

#[tokio::test]
async fn an_unreachable_server_is_registered_with_a_warning() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let res = add(&app, &session, "notes").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert!(created["warning"].as_str().unwrap().starts_with("could not list the server's tools"), "{created}");
    assert!(created.get("tools_discovered").is_none());
    assert!(!created.to_string().contains(SECRET));
}

#[tokio::test]
async fn a_server_whose_users_bring_their_own_header_says_so_and_is_not_asked_for_tools() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "gh", "url": "http://127.0.0.1:9/mcp",
                      "user_auth": {"kind": "header", "header": "Authorization", "prefix": "Bearer "}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_auth"], json!({"kind": "header", "header": "authorization", "prefix": "Bearer "}));
    assert!(body.get("warning").is_none(), "no discovery without a person's credential: {body}");
    let shown: Value =
        app.as_session(&session, Method::GET, "/api/v2/servers/gh").send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["user_auth"]["header"], "authorization");

    for bad in [json!({"kind": "oauth", "header": "X-Key"}), json!({"kind": "header", "header": "Host"})] {
        let res = app
            .as_session(&session, Method::POST, "/api/v2/servers")
            .json(&json!({"name": "bad", "url": "http://127.0.0.1:9/mcp", "user_auth": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn a_server_whose_users_connect_through_oauth_keeps_the_client_secret_to_itself() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "gh", "url": "http://127.0.0.1:9/mcp",
                      "user_auth": {"kind": "oauth", "client_id": "tessera-at-gh", "client_secret": "s3cret-value", "scope": "repo read:org"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["user_auth"],
        json!({"kind": "oauth", "header": "authorization", "prefix": "Bearer ", "scope": "repo read:org", "client_id": "tessera-at-gh"})
    );
    let shown = app.as_session(&session, Method::GET, "/api/v2/servers/gh").send().await.unwrap().text().await.unwrap();
    assert!(!shown.contains("s3cret-value"), "{shown}");

    for bad in [
        json!({"kind": "oauth", "client_secret": "no id"}),
        json!({"kind": "oauth", "scope": "a\nb"}),
        json!({"kind": "header", "header": "X-Key", "client_id": "x"}),
        json!({"kind": "saml"}),
    ] {
        let res = app
            .as_session(&session, Method::POST, "/api/v2/servers")
            .json(&json!({"name": "bad", "url": "http://127.0.0.1:9/mcp", "user_auth": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
