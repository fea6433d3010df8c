//! The `/mcp` face of the one bearer guard ([`tessera_auth::Guard`]): every request to
//! `/mcp` passes here first, as a pipeline of named steps, each refusing with the one
//! denial type ([`McpDenial`], which renders the guard's [`tessera_auth::Denial`]s):
//!
//! 1. [`transport`]: Origin, no token in the query string or a form body, no repeated
//!    `Mcp-Session-Id`, `Mcp-Method` or `Mcp-Name`.
//! 2. identify ([`Guard::identify`]): one bearer header, the Validator (signature, row,
//!    effective scopes); a refused but identified token is counted against itself.
//! 3. [`route`] / [`peek`]: POST bodies are read (bounded) and peeked for the JSON-RPC method
//!    and tool (which also completes or refuses a sparse `initialize`, see `compat.rs`);
//!    GET `/mcp/sse` goes to its own answer; anything else is a 405.
//! 4. [`policy`]: the endpoint's scopes, then the called tool's (declared next to it).
//! 5. admit ([`Guard::admit`]): the policy's verdict first, then the rate limit (token, then
//!    its user): a request the token may not make spends no budget.
//!
//! Only then does rmcp see the request, with the [`Caller`] in its extensions. Usage is
//! counted for every request whose token could be identified, in memory only, after the
//! answer from its outcome ([`classify`]).
//!
//! The body is read before the rate limit on purpose: a 429 is counted under the method or
//! tool it refused, and only a token that passed the Validator gets that far, so the read
//! costs nothing an anonymous client can trigger.

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
use tessera_auth::{Audience, Outcome, Verdict, token_in_query};
use tessera_core::validate::Principal;

use crate::error::McpDenial;
use crate::service::{Caller, EXECUTE_SCOPE, our_tool};
use crate::{Inner, McpState, compat, scan};

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

/// MCP headers that name one session, method or tool: each may appear once. Sent twice, one
/// could be judged and another acted on (here and at the gateway).
const SINGLE_HEADERS: &[&str] = &["mcp-session-id", "mcp-method", "mcp-name"];

/// The first of the MCP headers naming one session, method or tool that `headers` repeat.
pub fn repeated_mcp_header(headers: &header::HeaderMap) -> Option<&'static str> {
    SINGLE_HEADERS.iter().copied().find(|name| headers.get_all(*name).nth(1).is_some())
}

/// What the middleware learnt from the JSON-RPC body.
#[derive(Debug, Default)]
struct Peek {
    /// The label usage is counted under: the method, or the tool's name for `tools/call`.
    label: &'static str,
    /// The tool called and its scope, when it is one of ours.
    tool: Option<(&'static str, &'static str)>,
    /// Whether this is `tools/call`.
    is_call: bool,
}

