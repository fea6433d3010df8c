//! One request to `/mcp/S`, the gateway's face of the one bearer guard
//! ([`tessera_auth::Guard`]): Origin and query → identify (bearer, Validator with aud
//! `{mcp}/S`) → JSON-RPC peek (refusing bodies an upstream could read otherwise) and
//! header/body agreement → the server's policy (method allow-list, per-server and per-tool
//! scopes, held tools refused with `tool_changed`) → admit (rate limit) → session binding →
//! task ownership → upstream (configured headers only) → answer streamed back, a tool list
//! cut to what the token may call (and to pinned definitions) and a task list to the
//! token's own tasks.

use std::sync::Arc;
use tessera_core::ErrorCode;

use actix_web::http::{Method, StatusCode, header};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tessera_auth::{Audience, Outcome, Verdict, bearer_token, token_in_query};
use tessera_core::catalog::{ServerName, default_server_scopes};
use tessera_core::validate::Principal;
use tessera_mcp::McpDenial;
use tessera_store::{DiscoveredTool, ServedDefinition};
use tessera_tokens::{GatewayServer, ServerError};

use crate::filter::{Classes, Refusal, SeenTool, SseEvents, authorize, event_data, filter_tools, rewrite_event};
use crate::list::{Cut, Unread, cut_list};
use crate::rpc::{Rpc, RpcError};
use crate::upstream::{Answer, SendError, chunk, innermost};
use crate::{GatewayState, MAX_BODY_BYTES, not_found, unavailable};

/// Client headers passed upstream (besides the server's configured ones). Never
/// `Authorization` or `Cookie`.
const FORWARDED_REQUEST_HEADERS: &[&str] =
    &["accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name"];
/// Upstream headers passed back to the client.
const FORWARDED_RESPONSE_HEADERS: &[&str] =
    &["content-type", "mcp-session-id", "mcp-protocol-version", "cache-control"];
