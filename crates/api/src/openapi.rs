//! The OpenAPI document, generated from the handlers and types (utoipa).

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::SESSION_COOKIE;
use crate::{auth_routes, consent, error, models, servers, tokens, usage, users, webhooks};

/// The `/api/v2` description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera API",
        description = "Issue, list, change, rotate, revoke and validate scoped bearer tokens for MCP servers. \
            Browsers use the session cookie plus `X-CSRF-Token` on unsafe methods; scripts use a Tessera bearer \
            token with `read:tokens` / `write:tokens`. Every error is `{\"error\", \"message\", \"details\"?}`."
    ),
    paths(
        tokens::create, tokens::list, tokens::get, tokens::patch, tokens::revoke, tokens::rotate,
        tokens::validate, tokens::audit, tokens::limits, usage::usage, auth_routes::login, auth_routes::logout, auth_routes::me, users::list, users::patch, webhooks::create, webhooks::list, webhooks::get, webhooks::patch, webhooks::delete, webhooks::deliveries, webhooks::token_alerts, consent::show, consent::decide, consent::clients, serve,
        servers::list, servers::create, servers::get, servers::patch, servers::remove, servers::tools, servers::patch_tools,
    ),
    components(schemas(
        error::ErrorBody, models::TokenView, models::IssuedTokenView, models::CreateTokenRequest,
        models::PatchTokenRequest, models::RevokeRequest, models::RotateRequest, models::StatusFilter,
        models::TokenPageView, models::ValidationView, models::LoginRequest, models::UserView, models::LoginView,
        models::MeView, models::PatchUserRequest, webhooks::CreateWebhookRequest, webhooks::PatchWebhookRequest, webhooks::WebhookView, webhooks::CreatedWebhookView, webhooks::DeliveryView, webhooks::AlertView, models::LimitsView, models::AuditEntryView, models::AuditPageView, usage::UsageView, usage::Counts, usage::Bucket, usage::MethodUsage, usage::Denials,
        usage::Granularity,
        models::OAuthClientRef, consent::ConsentView, consent::ConsentDecision,
        consent::ConsentRedirect, consent::OAuthClientView,
        servers::ServerView, servers::CreateServerRequest, servers::PatchServerRequest,
        servers::AccessClass, servers::ServerToolView, servers::PatchToolsRequest,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "tokens", description = "Scoped bearer tokens"),
        (name = "auth", description = "Browser sign-in sessions"),
        (name = "oauth", description = "The consent page of the OAuth authorization server (the protocol \
            endpoints /oauth/* and /.well-known/oauth-authorization-server follow RFC 6749/8414/7591/7009)"),
        (name = "servers", description = "Upstream MCP servers served through the gateway at /mcp/{name} (administrators)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the two ways to authenticate: the session cookie and a bearer token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "HttpOnly, SameSite=Strict session cookie set by POST /api/v2/auth/login; unsafe methods also \
                 need the session's CSRF token in X-CSRF-Token",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A Tessera token holding read:tokens (reads) or write:tokens (changes)"))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, exactly what `tessera openapi` prints and `/openapi.json` serves.
pub fn openapi_json() -> String {
    // Serialising a derived document cannot fail; an empty object is a safe fallback anyway.
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}

/// This OpenAPI document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")),
    security(())
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(openapi_json())
}
