//! Alert webhooks (issue #17): each event reaches a loopback receiver, signed; a failed
//! delivery is retried; the request that caused an event never waits for the receiver.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{Duration, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::alerts::signature;
use tessera_store::{Actor, User};
use tessera_testkit::{TokenSpec, fresh_db};
use tokio::sync::{Semaphore, mpsc};

/// A bound on every wait, so a broken dispatcher fails the test instead of hanging it.
const PATIENCE: StdDuration = StdDuration::from_secs(15);

/// What the receiver got.
struct Received {
    timestamp: String,
    signature: String,
    event: String,
    body: Vec<u8>,
}

#[derive(Clone)]
struct ReceiverState {
    got: mpsc::UnboundedSender<Received>,
    /// Statuses to answer with, in order; 200 once empty.
    statuses: Arc<Mutex<VecDeque<u16>>>,
    /// Each answer waits for a permit.
    gate: Arc<Semaphore>,
}

/// A loopback webhook receiver.
struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<Received>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
    gate: Arc<Semaphore>,
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<ReceiverState>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let _ = state.got.send(Received {
        timestamp: header("tessera-timestamp"),
        signature: header("tessera-signature"),
        event: header("tessera-event"),
        body: body.to_vec(),
    });
    let _permit = state.gate.acquire().await;
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