/// Largest JSON answer read to filter a `tools/list`.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Handles POST, GET and DELETE on `/mcp/{server}` (`name`, not yet checked).
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    name: String,
    state: web::Data<GatewayState>,
) -> HttpResponse {
    let inner = &state.inner;
    let Ok(server_name) = ServerName::parse(&name) else { return not_found() };
    // Cached per process: a steady request reads no registry row and opens no seal.
    let entry = match inner.servers.gateway_server(server_name.as_str()).await {
        // A direct server checks tokens itself; the gateway never speaks for it.
        Ok(entry) if entry.record.direct => return not_found(),
        Ok(entry) => entry,
        Err(ServerError::NotFound) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let server = &entry.record;
    // A 401 names what an OAuth client should ask for here (the server's default scopes, as
    // the authorization server offers them); a 403 names what the request lacked. Written
    // only for a refusal.
    let deny = |d: McpDenial| {
        let wanted = default_server_scopes(&server_name, false).join(" ");
        d.response(&inner.config.metadata_url(&server.name), &wanted)
    };

    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| inner.config.origin_allowed(o))
    {
        return deny(McpDenial::OriginNotAllowed);
    }
    if token_in_query(req.query_string()) {
        return deny(McpDenial::Unauthorized {
            presented: true,
            error: "invalid_request",
            code: ErrorCode::TokenInQuery,
            message: "tokens are accepted only in the Authorization header, never in the URL".to_owned(),
        });
    }
    let now = Utc::now();
    let forwarded = req.headers().get_all("x-forwarded-for").map(|v| v.as_bytes());
    let from = inner.config.trusted_proxies.client_address(req.peer_addr().map(|a| a.ip()), forwarded);
    let resource = inner.config.resource(&server.name);
    let authorization = || req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes());
    let identified = match inner.guard.identify(authorization(), Audience::Resource(&resource), from, now).await {
        Ok(identified) => identified,
        Err(denial) => return deny(denial.into()),
    };
    let principal = Arc::clone(&identified.principal);
    // Kept only for a stream's periodic re-check (below); never logged.
    let token = Credential(bearer_token(authorization()).map(str::to_owned).unwrap_or_default());
    let count = |label: &str, outcome: Outcome| identified.count(label, outcome);

    let (body, rpc) = if req.method() == Method::POST {
        match read_rpc(&req, payload).await {
            Ok((body, Ok(rpc))) => (body, rpc),
            // Never forwarded: an upstream could read it otherwise than the gateway did.
            Ok((_, Err(invalid))) => {
                count("invalid", Outcome::Error);
                return invalid.response();
            }
            Err(denial) => {
                count("invalid", Outcome::Error);
                return deny(denial);
            }
        }
    } else {
        (Bytes::new(), Rpc::default())
    };
    // Until the call is authorized its label is the method: a client naming made-up tools
    // must not mint usage rows.
    let mut label = gateway_label(&req, &rpc, false);

    if let Some(repeated) = tessera_mcp::repeated_mcp_header(req.headers()) {
        count(&label, Outcome::Error);
        return HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": rpc.id,
            "error": {"code": -32600, "message": format!("Invalid Request: the {repeated} header appears more than once")},
        }));
    }
    if let Some(mismatch) = header_mismatch(&req, &rpc) {
        count(&label, Outcome::Error);
        return HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": rpc.id,
            "error": {"code": -32600, "message": format!("Invalid Request: the {mismatch} header does not match the body")},
        }));
    }

    // The server's policy; a refused request spends no budget.
    let classes = classes(&entry);
    let mut answer_here = false;
    let verdict = match rpc.method.as_deref() {
        Some(method) => match authorize(&principal.effective, &server_name, method, rpc.name.as_deref(), &classes) {
            // A held tool (changed since its pin, or new under `hold`): never forwarded, and
            // refused by name only to a token that could otherwise call it.
            Ok(())
                if method == "tools/call" && !entry.pins.view(rpc.name.as_deref().unwrap_or_default()).callable() =>
            {
                count(&label, Outcome::Forbidden);
                let version = req.headers().get("mcp-protocol-version").and_then(|v| v.to_str().ok());
                return crate::rpc::tool_changed(rpc.name.as_deref().unwrap_or_default(), rpc.id.as_ref(), version);
            }
            Ok(()) => Verdict::Allow,
            Err(Refusal::Scope(needed)) => Verdict::Need(needed),
            Err(Refusal::Hidden) => {
                count(&label, Outcome::Forbidden);
                // Invisible: answered as the upstream answers a tool it does not have.
                return HttpResponse::Ok().json(json!({
                    "jsonrpc": "2.0", "id": rpc.id,
                    "error": {"code": -32602, "message": format!("Unknown tool: {}", rpc.name.unwrap_or_default())},
                }));
            }
            Err(Refusal::AnsweredHere) => {
                answer_here = true;
                Verdict::Allow
            }
            Err(Refusal::UnknownMethod) => {
                count(&label, Outcome::Error);
                // Never forwarded: an upstream might read a misspelt method as one.
                return crate::rpc::method_not_found(method, rpc.id.as_ref());
            }
        },
        None => Verdict::Allow,
    };
    let rate = match inner.guard.admit(&identified, &label, verdict).await {
        Ok(rate) => rate,
        Err(denial) => return deny(denial.into()),
    };
    if answer_here {
        count(&label, Outcome::Ok);
        return HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": rpc.id, "result": {}}));
    }

    label = gateway_label(&req, &rpc, true);

    // A server whose users bring their own credential: this person's, or a way to connect.
    let personal = match &entry.personal {
        None => None,
        Some(people) => match people.by_user.get(&principal.user_id) {
            Some(own) => Some(own.clone()),
            None => {
                count(&label, Outcome::Error);
                return crate::connect::required(&inner.config, &server.name, principal.user_id, asked(&req, &rpc));
            }
        },
    };

    let session = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(sid) = &session
        && !inner.sessions.owned_by(&server.name, sid, principal.token_id)
    {
        // Opened through another replica? The binding is shared through Postgres.
        match inner.servers.session_owner(server, sid).await {
            Ok(Some(owner)) if owner == principal.token_id => {
                inner.sessions.bind(&server.name, sid, owner);
            }
            Ok(_) => {
                count(&label, Outcome::Error);
                return HttpResponse::NotFound().json(
                    json!({"error": ErrorCode::SessionNotFound, "message": "no such session for this token; initialize again"}),
                );
            }
            Err(e) => return unavailable(&e),
        }
    }

    // A task belongs to the token that created it (`tasks.rs`); another token's is unknown.
    if let Some(method) = rpc.method.as_deref()
        && crate::tasks::ONE_TASK.contains(&method)
    {
        let owned = match rpc.task_id.as_deref() {
            Some(task) => match crate::tasks::owned(&state, server, task, principal.token_id).await {
                Ok(owned) => owned,
                Err(e) => return unavailable(&e),
            },
            None => false,
        };
        if !owned {
            count(&label, Outcome::Error);
            return crate::tasks::not_found(rpc.id.as_ref());
        }
    }

    // A stdio server's process is started (or waited for) here, so that a restart or the
    // process bound is a 503 with Retry-After and never a hang.
    if let Some(refused) = crate::stdio::admit(&state, server, principal.user_id, rpc.id.as_ref()).await {
        count(&label, Outcome::Error);
        return refused;
    }

    // An OAuth connection's access token may have ended early: kept to send once more.
    let retry_body = entry.personal.as_ref().is_some_and(|p| p.auth.oauth.is_some()).then(|| body.clone());
    let mut upstream = match forward(&state, &req, &entry, personal.as_ref(), principal.user_id, body).await {
        Ok(res) => res,
        Err(failure) => {
            count(&label, Outcome::Error);
            return failure.response(rpc.id.as_ref());
        }
    };
    let mut status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::UNAUTHORIZED
        && let (Some(body), Some(old)) = (retry_body, personal.as_ref())
        && let Some(fresh) = refreshed(&state, &server.name, principal.user_id, old).await
    {
        // The upstream refused the person's access token: refreshed once, sent once more.
        upstream = match forward(&state, &req, &entry, Some(&fresh), principal.user_id, body).await {
            Ok(res) => res,
            Err(failure) => {
                count(&label, Outcome::Error);
                return failure.response(rpc.id.as_ref());
            }
        };
        status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    }
    if personal.is_some() && status == StatusCode::UNAUTHORIZED {
        // The person's own credential no longer works upstream: they must connect again.
        count(&label, Outcome::Error);
        return crate::connect::required(&inner.config, &server.name, principal.user_id, asked(&req, &rpc));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // The upstream refused *our* credentials: the client can do nothing about it.
        tracing::warn!(server = %server.name, %status, "upstream refused the gateway's credentials");
        count(&label, Outcome::Error);
        return Failure::Refused.response(rpc.id.as_ref());
    }
    // A stateless upstream's 405 to the GET or DELETE clients send by design is no error.
    let expected_refusal =
        status == StatusCode::METHOD_NOT_ALLOWED && (req.method() == Method::GET || req.method() == Method::DELETE);
    if !expected_refusal {
        count(&label, if status.is_success() { Outcome::Ok } else { Outcome::Error });
    }
    let client_version = req.headers().get("mcp-protocol-version").and_then(|v| v.to_str().ok());
    if let Some(mismatch) = tessera_core::upstream::era_mismatch(client_version, session.is_some(), status.as_u16()) {
        return HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": rpc.id,
            "error": {"code": -32602, "message": mismatch.message(), "data": {
                "requested": mismatch.requested,
                "supported": [tessera_core::upstream::LAST_HANDSHAKE_ERA],
            }},
        }));
    }

    let mut res = HttpResponse::build(status);
    if let Some(rate) = rate {
        for (name, value) in rate.pairs() {
            res.insert_header((name, value));
        }
    }
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(v) = upstream.headers().get(*name)
            && let Ok(v) = header::HeaderValue::from_bytes(v.as_bytes())
        {
            res.insert_header((*name, v));
        }
    }
    if status.is_success() {
        if let Some(sid) = upstream.headers().get("mcp-session-id").and_then(|v| v.to_str().ok())
            && !inner.sessions.owned_by(&server.name, sid, principal.token_id)
        {
            inner.sessions.bind(&server.name, sid, principal.token_id);
            // Shared so that any replica serves the session to this token only; without the
            // row other replicas answer 404 and the client re-initializes (safe, not silent).
            if let Err(e) = inner.servers.bind_session(server, sid, principal.token_id).await {
                tracing::warn!(error = %e, server = %server.name, "could not share a gateway session binding");
            }
        }
        if req.method() == Method::DELETE
            && let Some(sid) = &session
        {
            inner.sessions.end(&server.name, sid);
            if let Err(e) = inner.servers.end_session(server, sid).await {
                tracing::warn!(error = %e, server = %server.name, "could not forget a gateway session binding");
            }
        }
    }
    let is_sse = upstream
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
    let is_list = matches!(rpc.method.as_deref(), Some("tools/list" | "tasks/list"));
    let task_call = rpc.task && rpc.method.as_deref() == Some("tools/call");
    if is_sse {
        // Every tool and task list on any stream, whatever its id.
        return res.streaming(filtered_sse(
            upstream,
            ListView { state: state.clone(), entry, principal, classes, id: rpc.id, task_call },
            token,
        ));
    }
    if is_list && status.is_success() {
        let view = ListView { state: state.clone(), entry, principal, classes, id: rpc.id, task_call };
        return match read_limited(upstream, inner.config.upstream_timeout).await {
            Some(bytes) => res.body(view.filter_json(&bytes).await),
            None => Failure::Timeout.response(view.id.as_ref()),
        };
    }
    // A small JSON answer goes out whole with its length: one write to the client instead of
    // a chunk and a terminating chunk. A larger one streams on after what was read.
    match tokio::time::timeout(inner.config.upstream_timeout, prefetch(upstream, WHOLE_ANSWER_BYTES)).await {
        Ok(Ok(Prefetched::Whole(bytes))) => {
            if task_call
                && status.is_success()
                && let Some(task) = crate::tasks::created_in(&bytes)
            {
                crate::tasks::bind(&state, &entry.record, &task, principal.token_id).await;
            }
            res.body(bytes)
        }
        Ok(Ok(Prefetched::Started(head, rest))) => {
            res.streaming(futures_util::stream::once(async move { Ok(head) }).chain(passthrough(rest)))
        }
        Ok(Err(e)) => {
            tracing::warn!(server = %entry.record.name, error = %innermost(&e), "upstream answer broke off");
            Failure::Unreachable.response(rpc.id.as_ref())
        }
        Err(_) => Failure::Timeout.response(rpc.id.as_ref()),
    }
}

