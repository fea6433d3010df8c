//! The OpenAPI document, generated from the handlers and types (utoipa).

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::SESSION_COOKIE;
use crate::{
    auth_routes, connect_flow, connections, consent, error, models, server_pins, servers, sso_routes, stdio_servers,
    teams, tokens, usage, users, webhooks,
};

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
        tokens::validate, tokens::audit, tokens::limits, usage::usage, auth_routes::login, auth_routes::logout, auth_routes::me, sso_routes::methods, sso_routes::login, sso_routes::callback, users::list, users::patch, webhooks::create, webhooks::list, webhooks::get, webhooks::patch, webhooks::delete, webhooks::deliveries, webhooks::token_alerts, consent::show, consent::decide, consent::clients, serve,
        connections::list, connections::put, connections::delete, connect_flow::start, connect_flow::callback, connect_flow::client_metadata, servers::list, servers::create, servers::get, servers::patch, servers::remove, servers::tools, servers::patch_tools,
        servers::rotate_credentials, server_pins::approve,
        teams::list, teams::create, teams::get, teams::patch, teams::remove, teams::add_member, teams::remove_member,
    ),
    components(schemas(
        sso_routes::AuthMethods,
        error::ErrorBody, models::TokenView, models::IssuedTokenView, models::CreateTokenRequest,
        models::PatchTokenRequest, models::RevokeRequest, models::RotateRequest, models::StatusFilter,
        models::TokenPageView, models::ValidationView, models::LoginRequest, models::UserView, models::LoginView,
        models::MeView, models::PatchUserRequest, webhooks::CreateWebhookRequest, webhooks::PatchWebhookRequest, webhooks::WebhookView, webhooks::CreatedWebhookView, webhooks::DeliveryView, webhooks::AlertView, models::LimitsView, models::ServerToolsView, models::AuditEntryView, models::AuditPageView, usage::UsageView, usage::Counts, usage::Bucket, usage::MethodUsage, usage::Denials,
        usage::Granularity,
        models::OAuthClientRef, consent::ConsentView, consent::ConsentServer, consent::ConsentTool, consent::ActiveGrantView, consent::ConsentDecision,
        consent::ConsentRedirect, consent::OAuthClientView,
        servers::ServerView, servers::CreateServerRequest, servers::PatchServerRequest,
        servers::AccessClass, servers::ServerToolView, servers::PatchToolsRequest,
        servers::ServerCredentialsView, servers::RotateCredentialsRequest, servers::UserAuthView,
        stdio_servers::StdioCommandRequest, stdio_servers::StdioCommandView,
        connections::ConnectionView, connections::ConnectedPersonView, connections::ConnectionsView, connections::ConnectRequest,
        server_pins::NewTools, server_pins::HeldReason, server_pins::HeldToolView, server_pins::ApprovedToolView,
        teams::TeamView, teams::CreateTeamRequest, teams::PatchTeamRequest,
    )),
    modifiers(&SecuritySchemes, &StandardErrors),
    tags(
        (name = "tokens", description = "Scoped bearer tokens"),
        (name = "auth", description = "Browser sign-in sessions"),
        (name = "oauth", description = "The consent page of the OAuth authorization server (the protocol \
            endpoints /oauth/* and /.well-known/oauth-authorization-server follow RFC 6749/8414/7591/7009)"),
        (name = "servers", description = "Upstream MCP servers served through the gateway at /mcp/{name} (administrators)"),
        (name = "connections", description = "Each person's own credentials for servers whose users bring one (connected accounts)"),
        (name = "teams", description = "Teams and the allowances that bound what their members may hold (administrators)"),
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

/// Adds the error answers every operation of its shape can give, where the handler's own
/// annotation does not already describe them: one place for the 400/401/413/415/429/503
/// every handler shares (the handlers keep the answers particular to them).
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v2/") {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let params = operation.parameters.as_deref().unwrap_or_default();
                let in_path = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let body = operation.request_body.is_some();
                let anonymous = operation.security.as_ref().is_some_and(|reqs| {
                    reqs.iter()
                        .any(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty())))
                });
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(status, description));
                };
                if in_path {
                    add("400", "A path parameter is malformed (`invalid_path`)");
                }
                if in_query {
                    add("400", "A query parameter is malformed (`invalid_query`)");
                }
                if body {
                    add(
                        "400",
                        "The body is not valid JSON or not the expected object (`malformed_json`, `invalid_body`)",
                    );
                    add("413", "Body too large");
                    add("415", "Body is not JSON (`Content-Type: application/json`)");
                }
                if !anonymous {
                    add("401", "Not signed in / bad bearer token");
                    add(
                        "429",
                        "The bearer token's (or its user's) rate limit is used up (`rate_limited`); see \
                         `Retry-After` and `RateLimit-*`",
                    );
                }
                add("503", "The database is unreachable (`temporarily_unavailable`); retry after `Retry-After`");
            }
        }
    }
}

/// A JSON error answer described by `description`; a 429 or 503 names its `Retry-After`.
fn error_response(status: &str, description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Object, Ref, ResponseBuilder, Type};
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build());
    if matches!(status, "429" | "503") {
        let seconds =
            HeaderBuilder::new().schema(Object::with_type(Type::Integer)).description(Some("Seconds to wait"));
        response = response.header("Retry-After", seconds.build());
    }
    response.build().into()
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
