//! Tessera's REST API, `/api/v2`: tokens (issue, list, get, patch, revoke, rotate, validate,
//! usage), upstream servers (admin), browser sessions, and the OpenAPI document generated
//! from this code; beside it, SCIM 2.0 provisioning under `/scim/v2` ([`scim`]).
//!
//! Mount it with [`configure`]; every error leaving it has one JSON shape ([`error`]).

#![warn(missing_docs)]

pub mod auth;
mod auth_routes;
mod body;
mod connect_flow;
mod connections;
mod consent;
mod cursor;
pub mod error;
mod introspect;
pub mod models;
pub mod oauth;
mod openapi;
pub mod scim;
mod sealed_cookie;
mod server_pins;
mod servers;
mod sso_routes;
mod stdio_servers;
mod teams;
pub mod throttle;
mod tokens;
pub mod usage;
mod users;
mod webhooks;

use std::sync::Arc;

use actix_web::middleware::{ErrorHandlers, NormalizePath, from_fn};
use actix_web::web::{self, ServiceConfig};
use tessera_auth::{Metering, Validator};
use tessera_core::keys::KeyRing;
use tessera_store::Store;
use tessera_tokens::{KeySource, Minter, ServerService, TokenService};

pub use openapi::{ApiDoc, openapi_json};
pub use sso_routes::Sso;
pub use throttle::{ClientAuthThrottle, LoginThrottle, ThrottleConfig};

/// Largest JSON body accepted.
const JSON_LIMIT: usize = 64 * 1024;
/// Default session lifetime.
const SESSION_HOURS: i64 = 12;

/// What the API needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The public URL without a trailing slash (SCIM's `meta.location`s start with it).
    pub public_url: String,
    /// `iss` of the tokens it mints.
    pub issuer: String,
    /// `aud` of the tokens it mints (the MCP resource).
    pub audience: Vec<String>,
    /// Mark the session cookie `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// How long a browser session lasts.
    pub session_ttl: chrono::Duration,
    /// Failed-login limits.
    pub throttle: ThrottleConfig,
    /// Proxies whose `X-Forwarded-For` names the client (`TESSERA_TRUSTED_PROXIES`).
    pub trusted_proxies: tessera_auth::TrustedProxies,
    /// Webhooks may target loopback and private addresses (`TESSERA_WEBHOOKS_ALLOW_LOCAL`).
    pub webhooks_allow_local: bool,
    /// The OAuth authorization server's settings; `None` turns it off (`TESSERA_OAUTH=off`).
    pub oauth: Option<tessera_oauth::OAuthConfig>,
    /// Email and password sign-in on `/api/v2/auth/login` (`TESSERA_PASSWORD_LOGIN`).
    pub password_login: bool,
}

/// Default lifetime of an OAuth access token (`TESSERA_OAUTH_ACCESS_TTL`), in seconds.
pub const OAUTH_ACCESS_TTL_SECS: i64 = 3600;

impl ApiConfig {
    /// Settings for a server reachable at `public_url`, minting for `issuer` and `mcp_resource`.
    pub fn new(public_url: &str, issuer: String, mcp_resource: String) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            issuer,
            audience: vec![mcp_resource.clone()],
            secure_cookies: public_url.starts_with("https://"),
            session_ttl: chrono::Duration::hours(SESSION_HOURS),
            throttle: ThrottleConfig::default(),
            trusted_proxies: tessera_auth::TrustedProxies::default(),
            webhooks_allow_local: false,
            password_login: true,
            oauth: Some(tessera_oauth::OAuthConfig {
                issuer: public_url.trim_end_matches('/').to_owned(),
                resources: vec![mcp_resource],
                access_ttl: chrono::Duration::seconds(OAUTH_ACCESS_TTL_SECS),
                allow_local_clients: false,
                extra_ca_pem: None,
            }),
        }
    }
}