/// Largest non-stream answer buffered to be sent with its length.
const WHOLE_ANSWER_BYTES: usize = 64 * 1024;

/// The first part of an upstream answer.
enum Prefetched {
    /// All of it.
    Whole(Bytes),
    /// More than the bound: what was read, and the rest still to come.
    Started(Bytes, Answer),
}

/// Reads an answer whole if it is at most `bound` bytes.
async fn prefetch(mut res: Answer, bound: usize) -> Result<Prefetched, hyper::Error> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = chunk(&mut res).await? {
        buf.extend_from_slice(&chunk);
        if buf.len() > bound {
            return Ok(Prefetched::Started(buf.freeze(), res));
        }
    }
    Ok(Prefetched::Whole(buf.freeze()))
}

/// Reads a POST body (bounded) and what it says as one JSON-RPC message (or why it is not
/// one the gateway forwards).
async fn read_rpc(req: &HttpRequest, mut payload: web::Payload) -> Result<(Bytes, Result<Rpc, RpcError>), McpDenial> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(McpDenial::UnsupportedMediaType);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| McpDenial::ParseError)?;
        if body.len().saturating_add(chunk.len()) > MAX_BODY_BYTES {
            return Err(McpDenial::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let rpc = crate::rpc::parse(&body);
    Ok((body, rpc))
}

/// 2026-07-28 clients repeat the method and name in headers; they must say what the body
/// says, or authorization could be judged on one and the upstream act on the other.
fn header_mismatch(req: &HttpRequest, rpc: &Rpc) -> Option<&'static str> {
    let header = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(m) = header("mcp-method")
        && Some(m) != rpc.method.as_deref()
    {
        return Some("Mcp-Method");
    }
    if let Some(n) = header("mcp-name")
        && Some(n) != rpc.name.as_deref()
    {
        return Some("Mcp-Name");
    }
    None
}

