//! The guard in front of rmcp: every request to `/mcp` passes here first.
//!
//! Order: Origin → bearer header (query-string tokens refused) → Validator → JSON-RPC peek
//! (which completes or refuses a sparse `initialize`, see `compat.rs`) → endpoint scopes →
//! rate limit → the called tool's scopes. Only then does rmcp see the
//! request, with the [`Caller`] in its extensions. Usage is counted for every request
//! whose token could be identified; the count is in memory only.
//!
//! The body is read (at most 1 MiB) before the rate limit on purpose: a 429 is counted
//! under the method or tool it refused, and only a token that passed the Validator gets
//! that far, so the read costs nothing an anonymous client can trigger.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tessera_auth::{AuthError, Decision, Outcome, bearer_token};

use crate::McpState;
use crate::compat;
use crate::error::McpDenial;
use crate::service::{Caller, EXECUTE_SCOPE, tool_scope};

/// Largest JSON-RPC body accepted (tool arguments included).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest unread body drained before a refusal so the connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;
/// How long a refusal waits for that body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Largest JSON answer passed through (far above any tool result we produce).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// MCP methods counted under their own name (here and at the gateway); anything else is
/// counted as `other`, so usage rows stay bounded whatever a client sends.
pub const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "server/discover",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// What the middleware learnt from the JSON-RPC body.
#[derive(Debug, Default)]
struct Peek {
    /// The label usage is counted under: the method, or the tool's name for `tools/call`.
    label: &'static str,
    /// The tool called, when it is one of ours.
    tool: Option<String>,
    /// Whether this is `tools/call`.
    is_call: bool,
}

/// The `from_fn` middleware wrapping the rmcp scope.
pub(crate) async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<web::Data<McpState>>().cloned() else {
        tracing::error!("McpState missing: tessera_mcp::configure was not used");
        return Ok(req.into_response(HttpResponse::InternalServerError().finish()));
    };
    let result = guard(&state, req, next).await;
    state.inner.metrics.observe_latency(started.elapsed());
    result
}

