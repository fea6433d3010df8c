//! `/scim/v2` (issue #24, docs/scim.md): an identity provider provisions accounts and teams
//! with a token carrying `scim`; deactivation and deletion end a person's access at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_store::Actor;
use tessera_testkit::app::PASSWORD;
use tessera_testkit::{SpawnedApp, spawn_app};

use crate::support::mcp_post;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A running Tessera and an administrator's token carrying `scim`.
struct Scim {
    app: SpawnedApp,
    token: String,
    http: reqwest::Client,
}

async fn scim() -> Scim {
    let app = spawn_app().await;
    let admin = app.user("root@example.com", true).await;
    let (token, _) = app.token(admin.id, "scim").await;
    Scim { app, token, http: reqwest::Client::new() }
}

impl Scim {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = self.http.request(method, self.app.url(&format!("/scim/v2{path}"))).bearer_auth(&self.token);
        let req = match body {
            Some(b) => req.header("content-type", "application/scim+json").body(b.to_string()),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_user(&self, user_name: &str) -> Value {
        let (status, body) = self.call(Method::POST, "/Users", Some(json!({"userName": user_name}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A person with a password, a token carrying `read:tasks execute:mcp`, and a session.
    async fn person(&self, email: &str) -> (uuid::Uuid, String, String) {
        let user = self.app.user(email, false).await;
        let (token, _) = self.app.token(user.id, "read:tasks execute:mcp").await;
        let res = self.login(email).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        (user.id, token, cookie)
    }

    async fn login(&self, email: &str) -> reqwest::Response {
        let body = json!({"email": email, "password": PASSWORD});
        self.http.post(self.app.url("/api/v2/auth/login")).json(&body).send().await.unwrap()
    }

    async fn mcp_status(&self, token: &str) -> StatusCode {
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        mcp_post(&self.http, &self.app.url("/mcp"), token, &ping).await.status()
    }

    async fn session_status(&self, cookie: &str) -> StatusCode {
        let res = self.http.get(self.app.url("/api/v2/auth/me")).header("cookie", cookie).send().await.unwrap();
        res.status()
    }
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

fn assert_scim_error(status: StatusCode, body: &Value, expected: StatusCode, scim_type: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{body}");
    assert_eq!(body["status"], json!(expected.as_str()), "status is a string: {body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
}

#[tokio::test]
async fn only_an_administrators_token_carrying_scim_is_admitted() {
    let s = scim().await;
    let anonymous = s.http.get(s.app.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["content-type"], "application/scim+json");
    let admin = s.app.store.user_by_email("root@example.com").await.unwrap().unwrap();
    let (api_token, _) = s.app.token(admin.id, "read:tokens write:tokens mcp:admin").await;
    let res = s.http.get(s.app.url("/scim/v2/Users")).bearer_auth(&api_token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "mcp:admin does not imply scim");
    let body: Value = res.json().await.unwrap();
    assert_scim_error(StatusCode::FORBIDDEN, &body, StatusCode::FORBIDDEN, None);
    // A row written by hand cannot lend scim to someone who is not an administrator.
    let plain = s.app.user("plain@example.com", false).await;
    let (smuggled, _) = s.app.token(plain.id, "scim").await;
    let res = s.http.get(s.app.url("/scim/v2/Users")).bearer_auth(&smuggled).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_scim_token_cannot_be_issued_to_a_non_administrator_over_the_api() {
    let s = scim().await;
    let user = s.app.user("dev@example.com", false).await;
    let login = s.login("dev@example.com").await;
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let res = s
        .http
        .post(s.app.url("/api/v2/tokens"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "idp", "scopes": ["read:tasks", "scim"], "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "scope_not_allowed", "{body}");
    assert_eq!(body["details"]["missing"], json!(["scim"]));
    assert!(s.app.store.active_token_ids(user.id, chrono::Utc::now()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_user_is_created_without_a_password_and_found_by_username_in_any_case() {
    let s = scim().await;
    let created = s.create_user("5f0c9c1e-2b51-4c2e-9d0e-3d1a2b3c4d5e").await;
    assert_eq!(created["active"], true);
    assert_eq!(
        created["meta"]["location"],
        format!("http://tessera.test/scim/v2/Users/{}", created["id"].as_str().unwrap())
    );
    assert!(created.get("emails").is_none(), "no email was given: {created}");
    let (_, list) =
        s.call(Method::GET, "/Users?filter=USERNAME%20eq%20%225F0C9C1E-2b51-4c2e-9d0e-3d1a2b3c4d5e%22", None).await;
    assert_eq!(list["totalResults"], 1, "{list}");
    assert_eq!(list["Resources"][0]["id"], created["id"]);
    let (status, body) =
        s.call(Method::POST, "/Users", Some(json!({"userName": "5F0C9C1E-2B51-4C2E-9D0E-3D1A2B3C4D5E"}))).await;
    assert_scim_error(status, &body, StatusCode::CONFLICT, Some("uniqueness"));
}

#[tokio::test]
async fn an_account_made_on_the_cli_or_by_sso_is_found_by_its_email_as_username() {
    let s = scim().await;
    s.app.user("alice@example.com", false).await;
    let (_, list) = s.call(Method::GET, "/Users?filter=userName%20eq%20%22Alice@Example.com%22", None).await;
    assert_eq!(list["totalResults"], 1, "{list}");
    let alice = &list["Resources"][0];
    assert_eq!(alice["userName"], "alice@example.com");
    assert_eq!(alice["emails"], json!([{"value": "alice@example.com", "primary": true}]));
}

#[tokio::test]
async fn the_primary_email_becomes_the_login_email_and_external_id_and_display_name_filter() {
    let s = scim().await;
    let body = json!({"userName": "bob", "externalId": "okta-42", "displayName": "Bob B",
        "emails": [{"value": "bob@home.example", "type": "home"}, {"value": "bob@example.com", "type": "work", "primary": true}]});
    let (status, created) = s.call(Method::POST, "/Users", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(s.app.store.user_by_email("bob@example.com").await.unwrap().is_some());
    let (_, by_external) = s.call(Method::GET, "/Users?filter=externalId%20eq%20%22okta-42%22", None).await;
    assert_eq!(by_external["Resources"][0]["id"], created["id"]);
    let (_, by_display) = s.call(Method::GET, "/Users?filter=displayName%20eq%20%22bob%20b%22", None).await;
    assert_eq!(by_display["Resources"][0]["id"], created["id"]);
    let (_, none) = s.call(Method::GET, "/Users?filter=externalId%20eq%20%22OKTA-42%22", None).await;
    assert_eq!(none["totalResults"], 0, "externalId is case-sensitive");
}

#[tokio::test]
async fn users_are_paged_with_start_index_count_and_total_results() {
    let s = scim().await;
    for n in 0..3 {
        s.create_user(&format!("user-{n}")).await;
    }
    let (_, page) = s.call(Method::GET, "/Users?startIndex=2&count=2", None).await;
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone(), page["itemsPerPage"].clone()),
        (json!(4), json!(2), json!(2))
    );
    assert_eq!(page["Resources"][0]["userName"], "user-0", "the administrator is first");
    let (_, only) = s.call(Method::GET, "/Users?count=1&attributes=userName", None).await;
    let first = only["Resources"][0].as_object().unwrap();
    assert!(first.contains_key("userName") && first.contains_key("id") && !first.contains_key("active"), "{first:?}");
}

#[tokio::test]
async fn deactivating_by_patch_ends_tokens_sessions_and_sign_in_at_once_and_reactivation_restores_none() {
    let s = scim().await;
    let (id, token, cookie) = s.person("leaver@example.com").await;
    assert_eq!(s.mcp_status(&token).await, StatusCode::OK);
    let ops = patch(json!([{"op": "Replace", "path": "active", "value": false}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Users/{id}"), Some(ops)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(s.mcp_status(&token).await, StatusCode::UNAUTHORIZED, "the token stops at once");
    assert_eq!(s.session_status(&cookie).await, StatusCode::UNAUTHORIZED, "the session ended");
    assert_eq!(s.login("leaver@example.com").await.status(), StatusCode::UNAUTHORIZED, "sign-in refused");

    let ops = patch(json!([{"op": "replace", "value": {"active": true}}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Users/{id}"), Some(ops)).await;
    assert_eq!((status, body["active"].clone()), (StatusCode::OK, json!(true)), "{body}");
    assert_eq!(s.login("leaver@example.com").await.status(), StatusCode::OK);
    assert_eq!(s.mcp_status(&token).await, StatusCode::UNAUTHORIZED, "old tokens stay revoked");
}

#[tokio::test]
async fn oktas_pathless_patch_deactivates_too() {
    let s = scim().await;
    let (id, token, _) = s.person("okta@example.com").await;
    let ops = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Users/{id}"), Some(ops)).await;
    assert_eq!((status, body["active"].clone()), (StatusCode::OK, json!(false)), "{body}");
    assert_eq!(s.mcp_status(&token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deleted_user_vanishes_from_scim_and_can_neither_sign_in_nor_use_a_token() {
    let s = scim().await;
    let (id, token, cookie) = s.person("gone@example.com").await;
    let (status, body) = s.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    let (_, list) = s.call(Method::GET, "/Users?filter=userName%20eq%20%22gone@example.com%22", None).await;
    assert_eq!(list["totalResults"], 0);
    assert_eq!(s.mcp_status(&token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.session_status(&cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.login("gone@example.com").await.status(), StatusCode::UNAUTHORIZED);
    let revived = s.app.store.set_user_active(id, true, chrono::Utc::now(), &Actor::cli()).await;
    assert!(revived.is_err(), "a deleted account is never reactivated");
    // The same person can be provisioned again: a new account, none of the old tokens.
    let again = s.create_user("gone@example.com").await;
    assert_ne!(again["id"], json!(id));
}

#[tokio::test]
async fn the_provisioning_account_cannot_deactivate_itself() {
    let s = scim().await;
    let admin = s.app.store.user_by_email("root@example.com").await.unwrap().unwrap();
    let ops = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Users/{}", admin.id), Some(ops)).await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("mutability"));
}

#[tokio::test]
async fn every_team_is_a_group_and_everyone_is_listed_but_never_changed() {
    let s = scim().await;
    s.app.store.create_team(&Actor::cli(), "ops", &["read:tasks".to_owned()], &[], chrono::Utc::now()).await.unwrap();
    let (_, list) = s.call(Method::GET, "/Groups", None).await;
    let names: Vec<&str> =
        list["Resources"].as_array().unwrap().iter().map(|g| g["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["everyone", "ops"]);
    let everyone = list["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = s.call(Method::DELETE, &format!("/Groups/{everyone}"), None).await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("mutability"));
    let rename = patch(json!([{"op": "replace", "path": "displayName", "value": "all"}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Groups/{everyone}"), Some(rename)).await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("mutability"));
}

#[tokio::test]
async fn posting_a_group_with_an_existing_teams_name_joins_that_team() {
    let s = scim().await;
    s.app
        .store
        .create_team(&Actor::cli(), "Dev Team", &["read:tasks".to_owned()], &[], chrono::Utc::now())
        .await
        .unwrap();
    let alice = s.create_user("alice@example.com").await;
    let body = json!({"displayName": "Dev Team", "members": [{"value": alice["id"]}]});
    let (status, group) = s.call(Method::POST, "/Groups", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "joined, not 409: {group}");
    assert_eq!(group["members"][0]["value"], alice["id"]);
    let team = s.app.store.team("Dev Team").await.unwrap().unwrap();
    assert_eq!(
        (team.members, team.allowance),
        (vec!["alice@example.com".to_owned()], Some(vec!["read:tasks".to_owned()]))
    );
}

#[tokio::test]
async fn a_new_group_accepts_a_uuid_name_and_allows_what_everyone_allows() {
    let s = scim().await;
    let name = "0b7c2f4e-6a55-4f1e-8a77-1c2d3e4f5a6b";
    let (status, group) =
        s.call(Method::POST, "/Groups", Some(json!({"displayName": name, "externalId": "g-1"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["externalId"], "g-1");
    assert_eq!(s.app.store.team(name).await.unwrap().unwrap().allowance, None, "everyone allows every scope");
    let rename = patch(json!([{"op": "Replace", "path": "displayName", "value": "Platform Engineers"}]));
    let (status, body) =
        s.call(Method::PATCH, &format!("/Groups/{}", group["id"].as_str().unwrap()), Some(rename)).await;
    assert_eq!((status, body["displayName"].clone()), (StatusCode::OK, json!("Platform Engineers")), "{body}");
    let (_, found) = s.call(Method::GET, "/Groups?filter=displayName%20eq%20%22platform%20engineers%22", None).await;
    assert_eq!(found["totalResults"], 1, "{found}");
}

#[tokio::test]
async fn removing_a_member_by_patch_narrows_their_tokens_at_once() {
    let s = scim().await;
    let now = chrono::Utc::now();
    s.app.store.create_team(&Actor::cli(), "writers", &["write:tasks".to_owned()], &[], now).await.unwrap();
    s.app.store.set_team_allowance(&Actor::cli(), "everyone", &["read:tasks".to_owned()], now).await.unwrap();
    let user = s.app.user("writer@example.com", false).await;
    s.app.store.set_team_member(&Actor::cli(), "writers", user.id, true).await.unwrap();
    let (_, token_id) = s.app.token(user.id, "read:tasks write:tasks").await;
    let team = s.app.store.team("writers").await.unwrap().unwrap();
    let ops = patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", user.id)}]));
    let (status, body) = s.call(Method::PATCH, &format!("/Groups/{}", team.id), Some(ops)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("members").is_none(), "{body}");
    let token = s.app.store.get_token(token_id).await.unwrap().unwrap();
    assert_eq!(token.scopes, ["read:tasks"], "narrowed to everyone's allowance, still active");
    assert!(token.revoked_at.is_none());
}

#[tokio::test]
async fn entras_add_members_then_delete_the_group() {
    let s = scim().await;
    let a = s.create_user("a@example.com").await;
    let (_, group) = s.call(Method::POST, "/Groups", Some(json!({"displayName": "entra group"}))).await;
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let ops = patch(json!([{"op": "Add", "path": "members", "value": [{"value": a["id"]}]}]));
    let (status, body) = s.call(Method::PATCH, &path, Some(ops)).await;
    assert_eq!((status, body["members"][0]["value"].clone()), (StatusCode::OK, a["id"].clone()), "{body}");
    let (status, _) = s.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(s.app.store.team("entra group").await.unwrap().is_none());
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_in_scims_shape() {
    let s = scim().await;
    let big = json!({"userName": "x".repeat(1024 * 1024 + 1)});
    let (status, body) = s.call(Method::POST, "/Users", Some(big)).await;
    assert_scim_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, None);
}

#[tokio::test]
async fn bad_requests_get_scim_errors_with_their_scim_type() {
    let s = scim().await;
    let (status, body) = s.call(Method::GET, "/Users?filter=userName%20co%20%22a%22", None).await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let (status, body) = s.call(Method::POST, "/Users", Some(json!({"displayName": "no user name"}))).await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("invalidValue"));
    let (status, body) = s.call(Method::GET, "/Users/not-a-uuid", None).await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    let (status, body) = s.call(Method::GET, "/Nope", None).await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    let (status, body) = s.call(Method::POST, "/Schemas", Some(json!({}))).await;
    assert_scim_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None);
}

#[tokio::test]
async fn scim_calls_spend_the_tokens_rate_limit_like_the_api() {
    let s = scim().await;
    let admin = s.app.store.user_by_email("root@example.com").await.unwrap().unwrap();
    let spec = tessera_testkit::TokenSpec {
        rate_limit_per_hour: Some(1),
        issued_at: chrono::Utc::now(),
        ..s.app.token_spec(admin.id, "scim")
    };
    let (limited, _) = s.app.insert_token(&spec).await;
    let get = || s.http.get(s.app.url("/scim/v2/ServiceProviderConfig")).bearer_auth(&limited).send();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    let res = get().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_scim_error(StatusCode::TOO_MANY_REQUESTS, &body, StatusCode::TOO_MANY_REQUESTS, None);
}

#[tokio::test]
async fn scim_changes_are_audited_with_the_scim_token_as_actor() {
    let s = scim().await;
    let created = s.create_user("audited").await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let ops = patch(json!([{"op": "replace", "path": "displayName", "value": "Audited Person"}]));
    assert_eq!(s.call(Method::PATCH, &path, Some(ops)).await.0, StatusCode::OK);
    assert_eq!(s.call(Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    let (_, group) = s.call(Method::POST, "/Groups", Some(json!({"displayName": "audited team"}))).await;
    assert!(group["id"].is_string(), "{group}");
    let events = s.app.store.recent_audit(20).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for action in ["user.create", "user.update", "user.disable", "user.delete", "team.change"] {
        let event = events.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action} in {actions:?}"));
        assert!(event.actor_token_id.is_some(), "{action} names the SCIM token");
    }
}