/// What the connect answer's form depends on.
fn asked<'a>(req: &'a HttpRequest, rpc: &'a Rpc) -> crate::connect::Asked<'a> {
    crate::connect::Asked {
        http: req.method(),
        id: rpc.id.as_ref(),
        rpc: rpc.method.as_deref(),
        version: req.headers().get("mcp-protocol-version").and_then(|v| v.to_str().ok()),
    }
}

/// Usage label: the tool of an authorized call, else the known method, else the HTTP method.
fn gateway_label(req: &HttpRequest, rpc: &Rpc, authorized: bool) -> String {
    match (rpc.method.as_deref(), rpc.name.as_deref()) {
        (Some("tools/call"), Some(tool)) if authorized && tessera_core::catalog::ToolName::parse(tool).is_ok() => {
            tool.to_owned()
        }
        (Some(m), _) => tessera_mcp::KNOWN_METHODS.iter().find(|k| **k == m).copied().unwrap_or("other").to_owned(),
        (None, _) if req.method() == Method::POST => "response".to_owned(),
        (None, _) => format!("http_{}", req.method().as_str().to_ascii_lowercase()),
    }
}

/// The server's tool classes: overrides, else discovered hints.
fn classes(entry: &GatewayServer) -> Classes {
    Classes(entry.tools.iter().map(|t| (t.record.name.clone(), t.access)).collect())
}

