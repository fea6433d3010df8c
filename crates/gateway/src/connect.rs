//! The answer to a person who has not connected their own credential to a server whose users
//! bring one (issue #25): where to connect it. On 2025-11-25 that is the URL-elicitation
//! error (`-32042`, `URLElicitationRequiredError`), which clients that support URL elicitation
//! offer to open; its message holds the URL too, for clients that only show the message.

use actix_web::HttpResponse;
use actix_web::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use tessera_core::ErrorCode;

use crate::GatewayConfig;

/// JSON-RPC code of `URLElicitationRequiredError`.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// Where person `user` (or anyone: `None`) connects their credential for server `name` (the
/// UI's Connections page).
pub fn connect_url(config: &GatewayConfig, name: &str, user: Option<uuid::Uuid>) -> String {
    tessera_core::upstream::connect_url(&config.public_url, name, user)
}

/// The refusal carrying the connect URL: a JSON-RPC error for a request with an id, else
/// 403 `connection_required` in the project's error shape.
pub(crate) fn required(
    config: &GatewayConfig,
    name: &str,
    user: uuid::Uuid,
    method: &Method,
    id: Option<&Value>,
) -> HttpResponse {
    let url = connect_url(config, name, Some(user));
    let message = format!("Connect your account for the server {name} first: open {url}");
    let mut res = HttpResponse::build(if *method == Method::POST && id.is_some() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    });
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    match id {
        Some(id) if *method == Method::POST => res.json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": URL_ELICITATION_REQUIRED, "message": message, "data": {
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": format!("connect-{name}"),
                    "url": url,
                    "message": format!("Connect your account for {name} to Tessera."),
                }],
            }},
        })),
        _ => res.json(json!({"error": ErrorCode::ConnectionRequired, "message": message, "details": {"url": url}})),
    }
}