/// Where a request identified by its token goes next.
enum Route {
    /// A JSON-RPC POST, peeked.
    Rpc(Peek),
    /// GET `/mcp/sse`: answered by `compat.rs` (a 405 naming `/mcp`).
    LegacySse,
    /// Any other HTTP method: refused here; counted under this label unless it is what
    /// clients send by design (`None`: GET and DELETE).
    NotAllowed(Option<&'static str>),
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

/// Refuses: counts the reason, drains a small body so the connection survives, answers.
async fn deny(inner: &Inner, mut req: ServiceRequest, denial: &McpDenial) -> ServiceResponse<BoxBody> {
    inner.metrics.auth_outcome(denial.reason());
    drain_small_body(&mut req).await;
    let required = inner.config.required_scopes.to_claim();
    req.into_response(denial.response(&inner.config.resource_metadata_url(), &required))
}

async fn guard(
    state: &McpState,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let inner = &*state.inner;
    if let Err(denial) = transport(&inner.config, &req) {
        return Ok(deny(inner, req, &denial).await);
    }
    let now = Utc::now();
    let authorization = req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes());
    let identified = match inner.guard.identify(authorization, Audience::BuiltIn, peer(&req), now).await {
        Ok(identified) => identified,
        Err(denial) => return Ok(deny(inner, req, &denial.into()).await),
    };
    let peek = match route(&mut req).await {
        Ok(Route::Rpc(peek)) => peek,
        // What clients send by design against a stateless server (mcp-remote's standard GET
        // for a stream, a DELETE at close, a probe for the legacy SSE transport) is answered
        // 405 but counted neither as an error nor as a denial: a clean session shows clean.
        Ok(Route::LegacySse) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Ok(Route::NotAllowed(None)) => return Ok(deny(inner, req, &McpDenial::MethodNotAllowed).await),
        Ok(Route::NotAllowed(Some(label))) => {
            identified.count(label, Outcome::Error);
            return Ok(deny(inner, req, &McpDenial::MethodNotAllowed).await);
        }
        Err(denial) => {
            identified.count("invalid", Outcome::Error);
            return Ok(deny(inner, req, &denial).await);
        }
    };
    let label = peek.tool.map_or(peek.label, |(tool, _)| tool);
    let verdict = policy(&inner.config, &identified.principal, &peek);
    let rate_headers = match inner.guard.admit(&identified, label, verdict).await {
        Ok(headers) => headers,
        Err(denial) => return Ok(deny(inner, req, &denial.into()).await),
    };

    inner.metrics.auth_outcome("ok");
    req.extensions_mut().insert(Caller(Arc::clone(&identified.principal)));
    let (mut res, outcome) = classify(next.call(req).await?, peek.is_call).await;
    identified.count(label, outcome);
    if let Some(rate) = rate_headers {
        let headers = res.headers_mut();
        for (name, value) in rate.pairs() {
            headers.insert(header::HeaderName::from_static(name), header::HeaderValue::from(value));
        }
    }
    Ok(res)
}

/// Step 1: checks that need no token: a browser `Origin` we allow, and no token where it
/// must never be (the query string, RFC 6750 §2.3; a form body, §2.2).
fn transport(config: &crate::McpConfig, req: &ServiceRequest) -> Result<(), McpDenial> {
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| config.origin_allowed(o))
    {
        return Err(McpDenial::OriginNotAllowed);
    }
    if repeated_mcp_header(req.headers()).is_some() {
        return Err(McpDenial::InvalidRequest(
            "the Mcp-Session-Id, Mcp-Method and Mcp-Name headers may each appear once",
        ));
    }
    if token_in_query(req.query_string()) {
        return Err(McpDenial::Unauthorized {
            presented: true,
            error: "invalid_request",
            code: tessera_core::ErrorCode::TokenInQuery,
            message: "tokens are accepted only in the Authorization header, never in the URL".to_owned(),
        });
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| starts_with_ignore_case(ct.trim_start(), "application/x-www-form-urlencoded"));
    if form {
        // No MCP message is a form: a form body can only be a token in the wrong place.
        return Err(McpDenial::Unauthorized {
            presented: true,
            error: "invalid_request",
            code: tessera_core::ErrorCode::TokenInBody,
            message: "tokens are accepted only in the Authorization header, never in the body".to_owned(),
        });
    }
    Ok(())
}

/// Step 3: where the request goes by HTTP method and path; POST bodies are peeked.
async fn route(req: &mut ServiceRequest) -> Result<Route, McpDenial> {
    if req.method() == Method::POST {
        return peek(req).await.map(Route::Rpc);
    }
    if req.path().trim_end_matches('/') == "/mcp/sse" {
        return Ok(Route::LegacySse);
    }
    // Stateless: there is no SSE stream to GET and no session to DELETE. rmcp would answer
    // 405 without `Allow` and outside the error shape, so the guard answers.
    let expected = req.method() == Method::GET || req.method() == Method::DELETE;
    Ok(Route::NotAllowed((!expected).then_some("http_other")))
}

/// Step 4, the built-in server's policy: the endpoint's scopes
/// (`TESSERA_MCP_REQUIRED_SCOPES`), then for `tools/call` `execute:mcp` and the tool's own
/// scope.
fn policy(config: &crate::McpConfig, principal: &Principal, peek: &Peek) -> Verdict {
    let missing = config.required_scopes.missing_from(&principal.effective);
    if !missing.is_empty() {
        return Verdict::Need(missing.join(" "));
    }
    if peek.is_call {
        return Verdict::require(
            principal,
            [Some(EXECUTE_SCOPE), peek.tool.map(|(_, scope)| scope)].into_iter().flatten(),
        );
    }
    Verdict::Allow
}