/// Why the upstream gave no answer.
enum Failure {
    /// Connection refused, reset, DNS: 502 with `Retry-After`.
    Unreachable,
    /// No answer within `TESSERA_UPSTREAM_TIMEOUT`: 504.
    Timeout,
    /// It refused the gateway's credentials: 502.
    Refused,
}

impl Failure {
    /// The answer, in JSON-RPC form when the client sent a request with an id.
    fn response(&self, id: Option<&Value>) -> HttpResponse {
        let (status, code, message) = match self {
            Self::Unreachable => {
                (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamUnavailable, "the upstream MCP server cannot be reached")
            }
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::UpstreamTimeout,
                "the upstream MCP server did not answer in time",
            ),
            Self::Refused => (
                StatusCode::BAD_GATEWAY,
                ErrorCode::UpstreamUnavailable,
                "the upstream MCP server refused the gateway's credentials",
            ),
        };
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        if !matches!(self, Self::Timeout) {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        match id {
            Some(id) => res.json(json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": -32000, "message": message, "data": {"error": code}},
            })),
            None => res.json(json!({"error": code, "message": message})),
        }
    }
}

/// The person's OAuth access token for server `name` after a refresh (theirs, or one another
/// instance is doing: waited for up to a few seconds), or `None` when the grant is gone or
/// the refresh failed (the person must connect again).
async fn refreshed(
    state: &GatewayState,
    name: &str,
    user: uuid::Uuid,
    old: &tessera_core::upstream::UpstreamHeader,
) -> Option<tessera_core::upstream::UpstreamHeader> {
    let servers = &state.inner.servers;
    match servers.refresh_connection(user, name, Utc::now()).await {
        Ok(tessera_tokens::Refreshed::Done | tessera_tokens::Refreshed::Busy) => {}
        Ok(tessera_tokens::Refreshed::Gone) => return None,
        Err(e) => {
            tracing::warn!(server = %name, error = %e, "could not refresh a connected account");
            return None;
        }
    }
    for _ in 0..25 {
        let entry = servers.gateway_server(name).await.ok()?;
        let own = entry.personal.as_ref()?.by_user.get(&user)?;
        if own.expose_value() != old.expose_value() {
            return Some(own.clone());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    None
}

/// Sends the request upstream with the server's headers and the allowed client headers.
async fn forward(
    state: &GatewayState,
    req: &HttpRequest,
    entry: &GatewayServer,
    personal: Option<&tessera_core::upstream::UpstreamHeader>,
    user: uuid::Uuid,
    body: Bytes,
) -> Result<Answer, Failure> {
    let inner = &state.inner;
    let server = &entry.record;
    let method = match *req.method() {
        Method::POST => hyper::Method::POST,
        Method::DELETE => hyper::Method::DELETE,
        _ => hyper::Method::GET,
    };
    let stdio = tessera_tokens::is_stdio(server).then(|| inner.stdio.as_ref());
    let uri = match stdio {
        Some(link) => link.ok_or(Failure::Unreachable)?.uri.clone(),
        None => hyper::Uri::try_from(server.url.as_str()).map_err(|_| Failure::Unreachable)?,
    };
    let mut up = hyper::Request::builder().method(method).uri(uri);
    if let Some(Some(link)) = stdio {
        up = crate::stdio::bridge_headers(up, link, &server.name, user);
    }
    for name in FORWARDED_REQUEST_HEADERS {
        for v in req.headers().get_all(*name) {
            up = up.header(*name, v.as_bytes());
        }
    }
    // Unopenable headers were logged when the entry was read.
    let configured = entry.headers.as_ref().ok_or(Failure::Refused)?;
    // The person's own credential replaces a shared header of the same name.
    for h in configured.iter().filter(|h| personal.is_none_or(|p| p.name() != h.name())) {
        up = up.header(h.name(), h.expose_value());
    }
    if let Some(own) = personal {
        up = up.header(own.name(), own.expose_value());
    }
    let Ok(request) = up.body(http_body_util::Full::new(body)) else {
        // A configured header that is not valid HTTP: the server is misconfigured.
        tracing::warn!(server = %server.name, "a configured upstream header is not valid HTTP");
        return Err(Failure::Refused);
    };
    // The timeout covers the answer's headers; a stream then runs as long as it runs.
    match tokio::time::timeout(inner.config.upstream_timeout, inner.client().send(request)).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(SendError::ConnectTimeout)) | Err(_) => Err(Failure::Timeout),
        Ok(Err(SendError::Failed(why))) => {
            tracing::warn!(server = %server.name, error = %why, "upstream unreachable");
            Err(Failure::Unreachable)
        }
    }
}