async fn guard(
    state: &McpState,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let inner = &state.inner;
    let metadata_url = inner.config.resource_metadata_url();
    let required = inner.config.required_scopes.to_claim();
    let deny = async |mut req: ServiceRequest, denial: McpDenial| {
        inner.metrics.auth_outcome(denial.reason());
        drain_small_body(&mut req).await;
        Ok(req.into_response(denial.response(&metadata_url, &required)))
    };

    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| inner.config.origin_allowed(o));
        if !allowed {
            return deny(req, McpDenial::OriginNotAllowed).await;
        }
    }

    if token_in_query(req.query_string()) {
        return deny(
            req,
            McpDenial::Unauthorized {
                presented: true,
                error: "invalid_request",
                code: "token_in_query",
                message: "tokens are accepted only in the Authorization header, never in the URL".to_owned(),
            },
        )
        .await;
    }

    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form {
        // RFC 6750 §2.2 form-body tokens: refused like query tokens (no MCP message is a form).
        return deny(
            req,
            McpDenial::Unauthorized {
                presented: true,
                error: "invalid_request",
                code: "token_in_body",
                message: "tokens are accepted only in the Authorization header, never in the body".to_owned(),
            },
        )
        .await;
    }

    let token = match bearer_token(req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes())) {
        Ok(token) => token.to_owned(),
        Err(e) => {
            let error =
                if matches!(e, tessera_auth::BearerError::Multiple) { "invalid_request" } else { "invalid_token" };
            let denial = McpDenial::Unauthorized {
                presented: e.token_presented(),
                error,
                code: e.code(),
                message: e.to_string(),
            };
            return deny(req, denial).await;
        }
    };

    let now = Utc::now();
    let principal = match inner.validator.validate(&token, now).await {
        Ok(principal) => Arc::new(principal),
        Err(AuthError::Rejected(rejection)) => {
            if let Some(token_id) = tessera_auth::identified_token(&rejection, &token) {
                inner.metering.usage.record(token_id, "rejected", Outcome::Unauthorized, now, peer(&req));
                inner.metering.alerts.auth_failure(token_id, now);
            }
            let denial = McpDenial::Unauthorized {
                presented: true,
                error: "invalid_token",
                code: rejection.code(),
                message: rejection.message(),
            };
            return deny(req, denial).await;
        }
        Err(AuthError::Unavailable(why)) => {
            tracing::warn!(reason = %why, "token state unavailable: refusing with 503");
            return deny(req, McpDenial::Unavailable).await;
        }
    };
    drop(token);
    let from = peer(&req);
    let count = |label: &str, outcome: Outcome| {
        inner.metering.usage.record(principal.token_id, label, outcome, now, from.clone());
    };

    let peek = if req.method() == Method::POST {
        match peek_body(&mut req).await {
            Ok(peek) => peek,
            Err(denial) => {
                count("invalid", Outcome::Error);
                return deny(req, denial).await;
            }
        }
    } else if req.path().trim_end_matches('/') == "/mcp/sse" {
        // The legacy SSE endpoint answers for itself: a 405 naming the Streamable HTTP
        // endpoint (compat.rs), after the token was checked like on every /mcp path.
        count("http_sse", Outcome::Error);
        return Ok(next.call(req).await?.map_into_boxed_body());
    } else {
        // Stateless: there is no SSE stream to GET and no session to DELETE. rmcp would
        // answer 405 without `Allow` and outside the error shape, so answer here; counted by
        // HTTP method.
        let label = if req.method() == Method::GET {
            "http_get"
        } else if req.method() == Method::DELETE {
            "http_delete"
        } else {
            "http_other"
        };
        count(label, Outcome::Error);
        return deny(req, McpDenial::MethodNotAllowed).await;
    };
    let label = peek.tool.as_deref().unwrap_or(peek.label);

    let missing = inner.config.required_scopes.missing_from(&principal.effective);
    if !missing.is_empty() {
        count(label, Outcome::Forbidden);
        return deny(req, McpDenial::InsufficientScope { needed: missing.join(" ") }).await;
    }

    let mut rate_headers = None;
    match inner.metering.admit(&principal, from.as_deref(), now).await {
        Decision::Unlimited => {}
        Decision::Allowed { limit, remaining, reset_secs } => rate_headers = Some((limit, remaining, reset_secs)),
        Decision::Limited { scope, limit, retry_after_secs } => {
            count(label, Outcome::RateLimited);
            return deny(req, McpDenial::RateLimited { scope, limit, retry_after_secs }).await;
        }
    }

    if peek.is_call {
        let mut needed = vec![EXECUTE_SCOPE];
        if let Some(scope) = peek.tool.as_deref().and_then(tool_scope) {
            needed.push(scope);
        }
        let missing: Vec<&str> = needed.into_iter().filter(|s| !principal.effective.contains(s)).collect();
        if !missing.is_empty() {
            count(label, Outcome::Forbidden);
            return deny(req, McpDenial::InsufficientScope { needed: missing.join(" ") }).await;
        }
    }

    inner.metrics.auth_outcome("ok");
    req.extensions_mut().insert(Caller(Arc::clone(&principal)));
    let (mut res, outcome) = classify(next.call(req).await?).await;
    count(label, outcome);
    if let Some((limit, remaining, reset)) = rate_headers {
        let headers = res.headers_mut();
        for (name, value) in
            [("ratelimit-limit", limit as u64), ("ratelimit-remaining", remaining as u64), ("ratelimit-reset", reset)]
        {
            if let Ok(v) = header::HeaderValue::from_str(&value.to_string()) {
                headers.insert(header::HeaderName::from_static(name), v);
            }
        }
    }
    Ok(res)
}

/// The two facts `classify` needs from a JSON-RPC answer. Everything else is skipped by
/// serde without building a value: parsing a `tools/list` answer into a `serde_json::Value`
/// was about 40% of the instructions of the whole request (callgrind).
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    result: Option<AnswerResult>,
}

/// The part of a JSON-RPC result that says a tool call failed.
#[derive(Deserialize)]
struct AnswerResult {
    #[serde(default, rename = "isError")]
    is_error: bool,
}

/// Whether rmcp's answer was a success: a JSON-RPC error or a tool result with `isError`
/// counts as `error`. JSON answers are small and already buffered by rmcp, so reading one
/// here costs a copy, not a wait.
async fn classify(res: ServiceResponse<impl MessageBody + 'static>) -> (ServiceResponse<BoxBody>, Outcome) {
    if !res.status().is_success() {
        return (res.map_into_boxed_body(), Outcome::Error);
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return (res.map_into_boxed_body(), Outcome::Ok);
    }
    let (http_req, http_res) = res.into_parts();
    let (head, body) = http_res.into_parts();
    match actix_web::body::to_bytes_limited(body, MAX_RESPONSE_BYTES).await {
        Ok(Ok(bytes)) => {
            let outcome = match serde_json::from_slice::<Answer>(&bytes) {
                Ok(Answer { error: Some(_), .. })
                | Ok(Answer { result: Some(AnswerResult { is_error: true }), .. }) => Outcome::Error,
                _ => Outcome::Ok,
            };
            (ServiceResponse::new(http_req, head.set_body(bytes).map_into_boxed_body()), outcome)
        }
        _ => {
            tracing::error!("MCP response too large or unreadable");
            let res = HttpResponse::InternalServerError().json(serde_json::json!({
                "error": "response_too_large",
                "message": "the response could not be delivered",
            }));
            (ServiceResponse::new(http_req, res), Outcome::Error)
        }
    }
}

