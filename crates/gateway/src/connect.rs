//! The answer to a person who has not connected their own credential to a server whose users
//! bring one (issue #25): where to connect it. On 2025-11-25 that is the URL-elicitation
//! error (`-32042`, `URLElicitationRequiredError`), which clients that support URL elicitation
//! offer to open; its message holds the URL too, for clients that only show the message. A
//! 2026-07-28 client's `tools/call`, `prompts/get` or `resources/read` gets that era's form
//! instead: an `InputRequiredResult` (multi round-trip requests) asking for the same URL
//! elicitation; the client retries the call once the person has connected.

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
/// Methods a 2026-07-28 server may answer with an `InputRequiredResult`.
const ROUND_TRIP_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// What about the request decides the answer's form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    /// The HTTP method.
    pub http: &'a Method,
    /// The JSON-RPC id (`None`: a notification, a response, or no body).
    pub id: Option<&'a Value>,
    /// The JSON-RPC method.
    pub rpc: Option<&'a str>,
    /// The client's `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
}

pub(crate) fn required(config: &GatewayConfig, name: &str, user: uuid::Uuid, asked: Asked<'_>) -> HttpResponse {
    let Asked { http: method, id, .. } = asked;
    let url = connect_url(config, name, Some(user));
    let message = format!("Connect your account for the server {name} first: open {url}");
    let stateless = asked.version.is_some_and(|v| v >= tessera_core::upstream::STATELESS_ERA);
    if stateless
        && *method == Method::POST
        && let Some(id) = id
        && asked.rpc.is_some_and(|m| ROUND_TRIP_METHODS.contains(&m))
    {
        let key = format!("connect-{name}");
        return HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
            "jsonrpc": "2.0", "id": id,
            "result": {
                "resultType": "input_required",
                "inputRequests": {key.clone(): {"method": "elicitation/create", "params": {
                    "mode": "url",
                    "elicitationId": key,
                    "url": url,
                    "message": message,
                }}},
            },
        }));
    }
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
