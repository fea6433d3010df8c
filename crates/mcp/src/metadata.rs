//! Unauthenticated documents: RFC 9728 protected-resource metadata, the JWKS and metrics.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;
use tessera_core::scope::{ACCESS, CATALOG, EXECUTE, READ, WRITE};

use crate::McpState;

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728 §3).
pub(crate) async fn protected_resource(state: web::Data<McpState>) -> HttpResponse {
    let config = state.config();
    let scopes: Vec<&str> = CATALOG.iter().copied().chain([ACCESS, READ, WRITE, EXECUTE]).collect();
    let mut doc = json!({
        "resource": config.resource(),
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "Tessera MCP server",
        "resource_documentation": format!("{}/", config.public_url),
    });
    // With the authorization server off, naming one would start flows that go nowhere.
    if config.authorization_server {
        doc["authorization_servers"] = json!([config.public_url]);
    }
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(doc)
}

/// `GET /.well-known/jwks.json`: the public keys that verify Tessera tokens (none in HS256 mode).
pub(crate) async fn jwks(state: web::Data<McpState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(state.inner.guard.validator().key_ring().jwks())
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(state: web::Data<McpState>) -> HttpResponse {
    let mut body = state
        .inner
        .metrics
        .render(state.inner.guard.validator().cache_stats(), state.inner.metering.usage.flush_stats());
    crate::metrics::render_feed(&mut body, state.inner.guard.validator().feed_stats());
    crate::metrics::render_db(&mut body, state.inner.store.checkouts());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}
