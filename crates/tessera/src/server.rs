//! The HTTP server: the composition root of `tessera serve` (API, MCP, UI, health and readiness, by role).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tessera_auth::{Metering, Validator};
use tessera_core::sealed::SealKey;
use tessera_store::Store;
use tessera_tokens::ServerService;

use crate::access_log::PathOnlySpan;
use crate::config::{Role, Settings};
use crate::database::Database;
use crate::error::CliError;
use tracing_actix_web::TracingLogger;

/// Everything a request handler may need.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The one token validator of this process (shared by every worker and face).
    pub validator: Arc<Validator>,
    /// Process settings.
    pub settings: Arc<Settings>,
    /// Per-token rate limits and usage counters, shared by the API and MCP faces.
    pub metering: Arc<Metering>,
    /// The registry of upstream servers, sealing their credentials with the configured key.
    pub servers: ServerService,
    /// The stdio servers' processes of this instance.
    pub stdio: tessera_gateway::StdioPool,
    /// The background tasks this root started (change-feed listener, usage flusher), stopped
    /// after the last usage flush.
    tasks: Arc<Vec<tokio::task::JoinHandle<()>>>,
}

impl AppState {
    /// Loads the key ring, builds the validator and starts its change-feed listener.
    pub async fn start(db: &Database, settings: Settings) -> Result<Self, CliError> {
        let ring = db.key_ring(&settings).await?;
        // Loaded when a credential header is first sealed or opened: a deployment without any
        // needs no key, nor a writable data directory for its file.
        let key_settings = settings.clone();
        let loader: Box<tessera_tokens::KeyLoader> =
            Box::new(move || crate::secret_key::load(&key_settings).map_err(|e| e.to_string()));
        let servers = ServerService::with_key_loader(db.store.clone(), loader);
        Ok(Self::assemble(db.store.clone(), ring, servers, settings))
    }

    /// The same from a bare store (tests): the key is `TESSERA_SECRET_KEY` or a throwaway
    /// one, never a file in the working directory.
    pub async fn for_store(store: Store, settings: Settings) -> Result<Self, CliError> {
        let ring = match &settings.jwt_secret {
            Some(secret) => tessera_core::KeyRing::hs256(secret.expose().as_bytes())?,
            None => {
                let set = store.load_or_create_keys(chrono::Utc::now()).await?;
                tessera_core::KeyRing::ed25519(&set.keys, &set.signing_kid)?
            }
        };
        let key = match &settings.secret_key {
            Some(text) => SealKey::parse(text.expose())?,
            None => SealKey::generate(),
        };
        let servers = ServerService::new(store.clone(), key);
        Ok(Self::assemble(store, ring, servers, settings))
    }

    /// Wires the process and starts its background tasks, the only place that spawns them:
    /// the validator's change-feed listener, the usage flusher, shared-state pruning and the
    /// alert tasks.
    fn assemble(store: Store, ring: tessera_core::KeyRing, servers: ServerService, settings: Settings) -> Self {
        // stdio servers' processes: started on first use through the bridge (started with
        // the HTTP server), and once at registration to list their tools.
        let stdio = tessera_gateway::StdioPool::new(servers.clone(), settings.stdio_config());
        let mut discovery = settings.stdio_config();
        discovery.timeout = settings.discovery_timeout();
        let servers = servers
            .with_tool_source(tessera_gateway::HttpToolSource::with_stdio(settings.discovery_timeout(), discovery));
        let validator = Validator::new(store.clone(), ring, settings.validator_config());
        // The gateway's registry cache hears server changes on the validator's feed connection.
        let registry = servers.clone();
        validator.relay_feed(Box::new(move |event| registry.apply_feed(event)));
        // Rate limits are leased from Postgres so that replicas share one budget per token/user.
        let metering = Arc::new(Metering::shared(store.clone()));
        let mut tasks = vec![
            validator.spawn_listener(),
            metering.usage.spawn_flusher(store.clone(), settings.mcp_config().usage_flush_interval),
            crate::housekeeping::spawn(store.clone()),
            crate::housekeeping::spawn_refresher(servers.clone()),
        ];
        // Every process records its own request-path alert signals and helps deliver
        // webhooks (claims use SKIP LOCKED, so replicas never send one delivery at once).
        tasks.extend(crate::alerts::spawn(&store, &metering, &settings.alert_config()));
        Self { store, validator, settings: Arc::new(settings), metering, servers, stdio, tasks: Arc::new(tasks) }
    }