/// Shared state of the API's handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The database.
    pub store: Store,
    /// The one token validator of the process.
    pub validator: Arc<Validator>,
    /// Deployment settings.
    pub config: Arc<ApiConfig>,
    /// Failed-login memory, shared by every worker.
    pub throttle: Arc<LoginThrottle>,
    /// Failed introspection-client authentications, shared by every worker.
    pub client_auth: Arc<ClientAuthThrottle>,
    /// Per-token rate limits and usage counters of bearer calls (shared with the MCP face).
    pub metering: Arc<Metering>,
    /// The token lifecycle: every issue, change, rotation and revocation goes through it.
    pub tokens: TokenService,
    /// The OAuth authorization server, unless turned off.
    pub oauth: Option<tessera_oauth::OAuthService>,
    /// Per-address limit of `POST /oauth/register`, shared by every worker.
    pub registrations: Arc<oauth::RegistrationLimiter>,
    /// The registry of upstream servers (whose scopes join the catalog).
    pub servers: ServerService,
    /// Single sign-on through an OpenID provider, when configured.
    pub sso: Option<Arc<Sso>>,
}

/// The process's validator as the lifecycle's key source: it signs with the validator's
/// current ring (reloaded after `tessera keys rotate`) and evicts its row cache at once
/// after a change, rather than when the NOTIFY arrives.
struct ValidatorKeys(Arc<Validator>);

impl KeySource for ValidatorKeys {
    fn key_ring(&self) -> Arc<KeyRing> {
        self.0.key_ring()
    }

    fn evict(&self, id: uuid::Uuid) {
        self.0.evict(id);
    }
}

impl ApiState {
    /// State from the process's store and validator, with its own [`Metering`] (whose usage
    /// counts are written only by an explicit flush; see [`ApiState::with_metering`]).
    pub fn new(store: Store, validator: Arc<Validator>, config: ApiConfig) -> Self {
        let throttle = Arc::new(LoginThrottle::new(config.throttle.clone()));
        let client_auth = Arc::new(ClientAuthThrottle::new(config.throttle.client_auth_per_ip, config.throttle.window));
        let minter = Minter::new(
            Arc::new(ValidatorKeys(Arc::clone(&validator))),
            config.issuer.clone(),
            config.audience.clone(),
        );
        let tokens = TokenService::new(store.clone(), minter);
        let oauth = config.oauth.clone().map(|c| tessera_oauth::OAuthService::new(store.clone(), tokens.clone(), c));
        // A throwaway sealing key until the composition root hands in the real one
        // (`with_servers`): headers sealed with it do not survive a restart.
        let servers = ServerService::new(store.clone(), tessera_core::sealed::SealKey::generate());
        Self {
            store,
            validator,
            config: Arc::new(config),
            throttle,
            client_auth,
            metering: Arc::default(),
            tokens,
            oauth,
            registrations: Arc::default(),
            servers,
            sso: None,
        }
    }

    /// The same state signing people in through `sso` as well.
    pub fn with_sso(self, sso: Option<Sso>) -> Self {
        Self { sso: sso.map(Arc::new), ..self }
    }

    /// The same state with the process's server registry (sealing with the configured key).
    pub fn with_servers(self, servers: ServerService) -> Self {
        Self { servers, ..self }
    }

    /// The one bearer guard over this state's Validator and metering.
    pub fn guard(&self) -> tessera_auth::Guard {
        tessera_auth::Guard::new(Arc::clone(&self.validator), Arc::clone(&self.metering))
    }

    /// The same state counting against the process's shared [`Metering`].
    pub fn with_metering(self, metering: Arc<Metering>) -> Self {
        Self { metering, ..self }
    }
}

