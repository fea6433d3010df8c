//! `spawn_app()`: the application as `tessera serve` wires it (testkit's `spawn_app`), over
//! real HTTP on 127.0.0.1:0, with a fresh database; these helpers drive its `/api/v2`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tessera_api::ApiConfig;
use tessera_auth::{Metering, Validator};
use tessera_core::KeyRing;
use tessera_core::mint::{MintRequest, mint};
use tessera_core::password::{Password, hash_password};
use tessera_core::scope::ScopeSet;
use tessera_store::{Actor, Store, User};
use tessera_testkit::{SpawnedApp, TokenSpec, Tweaks};

pub const PUBLIC_URL: &str = "http://tessera.test";
pub const PASSWORD: &str = "correct horse battery staple";
const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef-test";

/// A running API and what a test needs to drive it.
pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub validator: Arc<Validator>,
    pub metering: Arc<Metering>,
    pub throttle: Arc<tessera_api::LoginThrottle>,
    pub client: reqwest::Client,
    /// The whole running application.
    pub app: SpawnedApp,
}

/// A signed-in browser: its cookie and CSRF token.
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub session_id: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut ApiConfig) + Send + 'static) -> TestApp {
    let tweaks = Tweaks { api: Some(Box::new(adjust)), ..Tweaks::default() };
    // Usage is flushed by the tests that look at it, never under them by a timer.
    let flags = ["--jwt-secret", JWT_SECRET, "--usage-flush-interval-ms", "3600000"];
    let app = tessera_testkit::spawn_app_with(&flags, tweaks).await;
    TestApp {
        base: app.base.clone(),
        store: app.store.clone(),
        validator: Arc::clone(&app.state.validator),
        metering: Arc::clone(&app.state.metering),
        throttle: Arc::clone(&app.api.throttle),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        app,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request as a signed-in browser (cookie, plus the CSRF token on unsafe methods).
    pub fn as_session(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
        let rb = self.request(method, path).header(COOKIE, &session.cookie);
        if unsafe_method { rb.header("X-CSRF-Token", &session.csrf) } else { rb }
    }

    /// A request with a bearer token.
    pub fn as_bearer(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    pub async fn create_user(&self, email: &str, admin: bool) -> User {
        let hash = hash_password(&Password::new(PASSWORD.to_owned())).unwrap();
        self.store.create_user(email, Some(&hash), admin, &Actor::cli()).await.unwrap()
    }

    pub async fn login_response(&self, email: &str, password: &str) -> Response {
        self.request(Method::POST, "/api/v2/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str) -> Session {
        let res = self.login_response(email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        let set_cookie = res.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let session_id = cookie.split_once('=').unwrap().1.to_owned();
        let body: Value = res.json().await.unwrap();
        Session { cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned(), session_id }
    }

    /// A user with a session.
    pub async fn signed_in(&self, email: &str) -> (User, Session) {
        let user = self.create_user(email, false).await;
        let session = self.login(email).await;
        (user, session)
    }

    /// Issues a token through the API as `session`; returns the response body.
    pub async fn issue(&self, session: &Session, name: &str, scopes: &[&str]) -> Value {
        let res = self
            .as_session(session, Method::POST, "/api/v2/tokens")
            .json(&json!({"name": name, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    /// Issues a token directly in the store (as the CLI would), e.g. an API credential.
    pub async fn issue_direct(&self, user: &User, scopes: &str) -> String {
        let now = Utc::now();
        self.issue_direct_at(user, scopes, now, now + chrono::Duration::days(1)).await
    }

    /// The same, issued at `now` and expiring at `expires_at`.
    pub async fn issue_direct_at(
        &self,
        user: &User,
        scopes: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> String {
        let spec = TokenSpec {
            name: "direct".to_owned(),
            issued_at: now,
            expires_at,
            ..TokenSpec::new(user.id, scopes, PUBLIC_URL, &format!("{PUBLIC_URL}/mcp"))
        };
        spec.insert(&self.store, &self.validator.key_ring()).await.0
    }

    /// A token with `scopes` limited to `per_hour` requests; returns its secret and id.
    pub async fn issue_limited(&self, user: &User, scopes: &str, per_hour: i32) -> (String, uuid::Uuid) {
        let spec = TokenSpec {
            name: "limited".to_owned(),
            rate_limit_per_hour: Some(per_hour),
            ..TokenSpec::new(user.id, scopes, PUBLIC_URL, &format!("{PUBLIC_URL}/mcp"))
        };
        let (secret, record) = spec.insert(&self.store, &self.validator.key_ring()).await;
        (secret, record.id)
    }

    /// A well-formed token signed by `ring` whose row was never stored.
    pub async fn mint_without_row(&self, ring: &KeyRing, user: &User) -> String {
        let now = Utc::now();
        let req = MintRequest {
            issuer: PUBLIC_URL.to_owned(),
            audience: vec![format!("{PUBLIC_URL}/mcp")],
            user_id: user.id,
            scopes: ScopeSet::parse_grant("read:tasks").unwrap(),
            now,
            expires_at: now + chrono::Duration::hours(1),
            jti: uuid::Uuid::now_v7(),
        };
        mint(ring, &req).unwrap().token.into_inner()
    }

    pub async fn validate(&self, token: &str) -> (StatusCode, Value) {
        let res = self.as_bearer(token, Method::POST, "/api/v2/tokens/validate").send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }
}

/// Asserts the one error shape and returns the code.
pub async fn error_code(res: Response, status: StatusCode) -> (String, Value) {
    assert_eq!(res.status(), status);
    let content_type = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "content type {content_type}");
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].is_string(), "no message in {body}");
    (body["error"].as_str().unwrap().to_owned(), body)
}