    /// Writes the last usage counts and stops the background tasks; call after the HTTP
    /// server stopped.
    pub async fn flush_usage(&self) {
        match self.metering.usage.flush(&self.store).await {
            Ok(rows) => tracing::info!(rows, "flushed usage at shutdown"),
            Err(e) => tracing::error!(error = %e, "could not flush usage at shutdown"),
        }
        for task in self.tasks.iter() {
            task.abort();
        }
    }
}

/// A change to one face's derived settings.
pub type Tweak<C> = Option<Box<dyn FnOnce(&mut C) + Send>>;

/// Changes to the faces' derived settings that no environment variable expresses (tests:
/// a tighter login throttle, a short session); the default changes nothing, which is
/// `tessera serve`'s wiring.
#[derive(Default)]
pub struct Tweaks {
    /// Applied to the REST API's settings once they are derived.
    pub api: Tweak<tessera_api::ApiConfig>,
    /// Applied to the MCP face's settings once they are derived.
    pub mcp: Tweak<tessera_mcp::McpConfig>,
}

/// A bound, not yet running server (bind port 0 in tests and read the port back).
pub struct Application {
    port: u16,
    server: Server,
    /// Its usage is flushed after the server stops.
    state: AppState,
    api: tessera_api::ApiState,
    mcp: Option<tessera_mcp::McpState>,
    /// The stdio servers' bridge; its children are closed after the server stops.
    bridge: Option<tessera_gateway::StdioBridge>,
}

impl Application {
    /// Binds `listener` and prepares the app.
    pub fn build(state: AppState, listener: TcpListener) -> std::io::Result<Self> {
        Self::build_with(state, listener, Tweaks::default())
    }