/// Mounts `/api/v2` and `/openapi.json`: `App::new().configure(tessera_api::configure(state.clone()))`.
pub fn configure(state: ApiState) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg: &mut ServiceConfig| {
        if state.oauth.is_some() {
            oauth::configure(cfg, &state);
        }
        scim::configure(cfg, &state);
        cfg.service(
            // A resource whose route holds the GET guard: any other method is a 405 naming
            // GET (`cfg.route` would move the guard to the resource, and answer 404).
            web::resource("/openapi.json")
                .route(web::get().to(openapi::serve))
                .default_service(web::to(|| error::method_not_allowed("GET"))),
        )
        .service(
            // A resource without a default service answers an unsupported method with an
            // empty 405 carrying `Allow` (RFC 9110 §15.5.6); `jsonify_error` gives it the
            // error shape and keeps the header.
            web::scope("/api/v2")
                .app_data(web::Data::new(state))
                .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(error::json_error))
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .wrap(ErrorHandlers::new().default_handler(error::jsonify_error))
                // Outside the error handlers: it sees the final status of every admitted bearer call.
                .wrap(from_fn(auth::count_bearer_use))
                // Every route also answers with a trailing slash, as the token guide writes them
                // (`POST /api/v2/tokens/`): the path is trimmed before routing, so it is the same
                // handler with no redirect (a POST survives) and usage keeps the route pattern.
                .wrap(NormalizePath::trim())
                .service(
                    web::resource("/tokens").route(web::get().to(tokens::list)).route(web::post().to(tokens::create)),
                )
                // Before `/tokens/{id}` so "validate" is never read as an id.
                .service(web::resource("/tokens/validate").route(web::post().to(tokens::validate)))
                .service(
                    web::resource("/tokens/{id}")
                        .route(web::get().to(tokens::get))
                        .route(web::patch().to(tokens::patch))
                        .route(web::delete().to(tokens::revoke)),
                )
                .service(web::resource("/tokens/{id}/rotate").route(web::post().to(tokens::rotate)))
                .service(web::resource("/tokens/{id}/audit").route(web::get().to(tokens::audit)))
                .service(web::resource("/tokens/{id}/usage").route(web::get().to(usage::usage)))
                .service(web::resource("/tokens/{id}/alerts").route(web::get().to(webhooks::token_alerts)))
                .service(
                    web::resource("/webhooks")
                        .route(web::get().to(webhooks::list))
                        .route(web::post().to(webhooks::create)),
                )
                .service(
                    web::resource("/webhooks/{id}")
                        .route(web::get().to(webhooks::get))
                        .route(web::patch().to(webhooks::patch))
                        .route(web::delete().to(webhooks::delete)),
                )
                .service(web::resource("/webhooks/{id}/deliveries").route(web::get().to(webhooks::deliveries)))
                .service(web::resource("/connections").route(web::get().to(connections::list)))
                .service(web::resource("/connections/callback").route(web::get().to(connect_flow::callback)))
                .service(
                    web::resource("/connections/client-metadata.json")
                        .route(web::get().to(connect_flow::client_metadata)),
                )
                .service(web::resource("/connections/{server}/connect").route(web::get().to(connect_flow::start)))
                .service(
                    web::resource("/connections/{server}")
                        .route(web::put().to(connections::put))
                        .route(web::delete().to(connections::delete)),
                )
                .service(
                    web::resource("/servers")
                        .route(web::get().to(servers::list))
                        .route(web::post().to(servers::create)),
                )
                .service(
                    web::resource("/servers/{name}")
                        .route(web::get().to(servers::get))
                        .route(web::patch().to(servers::patch))
                        .route(web::delete().to(servers::remove)),
                )
                .service(
                    web::resource("/servers/{name}/tools")
                        .route(web::get().to(servers::tools))
                        .route(web::patch().to(servers::patch_tools)),
                )
                .service(
                    web::resource("/servers/{name}/credentials").route(web::post().to(servers::rotate_credentials)),
                )
                .service(
                    web::resource("/servers/{name}/tools/{tool}/approve").route(web::post().to(server_pins::approve)),
                )
                .service(web::resource("/teams").route(web::get().to(teams::list)).route(web::post().to(teams::create)))
                .service(
                    web::resource("/teams/{name}")
                        .route(web::get().to(teams::get))
                        .route(web::patch().to(teams::patch))
                        .route(web::delete().to(teams::remove)),
                )
                .service(
                    web::resource("/teams/{name}/members/{email}")
                        .route(web::put().to(teams::add_member))
                        .route(web::delete().to(teams::remove_member)),
                )
                .service(web::resource("/limits").route(web::get().to(tokens::limits)))
                .service(web::resource("/users").route(web::get().to(users::list)))
                .service(web::resource("/users/{id}").route(web::patch().to(users::patch)))
                .service(web::resource("/auth/login").route(web::post().to(auth_routes::login)))
                .service(web::resource("/auth/logout").route(web::post().to(auth_routes::logout)))
                .service(web::resource("/auth/me").route(web::get().to(auth_routes::me)))
                .service(web::resource("/auth/methods").route(web::get().to(sso_routes::methods)))
                .service(web::resource("/auth/oidc/login").route(web::get().to(sso_routes::login)))
                .service(web::resource("/auth/oidc/callback").route(web::get().to(sso_routes::callback)))
                .service(
                    web::resource("/oauth/consent")
                        .route(web::get().to(consent::show))
                        .route(web::post().to(consent::decide)),
                )
                .service(web::resource("/oauth/clients").route(web::get().to(consent::clients)))
                .default_service(web::to(error::not_found)),
        );
    }
}