fn receiver() -> Receiver {
    let (tx, got) = mpsc::unbounded_channel();
    let statuses = Arc::new(Mutex::new(VecDeque::new()));
    let gate = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let state = ReceiverState { got: tx, statuses: Arc::clone(&statuses), gate: Arc::clone(&gate) };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let server =
        HttpServer::new(move || App::new().app_data(web::Data::new(state.clone())).default_service(web::to(receive)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
    tokio::spawn(server);
    Receiver { url, got, statuses, gate }
}

impl Receiver {
    /// The next delivery of `kind` (others are skipped), its signature checked with `secret`.
    async fn next(&mut self, kind: &str, secret: &str) -> Value {
        loop {
            let got = tokio::time::timeout(PATIENCE, self.got.recv()).await.expect("no delivery came").unwrap();
            let ts: i64 = got.timestamp.parse().expect("a numeric Tessera-Timestamp");
            assert!((Utc::now().timestamp() - ts).abs() < 300, "a fresh timestamp");
            assert_eq!(got.signature, signature(secret, ts, &got.body), "a valid signature");
            let body: Value = serde_json::from_slice(&got.body).unwrap();
            assert_eq!(body["type"], got.event);
            if body["type"] == kind {
                return body;
            }
        }
    }
}

struct Setup {
    base: String,
    state: AppState,
    user: User,
    /// A `read:tokens write:tokens` token of `user` to call the API with.
    admin_token: String,
}

async fn spawn(flags: &[&str]) -> Setup {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut args = vec![
        "tessera",
        "--jwt-secret",
        "0123456789abcdef0123456789abcdef",
        "--public-url",
        &base,
        "--webhooks-allow-local",
        "--alert-dispatch-interval-ms",
        "50",
        "--alert-scan-interval-ms",
        "100",
        "--webhook-retry-base-ms",
        "100",
    ];
    args.extend_from_slice(flags);
    args.push("serve");
    let state = AppState::for_store(db.store.clone(), Cli::parse_from(args).settings).await.unwrap();
    let user = db.store.create_user("watcher@example.com", None, false, &Actor::cli()).await.unwrap();
    // Outlives every token the tests make, so it may rotate them.
    let (admin_token, _) =
        token(&state, &user, "read:tokens write:tokens", |spec| spec.expires_at += Duration::days(30)).await;
    let app = Application::build(state.clone(), listener).unwrap();
    tokio::spawn(app.run());
    // The database outlives the test's server.
    std::mem::forget(db);
    Setup { base, state, user, admin_token }
}

async fn token(
    state: &AppState,
    user: &User,
    scopes: &str,
    adjust: impl FnOnce(&mut TokenSpec),
) -> (String, tessera_store::TokenRecord) {
    let mut spec = TokenSpec::new(user.id, scopes, &state.settings.issuer(), &state.settings.mcp_resource());
    spec.expires_at = spec.issued_at + Duration::days(30);
    adjust(&mut spec);
    spec.insert(&state.store, &state.validator.key_ring()).await
}

impl Setup {
    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().request(method, format!("{}{path}", self.base)).bearer_auth(&self.admin_token)
    }

    /// Registers a webhook to `url`; returns its id and secret.
    async fn webhook(&self, url: &str) -> (String, String) {
        let res = self.api(reqwest::Method::POST, "/api/v2/webhooks").json(&json!({"url": url})).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
    }

    async fn revoke(&self, id: uuid::Uuid) {
        let res = self.api(reqwest::Method::DELETE, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test]
async fn revoking_a_token_delivers_a_signed_token_revoked_event() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (_, target) = token(&app.state, &app.user, "read:tasks", |_| {}).await;
    app.revoke(target.id).await;
    let body = hook.next("token.revoked", &secret).await;
    assert_eq!(body["token"]["id"], target.id.to_string());
    assert!(body["text"].as_str().unwrap().contains("token.revoked"), "Slack-compatible `text`");
}

#[tokio::test]
async fn a_delivery_answered_500_is_retried_until_delivered() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    hook.statuses.lock().unwrap().push_back(500);
    let (hook_id, secret) = app.webhook(&hook.url).await;
    let (_, target) = token(&app.state, &app.user, "read:tasks", |_| {}).await;
    app.revoke(target.id).await;
    let first = hook.next("token.revoked", &secret).await;
    let second = hook.next("token.revoked", &secret).await;
    assert_eq!(first["id"], second["id"], "the same event, again");
    // The log says so once the dispatcher has recorded the second answer.
    let log = loop {
        let log: Value = app
            .api(reqwest::Method::GET, &format!("/api/v2/webhooks/{hook_id}/deliveries"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if log[0]["state"] == "delivered" {
            break log;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status"], 200);
}

#[tokio::test]
async fn the_request_that_causes_an_event_does_not_wait_for_the_receiver() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    // The receiver holds every answer until released.
    hook.gate.forget_permits(Semaphore::MAX_PERMITS);
    let (_, secret) = app.webhook(&hook.url).await;
    let (_, target) = token(&app.state, &app.user, "read:tasks", |_| {}).await;
    app.revoke(target.id).await;
    // The revocation has answered; the receiver has not answered anything yet.
    hook.next("token.revoked", &secret).await;
    hook.gate.add_permits(10);
}

#[tokio::test]
async fn rotating_delivers_token_rotated_then_grace_ending() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (_, target) = token(&app.state, &app.user, "read:tokens", |_| {}).await;
    let res = app
        .api(reqwest::Method::POST, &format!("/api/v2/tokens/{}/rotate", target.id))
        .json(&json!({"grace_seconds": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let rotated = hook.next("token.rotated", &secret).await;
    assert_eq!(rotated["token"]["id"], target.id.to_string());
    let ending = hook.next("token.grace_ending", &secret).await;
    assert_eq!(ending["token"]["id"], target.id.to_string());
}

#[tokio::test]
async fn a_token_expiring_within_seven_days_gets_one_expiring_alert() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (_, soon) = token(&app.state, &app.user, "read:tasks", |spec| {
        spec.issued_at = Utc::now() - Duration::days(25);
        spec.expires_at = Utc::now() + Duration::days(5);
    })
    .await;
    let body = hook.next("token.expiring", &secret).await;
    assert_eq!(body["token"]["id"], soon.id.to_string());
    assert_eq!(body["details"]["notice_days"], 7);
    // Later scans write nothing more for this notice; the token page lists it once.
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    let alerts: Value = app
        .api(reqwest::Method::GET, &format!("/api/v2/tokens/{}/alerts", soon.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expiring: Vec<&Value> = alerts.as_array().unwrap().iter().filter(|a| a["kind"] == "token.expiring").collect();
    assert_eq!(expiring.len(), 1, "{alerts}");
}

#[tokio::test]
async fn the_first_429_of_an_hour_delivers_token_rate_limited() {
    let app = spawn(&[]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (limited, record) =
        token(&app.state, &app.user, "read:tokens", |spec| spec.rate_limit_per_hour = Some(60)).await;
    let call = || reqwest::Client::new().get(format!("{}/api/v2/tokens", app.base)).bearer_auth(&limited).send();
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 429);
    assert_eq!(call().await.unwrap().status(), 429);
    let body = hook.next("token.rate_limited", &secret).await;
    assert_eq!(body["token"]["id"], record.id.to_string());
    assert_eq!(body["details"]["limit_scope"], "token");
}

#[tokio::test]
async fn a_burst_of_401s_for_one_token_delivers_token_auth_failures() {
    let app = spawn(&["--alert-auth-failures", "3"]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (revoked, record) = token(&app.state, &app.user, "read:tasks", |_| {}).await;
    app.revoke(record.id).await;
    for _ in 0..3 {
        let res = reqwest::Client::new()
            .post(format!("{}/mcp", app.base))
            .bearer_auth(&revoked)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let body = hook.next("token.auth_failures", &secret).await;
    assert_eq!(body["token"]["id"], record.id.to_string());
    assert_eq!(body["details"]["failures"], 3);
}

#[tokio::test]
async fn revoked_token_401s_at_the_api_count_toward_token_auth_failures() {
    let app = spawn(&["--alert-auth-failures", "2"]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (revoked, record) = token(&app.state, &app.user, "read:tokens", |_| {}).await;
    app.revoke(record.id).await;
    for _ in 0..2 {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v2/tokens", app.base))
            .bearer_auth(&revoked)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let body = hook.next("token.auth_failures", &secret).await;
    assert_eq!(body["token"]["id"], record.id.to_string());
}

#[tokio::test]
async fn use_from_a_second_network_delivers_token_new_network() {
    let app = spawn(&["--trusted-proxies", "127.0.0.1/32"]).await;
    let mut hook = receiver();
    let (_, secret) = app.webhook(&hook.url).await;
    let (used, record) = token(&app.state, &app.user, "read:tokens", |_| {}).await;
    let call = |from: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/api/v2/tokens", app.base))
            .bearer_auth(&used)
            .header("X-Forwarded-For", from)
            .send()
    };
    // One writer takes the signals in order: the first network is recorded before the second.
    assert_eq!(call("203.0.113.5").await.unwrap().status(), 200);
    assert_eq!(call("198.51.100.7").await.unwrap().status(), 200);
    let body = hook.next("token.new_network", &secret).await;
    assert_eq!(body["token"]["id"], record.id.to_string());
    assert_eq!(body["details"]["network"], "198.51.100.0/24");
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_without_the_flag() {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let args = ["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--public-url", &base, "serve"];
    let state = AppState::for_store(db.store.clone(), Cli::parse_from(args).settings).await.unwrap();
    let user = db.store.create_user("ssrf@example.com", None, false, &Actor::cli()).await.unwrap();
    let (api_token, _) = token(&state, &user, "read:tokens write:tokens", |_| {}).await;
    tokio::spawn(Application::build(state, listener).unwrap().run());
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v2/webhooks"))
        .bearer_auth(&api_token)
        .json(&json!({"url": "http://169.254.169.254/latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "private_target");
}

#[tokio::test]
async fn a_users_webhook_gets_only_their_tokens_events_and_an_admins_all_users_webhook_gets_everyones() {
    let app = spawn(&[]).await;
    let mut own = receiver();
    let (_, own_secret) = app.webhook(&own.url).await;
    // Another user's webhook, and an admin's for every user.
    let other = app.state.store.create_user("other@example.com", None, false, &Actor::cli()).await.unwrap();
    let boss = app.state.store.create_user("boss@example.com", None, true, &Actor::cli()).await.unwrap();
    let (other_token, _) = token(&app.state, &other, "read:tokens write:tokens", |_| {}).await;
    let (boss_token, _) = token(&app.state, &boss, "read:tokens write:tokens", |_| {}).await;
    let mut others = receiver();
    let mut everyone = receiver();
    let register = |bearer: &str, body: Value| {
        reqwest::Client::new()
            .post(format!("{}/api/v2/webhooks", app.base))
            .bearer_auth(bearer.to_owned())
            .json(&body)
            .send()
    };
    let res = register(&other_token, json!({"url": others.url, "all_users": true})).await.unwrap();
    assert_eq!(res.status(), 403, "all_users is for administrators");
    let res = register(&other_token, json!({"url": others.url, "events": ["token.revoked"]})).await.unwrap();
    assert_eq!(res.status(), 201);
    let others_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // An admin's ordinary token is ordinary: cross-user power needs a session or mcp:admin.
    let res = register(&boss_token, json!({"url": everyone.url, "all_users": true})).await.unwrap();
    assert_eq!(res.status(), 403);
    let (boss_admin_token, _) = token(&app.state, &boss, "read:tokens write:tokens mcp:admin", |_| {}).await;
    let res = register(&boss_admin_token, json!({"url": everyone.url, "all_users": true})).await.unwrap();
    assert_eq!(res.status(), 201);
    let everyone_secret = res.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();

    let (_, mine) = token(&app.state, &app.user, "read:tasks", |_| {}).await;
    app.revoke(mine.id).await;
    assert_eq!(own.next("token.revoked", &own_secret).await["token"]["id"], mine.id.to_string());
    assert_eq!(everyone.next("token.revoked", &everyone_secret).await["token"]["id"], mine.id.to_string());
    // Deliveries are made with the event itself: the other user's webhook has none.
    let log: Value = reqwest::Client::new()
        .get(format!("{}/api/v2/webhooks/{others_id}/deliveries", app.base))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log, json!([]), "another user's webhook got this user's event");
    assert!(others.got.try_recv().is_err());
}

#[tokio::test]
async fn a_webhook_can_be_read_changed_and_deleted_by_its_owner_only() {
    let app = spawn(&[]).await;
    let (id, _) = app.webhook("http://127.0.0.1:9/a").await;
    let path = format!("/api/v2/webhooks/{id}");
    let res = app.api(reqwest::Method::PATCH, &path).json(&json!({"events": ["token.revoked"]})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = app.api(reqwest::Method::GET, &path).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["events"], json!(["token.revoked"]));
    assert!(got.get("secret").is_none(), "the secret is shown only at creation");
    let res = app.api(reqwest::Method::PATCH, &path).json(&json!({"events": ["token.nope"]})).send().await.unwrap();
    assert_eq!(res.status(), 400);

    let stranger = app.state.store.create_user("stranger@example.com", None, false, &Actor::cli()).await.unwrap();
    let (theirs, _) = token(&app.state, &stranger, "read:tokens write:tokens", |_| {}).await;
    let as_stranger = reqwest::Client::new().delete(format!("{}{path}", app.base)).bearer_auth(&theirs);
    assert_eq!(as_stranger.send().await.unwrap().status(), 404, "another user's webhook is not found");

    assert_eq!(app.api(reqwest::Method::DELETE, &path).send().await.unwrap().status(), 204);
    assert_eq!(app.api(reqwest::Method::GET, &path).send().await.unwrap().status(), 404);
}