    /// The same, with `tweaks` applied to the derived settings (the one wiring, for tests).
    pub fn build_with(state: AppState, listener: TcpListener, tweaks: Tweaks) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        // The REST API's state, built once and shared by every worker.
        let mut api_config = tessera_api::ApiConfig::new(
            &state.settings.public_url(),
            state.settings.issuer(),
            state.settings.mcp_resource(),
        );
        api_config.trusted_proxies = state.settings.trusted_proxies();
        api_config.webhooks_allow_local = state.settings.webhooks_allow_local;
        api_config.oauth = state.settings.oauth_config().map_err(std::io::Error::other)?;
        api_config.password_login = state.settings.password_login == crate::config::Switch::On;
        let sso = match state.settings.sso_config().map_err(std::io::Error::other)? {
            Some(config) => {
                let provider = tessera_sso::Provider::new(config).map_err(std::io::Error::other)?;
                // Sign-ins in progress are sealed with the key every replica shares.
                let key = state.servers.seal_key().map_err(std::io::Error::other)?;
                Some(tessera_api::Sso::new(provider, key))
            }
            None => None,
        };
        if let Some(tweak) = tweaks.api {
            tweak(&mut api_config);
        }
        let api = tessera_api::ApiState::new(state.store.clone(), Arc::clone(&state.validator), api_config)
            .with_metering(Arc::clone(&state.metering))
            .with_servers(state.servers.clone())
            .with_sso(sso);
        // The MCP face's state (metrics, rmcp service), likewise shared by every worker; rate
        // limits and usage are the process's, shared with the API.
        let mut mcp_config = state.settings.mcp_config();
        if let Some(tweak) = tweaks.mcp {
            tweak(&mut mcp_config);
        }
        let mcp_face = state.settings.serves(Role::Mcp).then(|| {
            tessera_mcp::McpState::with_metering(
                state.store.clone(),
                Arc::clone(&state.validator),
                mcp_config,
                Arc::clone(&state.metering),
            )
        });
        // The gateway (`/mcp/{server}`) beside the built-in server, with the same validator,
        // limits and usage.
        // stdio servers are reached through a loopback bridge that this instance runs.
        let bridge = match &mcp_face {
            Some(_) => Some(tessera_gateway::StdioBridge::start(state.stdio.clone())?),
            None => None,
        };
        let gateway = match &mcp_face {
            Some(_) => {
                let gateway = tessera_gateway::GatewayState::new(
                    state.servers.clone(),
                    Arc::clone(&state.validator),
                    Arc::clone(&state.metering),
                    state.settings.gateway_config(),
                )
                .map_err(std::io::Error::other)?;
                Some(match &bridge {
                    Some(bridge) => gateway.with_stdio(bridge.link.clone()),
                    None => gateway,
                })
            }
            None => None,
        };
        crate::access_log::set_enabled(state.settings.access_log);
        let serve_api = state.settings.serves(Role::Api);
        let workers = state.settings.workers;
        let data = web::Data::new(state.clone());
        let (api_state, mcp_state) = (api.clone(), mcp_face.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<PathOnlySpan>::new())
                .app_data(data.clone())
                // Resources holding GET in the route, so other methods get a 405 naming it
                // (`App::route` would move the guard to the resource and answer 404).
                .service(web::resource("/health").route(web::get().to(health)).default_service(web::to(get_only)))
                .service(web::resource("/ready").route(web::get().to(ready)).default_service(web::to(get_only)))
                .configure(|cfg| {
                    // Before the built-in: its `/mcp` scope would otherwise claim `/mcp/{server}`.
                    if let Some(gateway) = &gateway {
                        tessera_gateway::configure(gateway.clone())(cfg);
                    }
                    if let Some(mcp) = &mcp_face {
                        tessera_mcp::configure(mcp.clone())(cfg);
                    }
                })
                .configure(|cfg| {
                    if serve_api {
                        tessera_api::configure(api.clone())(cfg);
                        // The web UI last: it claims only `/` and `/assets/`.
                        crate::ui::configure(cfg);
                    }
                })
        })
        .shutdown_timeout(10)
        // The gateway streams SSE: without it, events on keep-alive connections stall ~40 ms.
        .tcp_nodelay(true);
        let server = match workers {
            0 => server,
            n => server.workers(n),
        };
        let server = server.listen(listener)?.run();
        Ok(Self { port, server, state, api: api_state, mcp: mcp_state, bridge })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT/SIGTERM (or the handle stops it); in-flight requests finish first.
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        // Children get stdin closed, then TERM, then KILL.
        if let Some(bridge) = &self.bridge {
            bridge.stop().await;
        }
        // After the last request: the final usage counts reach the database.
        self.state.flush_usage().await;
        result
    }

    /// The REST API's state (tests look at its login throttle).
    pub fn api(&self) -> &tessera_api::ApiState {
        &self.api
    }

    /// The MCP face's state, when this process serves it.
    pub fn mcp(&self) -> Option<&tessera_mcp::McpState> {
        self.mcp.as_ref()
    }

    /// The process's wiring: store, validator, metering.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// 405 in the error shape for the probes, which answer GET only.
async fn get_only() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .json(json!({"error": tessera_core::ErrorCode::MethodNotAllowed, "message": "this path answers only GET"}))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ready()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok", "migrations": "applied"})),
        Ok(Err(e)) => not_ready(&e.to_string()),
        Err(_) => not_ready("database did not answer within 2 s"),
    }
}

fn not_ready(message: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .json(json!({"error": tessera_core::ErrorCode::NotReady, "message": message}))
}