/// The upstream's body, chunk by chunk as it arrives.
fn passthrough(res: Answer) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::unfold(Some(res), |res| async move {
        let mut res = res?;
        match chunk(&mut res).await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(res))),
            Ok(None) => None,
            Err(e) => Some((Err(actix_web::error::ErrorBadGateway(innermost(&e))), None)),
        }
    })
}

/// Reads a whole (JSON) answer within the timeout and size bound.
async fn read_limited(mut res: Answer, timeout: std::time::Duration) -> Option<Bytes> {
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(chunk) = chunk(&mut res).await.ok()? {
            if buf.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                return None;
            }
            buf.extend_from_slice(&chunk);
        }
        Some(buf.freeze())
    };
    tokio::time::timeout(timeout, read).await.ok().flatten()
}

/// The bearer token of an open stream. Its `Debug` prints nothing of it.
struct Credential(String);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// How often an open stream checks that its token still holds (revoked, expired, narrowed
/// away): revocation ends it within about this long.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What filtering a `tools/list` answer needs.
struct ListView {
    state: web::Data<GatewayState>,
    entry: Arc<GatewayServer>,
    principal: Arc<Principal>,
    classes: Classes,
    /// The request's id, echoed in an error the gateway writes itself (never used to match
    /// answers: every tool list is filtered, whatever its id).
    id: Option<Value>,
    /// Whether the request was a task-augmented `tools/call`, whose answer binds the task.
    task_call: bool,
}

impl ListView {
    /// Whether the stream's token is still good for this server (cached by the Validator;
    /// a revocation evicts it at once through NOTIFY).
    async fn still_valid(&self, token: &Credential) -> bool {
        let inner = &self.state.inner;
        let resource = inner.config.resource(&self.entry.record.name);
        inner.guard.still_valid(&token.0, Audience::Resource(&resource), Utc::now()).await
    }

    /// Filters one JSON-RPC message if it is a tool list: any answer carrying
    /// `result.tools`, whatever its id (an upstream may write the id otherwise than the client
    /// did, and one replayed on a resumed stream answers another request); records what it
    /// showed. A task list (`result.tasks`) keeps the token's own tasks.
    async fn filter(&self, message: &mut Value) -> bool {
        let mut tasks_cut = false;
        if let Some(ids) = crate::tasks::listed(message) {
            // A task list shows the token's own tasks only (a lookup failure hides the task).
            let mut own = std::collections::HashSet::new();
            for id in ids {
                let (server, token) = (&self.entry.record, self.principal.token_id);
                if crate::tasks::owned(&self.state, server, &id, token).await.unwrap_or(false) {
                    own.insert(id);
                }
            }
            tasks_cut = crate::tasks::keep_own(message, &own);
        }
        if message.get("result").and_then(|r| r.get("tools")).is_none() {
            return tasks_cut;
        }
        let Ok(name) = ServerName::parse(&self.entry.record.name) else { return tasks_cut };
        let mut seen = Vec::new();
        let (effective, pins) = (&self.principal.effective, &self.entry.pins);
        let changed = filter_tools(message, effective, &name, &self.classes, pins, &mut seen);
        self.record(seen).await;
        changed || tasks_cut
    }

