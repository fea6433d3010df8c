//! Connected accounts, header mode (issue #25): each person reaches an upstream with their
//! own credential. The upstream is this process's built-in `/mcp` (a real MCP resource
//! server); each person connects a Tessera token of a different upstream identity, and its
//! `whoami` says whose credential arrived.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_store::{Actor, User};
use tessera_testkit::TokenSpec;
use tessera_tokens::PersonalHeader;

use crate::gateway::{Gateway, call, spawn};

/// `spawn()` with server `mine` (the built-in `/mcp`, no shared credential) whose users
/// bring their own bearer token.
async fn with_personal_server() -> Gateway {
    let gw = spawn().await;
    gw.register("mine", &format!("{}/mcp", gw.base), &[]).await;
    let personal = PersonalHeader::new("Authorization", "Bearer ").unwrap();
    gw.state.servers.set_personal_header(&Actor::cli(), "mine", Some(&personal)).await.unwrap();
    gw
}

/// An upstream identity: a user of the upstream and a token of theirs for it.
async fn upstream_identity(gw: &Gateway, email: &str) -> (User, String) {
    let user = gw.store.create_user(email, None, false, &Actor::cli()).await.unwrap();
    let spec = TokenSpec::new(user.id, "read:tasks execute:mcp", &gw.base, &format!("{}/mcp", gw.base));
    let (secret, _) = spec.insert(&gw.store, &gw.state.validator.key_ring()).await;
    (user, secret)
}

/// A Tessera person with a client token for `/mcp/mine`.
async fn person(gw: &Gateway) -> (uuid::Uuid, String) {
    let (token, id) = gw.token_and_id("write:mine execute:mcp").await;
    let user_id: uuid::Uuid = sqlx::query_scalar("SELECT user_id FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_one(gw.store.pool())
        .await
        .unwrap();
    (user_id, token)
}

async fn whoami(gw: &Gateway, token: &str) -> Value {
    let res = gw.rpc("mine", token, call("whoami", json!({}))).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn subject(answer: &Value) -> String {
    let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{answer}"));
    serde_json::from_str::<Value>(text).unwrap()["sub"].as_str().unwrap().to_owned()
}

fn assert_connect_required(answer: &Value, base: &str) {
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    assert_eq!(answer["error"]["data"]["elicitations"][0]["mode"], "url");
    let url = answer["error"]["data"]["elicitations"][0]["url"].as_str().unwrap();
    // The link names the person it was made for.
    assert!(url.starts_with(&format!("{base}/#/connections/mine?for=")), "{url}");
    assert!(answer["error"]["message"].as_str().unwrap().contains(url), "plain clients see the URL too");
}

#[tokio::test]
async fn a_person_who_has_not_connected_gets_the_connect_url_as_a_url_elicitation_error() {
    let gw = with_personal_server().await;
    let (_, token) = person(&gw).await;
    assert_connect_required(&whoami(&gw, &token).await, &gw.base);
}

#[tokio::test]
async fn two_people_reach_the_upstream_each_as_their_own_identity() {
    let gw = with_personal_server().await;
    let (ann_upstream, ann_secret) = upstream_identity(&gw, "ann-upstream@example.com").await;
    let (bo_upstream, bo_secret) = upstream_identity(&gw, "bo-upstream@example.com").await;
    let (ann, ann_token) = person(&gw).await;
    let (bo, bo_token) = person(&gw).await;
    let now = chrono::Utc::now();
    gw.state.servers.connect(&Actor::cli(), ann, "mine", &ann_secret, now).await.unwrap();
    gw.state.servers.connect(&Actor::cli(), bo, "mine", &bo_secret, now).await.unwrap();

    assert_eq!(subject(&whoami(&gw, &ann_token).await), ann_upstream.id.to_string());
    assert_eq!(subject(&whoami(&gw, &bo_token).await), bo_upstream.id.to_string());
}

#[tokio::test]
async fn disconnecting_sends_the_person_back_to_the_connect_url() {
    let gw = with_personal_server().await;
    let (_, secret) = upstream_identity(&gw, "ann-upstream@example.com").await;
    let (ann, token) = person(&gw).await;
    gw.state.servers.connect(&Actor::cli(), ann, "mine", &secret, chrono::Utc::now()).await.unwrap();
    assert!(whoami(&gw, &token).await["result"].is_object());
    assert!(gw.state.servers.disconnect(&Actor::cli(), ann, "mine").await.unwrap());
    assert_connect_required(&whoami(&gw, &token).await, &gw.base);
}

#[tokio::test]
async fn a_credential_the_upstream_no_longer_accepts_asks_the_person_to_connect_again() {
    let gw = with_personal_server().await;
    let (ann, token) = person(&gw).await;
    gw.state
        .servers
        .connect(&Actor::cli(), ann, "mine", "not-a-token-the-upstream-knows", chrono::Utc::now())
        .await
        .unwrap();
    assert_connect_required(&whoami(&gw, &token).await, &gw.base);
}

#[tokio::test]
async fn a_deactivated_persons_connections_are_forgotten() {
    let gw = with_personal_server().await;
    let (_, secret) = upstream_identity(&gw, "ann-upstream@example.com").await;
    let (ann, _) = person(&gw).await;
    gw.state.servers.connect(&Actor::cli(), ann, "mine", &secret, chrono::Utc::now()).await.unwrap();
    assert_eq!(gw.state.servers.connections(Some(ann)).await.unwrap().len(), 1);
    gw.store.set_user_active(ann, false, chrono::Utc::now(), &Actor::cli()).await.unwrap();
    assert!(gw.state.servers.connections(Some(ann)).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_connections_api_stores_a_value_it_never_shows_again() {
    let gw = with_personal_server().await;
    let (_, secret) = upstream_identity(&gw, "ann-upstream@example.com").await;
    let (ann_id, mcp_token) = person(&gw).await;
    // A token for the API (read:tokens/write:tokens) of the same person.
    let spec = TokenSpec::new(ann_id, "read:tokens write:tokens", &gw.base, &format!("{}/mcp", gw.base));
    let (api_token, _) = spec.insert(&gw.store, &gw.state.validator.key_ring()).await;
    let api = |m: reqwest::Method, path: &str| {
        gw.client.request(m, format!("{}/api/v2{path}", gw.base)).bearer_auth(&api_token)
    };

    let before: Value = api(reqwest::Method::GET, "/connections").send().await.unwrap().json().await.unwrap();
    assert_eq!(before["connections"][0]["server"], "mine");
    assert_eq!(before["connections"][0]["connected_at"], Value::Null);

    let res = api(reqwest::Method::PUT, "/connections/mine").json(&json!({"value": secret})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let after = api(reqwest::Method::GET, "/connections").send().await.unwrap().text().await.unwrap();
    assert!(!after.contains(&secret), "never shown again");
    let after: Value = serde_json::from_str(&after).unwrap();
    assert!(after["connections"][0]["connected_at"].is_string());
    assert!(whoami(&gw, &mcp_token).await["result"].is_object());

    let res = api(reqwest::Method::PUT, "/connections/up").json(&json!({"value": "x"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_connectable");
    let res =
        api(reqwest::Method::PUT, "/connections/mine").json(&json!({"value": "bad\nvalue"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let res = api(reqwest::Method::DELETE, "/connections/mine").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_connect_required(&whoami(&gw, &mcp_token).await, &gw.base);
}
