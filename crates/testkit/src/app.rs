//! `spawn_app()`: the application exactly as `tessera serve` wires it (the same
//! `AppState` and `Application::build_with`), on a fresh test database and a real loopback
//! port, with builders for users and tokens.

use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use chrono::Utc;
use clap::Parser;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::password::{Password, hash_password};
use tessera_store::{Actor, Store, User};

pub use tessera::server::Tweaks;

use crate::{TokenSpec, fresh_db};

/// The public URL every spawned app claims (requests reach it on 127.0.0.1).
pub const PUBLIC_URL: &str = "http://tessera.test";
/// The MCP resource, the audience of the tokens the app accepts.
pub const MCP_RESOURCE: &str = "http://tessera.test/mcp";
/// The password of users made by [`SpawnedApp::user`].
pub const PASSWORD: &str = "correct horse battery staple";

/// A running application and what a test needs to drive it.
pub struct SpawnedApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The bound port.
    pub port: u16,
    /// The store of this test's database.
    pub store: Store,
    /// The composition root's wiring: store, validator, metering, settings.
    pub state: AppState,
    /// The REST API's state.
    pub api: tessera_api::ApiState,
    /// The MCP face's state (`None` when `--roles` leaves it out).
    pub mcp: Option<tessera_mcp::McpState>,
    /// Stops the server.
    pub handle: ServerHandle,
}

/// The app with `tessera serve`'s defaults on a fresh database.
pub async fn spawn_app() -> SpawnedApp {
    spawn_app_with(&[], Tweaks::default()).await
}

/// The app on a fresh database, configured by `flags` (as on `tessera serve`'s command line,
/// e.g. `["--jwt-secret", "..."]`) and `tweaks`.
pub async fn spawn_app_with(flags: &[&str], tweaks: Tweaks) -> SpawnedApp {
    let db = fresh_db().await;
    spawn_app_on(db.store, flags, tweaks).await
}

/// The same over a given store (two instances can share one database).
pub async fn spawn_app_on(store: Store, flags: &[&str], tweaks: Tweaks) -> SpawnedApp {
    let mut args = vec!["tessera", "--public-url", PUBLIC_URL];
    if !flags.contains(&"--workers") {
        args.extend(["--workers", "2"]);
    }
    args.extend_from_slice(flags);
    args.push("serve");
    let settings = Cli::try_parse_from(args).expect("flags").settings;
    let state = AppState::for_store(store.clone(), settings).await.expect("wire the app");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let app = Application::build_with(state.clone(), listener, tweaks).expect("build the app");
    let (port, handle, api, mcp) = (app.port(), app.handle(), app.api().clone(), app.mcp().cloned());
    tokio::spawn(app.run());
    SpawnedApp { base: format!("http://127.0.0.1:{port}"), port, store, state, api, mcp, handle }
}

impl SpawnedApp {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user (an administrator when `admin`) whose password is [`PASSWORD`].
    pub async fn user(&self, email: &str, admin: bool) -> User {
        let hash = hash_password(&Password::new(PASSWORD.to_owned())).expect("hash");
        self.store.create_user(email, Some(&hash), admin, &Actor::cli()).await.expect("create user")
    }

    /// A token row for `user_id` with `scopes`, signed by this app's keys, for `spec`'s
    /// adjustments start from [`SpawnedApp::token_spec`].
    pub fn token_spec(&self, user_id: uuid::Uuid, scopes: &str) -> TokenSpec {
        TokenSpec::new(user_id, scopes, PUBLIC_URL, MCP_RESOURCE)
    }

    /// Stores `spec` signed with this app's keys; returns the secret and the row's id.
    pub async fn insert_token(&self, spec: &TokenSpec) -> (String, uuid::Uuid) {
        let (secret, record) = spec.insert(&self.store, &self.state.validator.key_ring()).await;
        (secret, record.id)
    }

    /// A one-day token with `scopes` for `user_id`; returns the secret and the row's id.
    pub async fn token(&self, user_id: uuid::Uuid, scopes: &str) -> (String, uuid::Uuid) {
        let spec = TokenSpec { issued_at: Utc::now(), ..self.token_spec(user_id, scopes) };
        self.insert_token(&spec).await
    }
}