/// ASCII case-insensitive prefix test, without allocating a lowercase copy.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether rmcp's answer was a success: a JSON-RPC error, or a `tools/call` result with
/// `isError`, counts as `error` ([`scan::judge`], which stops reading at the deciding key).
/// JSON answers are small and already buffered by rmcp, so taking one here costs no wait.
async fn classify(
    res: ServiceResponse<impl MessageBody + 'static>,
    is_call: bool,
) -> (ServiceResponse<BoxBody>, Outcome) {
    if !res.status().is_success() {
        return (res.map_into_boxed_body(), Outcome::Error);
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| starts_with_ignore_case(ct.trim_start(), "application/json"));
    if !is_json {
        return (res.map_into_boxed_body(), Outcome::Ok);
    }
    let (http_req, http_res) = res.into_parts();
    let (head, body) = http_res.into_parts();
    match actix_web::body::to_bytes_limited(body, MAX_RESPONSE_BYTES).await {
        Ok(Ok(bytes)) => {
            let outcome = scan::judge(&bytes, is_call);
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

/// The client address, for `last_used_from`.
fn peer(req: &ServiceRequest) -> Option<String> {
    let none = tessera_auth::TrustedProxies::default();
    let trusted = req.app_data::<web::Data<McpState>>().map_or(&none, |s| &s.inner.config.trusted_proxies);
    let forwarded = req.headers().get_all("x-forwarded-for").map(|v| v.as_bytes());
    trusted.client_address(req.peer_addr().map(|a| a.ip()), forwarded)
}

/// Reads the body (bounded), puts it back for rmcp, and learns the method and tool.
async fn peek(req: &mut ServiceRequest) -> Result<Peek, McpDenial> {
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
        if body.len().saturating_add(chunk.len()) > MAX_BODY_BYTES {
            return Err(McpDenial::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let body: Bytes = body.freeze();
    if let Some(peek) = scan::envelope(&body, KNOWN_METHODS, TOOL_NAMES.as_slice()).and_then(plain) {
        req.set_payload(body.into());
        return Ok(peek);
    }
    peek_value(req, body)
}

/// Our tools' names, for the body scan.
static TOOL_NAMES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| crate::service::tool_names().collect());

/// The common case, read from the scan: not an `initialize` (which may need completing) and
/// nothing [`compat::check_params`] would refuse. `None` sends the body the slow way, which
/// builds the value, completes or refuses it, and names the problem with the request's id.
fn plain(envelope: scan::Envelope) -> Option<Peek> {
    use scan::{Kind, Word};
    let method = match envelope.method {
        Some(Word::Known("initialize")) => return None,
        Some(Word::Known(m)) => Some(m),
        Some(Word::Unknown) => return Some(Peek { label: "other", tool: None, is_call: false }),
        Some(Word::Not(_)) | None => None,
    };
    let Some(method) = method else { return Some(Peek { label: "response", tool: None, is_call: false }) };
    let is_call = method == "tools/call";
    let params = envelope.params.filter(|p| p.kind != Kind::Null);
    if envelope.has_id {
        // The same rules as `compat::check_params`, on the scanned kinds.
        let listing = matches!(method, "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list");
        let ok = match params {
            None => !is_call,
            Some(p) if p.kind != Kind::Object => false,
            Some(p) => {
                (!listing || p.cursor.is_none_or(|c| matches!(c, Kind::String | Kind::Null)))
                    && (!is_call
                        || (matches!(p.name, Some(Word::Known(_) | Word::Unknown))
                            && p.arguments.is_none_or(|a| matches!(a, Kind::Object | Kind::Null))))
            }
        };
        if !ok {
            return None;
        }
    }
    let tool = match params.and_then(|p| p.name) {
        Some(Word::Known(name)) if is_call => our_tool(name),
        _ => None,
    };
    Some(Peek { label: method, tool, is_call })
}

/// The slow way: the body as a `serde_json::Value` (an `initialize`, or anything the scan
/// would not pass), with `compat`'s completion and its `-32602` answers.
fn peek_value(req: &mut ServiceRequest, mut body: Bytes) -> Result<Peek, McpDenial> {
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
        object.get("params").and_then(|p| p.get("name")).and_then(|n| n.as_str()).and_then(our_tool)
    } else {
        None
    };
    Ok(Peek { label, tool, is_call })
}