    /// Records what a listing showed, when it is news to the registry (a new description
    /// or hint, or a definition to pin or hold).
    async fn record(&self, seen: Vec<SeenTool>) {
        let found: Vec<DiscoveredTool> = seen
            .into_iter()
            .filter(|t| tessera_core::catalog::ToolName::parse(&t.name).is_ok())
            .map(|t| DiscoveredTool {
                name: t.name,
                description: t.description,
                read_only_hint: t.read_only_hint,
                definition: t.news.as_ref().map(ServedDefinition::of),
            })
            .collect();
        let pins_news = found.iter().any(|t| t.definition.is_some());
        // A steady `tools/list` writes nothing: only news is recorded (which evicts the entry).
        if (pins_news || !self.entry.knows(&found))
            && let Err(e) = self.state.inner.servers.record_discovered(&self.entry.record, &found, Utc::now()).await
        {
            tracing::warn!(error = %e, "could not record discovered tools");
        }
    }

    async fn filter_json(&self, bytes: &Bytes) -> Bytes {
        if let Ok(name) = ServerName::parse(&self.entry.record.name) {
            let mut seen = Vec::new();
            let (effective, classes, pins) = (&self.principal.effective, &self.classes, &self.entry.pins);
            match cut_list(bytes, effective, &name, classes, pins, &mut seen) {
                // Not a tool list: perhaps a task list, read below.
                Ok(Cut::NotAList) => {}
                Ok(Cut::Unchanged) => {
                    self.record(seen).await;
                    return bytes.clone();
                }
                Ok(Cut::Rewritten(cut)) => {
                    self.record(seen).await;
                    return Bytes::from(cut);
                }
                // Read the slow way below, exactly as before.
                Err(Unread) => {}
            }
        }
        // Unchanged, or not JSON (nothing to list, nothing to leak): passed on as it came.
        if let Ok(mut message) = serde_json::from_slice::<Value>(bytes)
            && self.filter(&mut message).await
        {
            return Bytes::from(message.to_string());
        }
        bytes.clone()
    }

    /// One SSE event, rewritten when it is a tool list to filter.
    async fn filter_event(&self, event: Vec<u8>) -> Vec<u8> {
        if let Some(mut message) = event_data(&event) {
            if self.task_call
                && let Some(task) = crate::tasks::created(&message)
            {
                crate::tasks::bind(&self.state, &self.entry.record, task, self.principal.token_id).await;
            }
            if self.filter(&mut message).await {
                return rewrite_event(&event, &message);
            }
        }
        event
    }
}

/// The SSE answer with the event answering our `tools/list` rewritten; every other event
/// passes as soon as it is complete. The stream ends once its token stops being valid.
fn filtered_sse(
    res: Answer,
    view: ListView,
    token: Credential,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let checked = tokio::time::Instant::now();
    futures_util::stream::unfold(Some((res, SseEvents::default(), view, token, checked)), |st| async move {
        let (mut res, mut events, view, token, mut checked) = st?;
        loop {
            if checked.elapsed() >= RECHECK {
                if !view.still_valid(&token).await {
                    return None;
                }
                checked = tokio::time::Instant::now();
            }
            // Waiting at most until the next check; an unfinished read loses nothing.
            let Ok(next) = tokio::time::timeout(RECHECK, chunk(&mut res)).await else { continue };
            match next {
                Ok(Some(chunk)) => {
                    let Some(complete) = events.push(&chunk) else {
                        return Some((Err(actix_web::error::ErrorBadGateway("upstream event too large")), None));
                    };
                    if complete.is_empty() {
                        continue;
                    }
                    let mut out = BytesMut::new();
                    for event in complete {
                        out.extend_from_slice(&view.filter_event(event).await);
                    }
                    return Some((Ok(out.freeze()), Some((res, events, view, token, checked))));
                }
                Ok(None) => {
                    // An unterminated last event is still an event: filter it too.
                    let rest = events.finish();
                    if rest.is_empty() {
                        return None;
                    }
                    return Some((Ok(Bytes::from(view.filter_event(rest).await)), None));
                }
                Err(e) => return Some((Err(actix_web::error::ErrorBadGateway(innermost(&e))), None)),
            }
        }
    })
}