/// Reads and discards a small request body nobody read, so the connection survives a
/// refusal: actix closes a keep-alive connection whose body was left unread, which made
/// every 401 cost a new TCP connection (the bench's 401 rows ran slower than the full
/// path). Bodies over [`DRAIN_LIMIT`], or slower than [`DRAIN_TIMEOUT`], are left to that
/// close instead.
async fn drain_small_body(req: &mut ServiceRequest) {
    let small = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > 0 && n <= DRAIN_LIMIT);
    if !small {
        return;
    }
    let mut payload = req.take_payload();
    let drain = async {
        let mut seen = 0;
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
}

/// RFC 6750 §2.3 query tokens are refused outright: URLs end up in logs and histories.
fn token_in_query(query: &str) -> bool {
    !query.is_empty()
        && query.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or(pair);
            key.eq_ignore_ascii_case("access_token") || key.eq_ignore_ascii_case("token")
        })
}

/// The client address, for `last_used_from`.
fn peer(req: &ServiceRequest) -> Option<String> {
    let none = tessera_auth::TrustedProxies::default();
    let trusted = req.app_data::<web::Data<McpState>>().map_or(&none, |s| &s.inner.config.trusted_proxies);
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    let ip = trusted.client_ip(req.peer_addr().map(|a| a.ip()), forwarded);
    ip.map(|ip| ip.to_string())
}

/// Reads the body (bounded), puts it back for rmcp, and learns the method and tool.
async fn peek_body(req: &mut ServiceRequest) -> Result<Peek, McpDenial> {
    let accepts = |mime: &str| {
        req.headers()
            .get_all(header::ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|m| m.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(mime))
    };
    if !(accepts("application/json") && accepts("text/event-stream")) {
        return Err(McpDenial::NotAcceptable);
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(McpDenial::UnsupportedMediaType);
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| McpDenial::ParseError)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(McpDenial::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let mut body: Bytes = body.freeze();
    let mut message: serde_json::Value = serde_json::from_slice(&body).map_err(|_| McpDenial::ParseError)?;
    let object = match &mut message {
        serde_json::Value::Array(_) => return Err(McpDenial::InvalidRequest("JSON-RPC batches are not supported")),
        serde_json::Value::Object(object) => object,
        _ => return Err(McpDenial::InvalidRequest("a JSON-RPC message must be an object")),
    };
    if object.get("method").and_then(|m| m.as_str()) == Some("initialize") {
        // The guide's clients send neither `clientInfo` nor `capabilities` (see `compat`).
        let filled = compat::complete_initialize(object).map_err(|message| McpDenial::InvalidParams {
            id: object.get("id").cloned().and_then(|id| serde_json::from_value(id).ok()),
            message,
        })?;
        if !filled.is_empty() {
            tracing::debug!(?filled, "initialize without these fields: defaults filled in");
            body = serde_json::to_vec(&object).map_err(|_| McpDenial::ParseError)?.into();
            // rmcp reads the body as a stream, but the header must still describe it.
            req.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from(body.len()));
        }
    }
    if let Some(method) = object.get("method").and_then(|m| m.as_str())
        && method != "initialize"
        && KNOWN_METHODS.contains(&method)
        && object.contains_key("id")
    {
        compat::check_params(method, object).map_err(|message| McpDenial::InvalidParams {
            id: object.get("id").cloned().and_then(|id| serde_json::from_value(id).ok()),
            message,
        })?;
    }
    req.set_payload(body.into());
    let method = object.get("method").and_then(|m| m.as_str());
    let label = match method {
        Some(m) => KNOWN_METHODS.iter().find(|k| **k == m).copied().unwrap_or("other"),
        None => "response",
    };
    let is_call = method == Some("tools/call");
    let tool = if is_call {
        object
            .get("params")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .filter(|n| tool_scope(n).is_some())
            .map(str::to_owned)
    } else {
        None
    };
    Ok(Peek { label, tool, is_call })
}
