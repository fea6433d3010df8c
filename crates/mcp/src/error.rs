//! Every way the MCP endpoint refuses a request, and its one mapping to HTTP.
//!
//! Bodies use the project's error shape `{"error", "message"}`; JSON-RPC level problems
//! (malformed JSON, batches) use the JSON-RPC error shape so MCP clients can show them.
//! No body or header ever contains the presented token.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use rmcp::ErrorData;
use rmcp::model::{RequestId, ServerJsonRpcMessage};
use serde_json::json;
use tessera_core::ErrorCode;

/// Why a request to `/mcp` was not passed to the MCP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpDenial {
    /// No usable credentials (401). `presented` decides whether `error=` is sent.
    Unauthorized {
        /// Whether the client sent credentials at all (RFC 6750 §3.1).
        presented: bool,
        /// RFC 6750 error code (`invalid_token` or `invalid_request`).
        error: &'static str,
        /// Stable reason code (`expired`, `revoked`, ...).
        code: ErrorCode,
        /// Human sentence, never containing the token.
        message: String,
    },
    /// The token lacks scopes (403 `insufficient_scope`).
    InsufficientScope {
        /// Space-separated scopes the request needs.
        needed: String,
    },
    /// The `Origin` header is not allowed (403).
    OriginNotAllowed,
    /// Over the token's rate limit (429).
    RateLimited {
        /// Whose budget: the token's or its user's.
        scope: tessera_auth::LimitScope,
        /// Requests per hour.
        limit: u32,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// Token state cannot be checked now (503); never accept in this case.
    Unavailable,
    /// The body is not JSON (JSON-RPC parse error).
    ParseError,
    /// A JSON-RPC batch or a non-object message.
    InvalidRequest(&'static str),
    /// A request rmcp would misread as an unknown method (`-32602`, naming the field).
    InvalidParams {
        /// The request's id, when it has a usable one.
        id: Option<RequestId>,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The client does not accept the response media types (406).
    NotAcceptable,
    /// The body is too large (413).
    PayloadTooLarge,
    /// Not POST (405 with `Allow: POST`): stateless, the endpoint has no SSE stream to GET
    /// and no session to DELETE.
    MethodNotAllowed,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
}

/// The guard's refusals, in this face's shape: the guard decides status, code and challenge.
impl From<tessera_auth::Denial> for McpDenial {
    fn from(denial: tessera_auth::Denial) -> Self {
        use tessera_auth::Denial as D;
        match denial {
            D::Bearer(_) | D::Rejected { .. } => Self::Unauthorized {
                presented: denial.presented(),
                error: denial.challenge_error().unwrap_or("invalid_token"),
                code: denial.code(),
                message: denial.message(),
            },
            D::Unavailable => Self::Unavailable,
            D::InsufficientScope { needed } => Self::InsufficientScope { needed },
            D::RateLimited { scope, limit, retry_after_secs } => Self::RateLimited { scope, limit, retry_after_secs },
        }
    }
}

impl McpDenial {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } | Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ParseError | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            // In band, as rmcp answers its own JSON-RPC errors to 2025-era clients: their SDKs
            // show a JSON-RPC error from a 200, but only "HTTP 400" from a 400.
            Self::InvalidParams { .. } => StatusCode::OK,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The reason counted in metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthorized { code, .. } => code.as_str(),
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope.as_str(),
            Self::OriginNotAllowed => ErrorCode::OriginNotAllowed.as_str(),
            Self::RateLimited { .. } => ErrorCode::RateLimited.as_str(),
            Self::Unavailable => ErrorCode::TemporarilyUnavailable.as_str(),
            Self::ParseError => "parse_error",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidParams { .. } => "invalid_params",
            Self::NotAcceptable => ErrorCode::NotAcceptable.as_str(),
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge.as_str(),
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType.as_str(),
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed.as_str(),
        }
    }

    /// The response; `resource_metadata` is the URL of our RFC 9728 document and `scope` what
    /// every request needs (named in a 401 so an OAuth client asks for it; MCP step-up).
    pub fn response(&self, resource_metadata: &str, scope: &str) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthorized { presented, error, code, message } => {
                let mut challenge = format!(r#"Bearer realm="tessera", resource_metadata="{resource_metadata}""#);
                if !scope.is_empty() {
                    challenge.push_str(&format!(r#", scope="{scope}""#));
                }
                if *presented {
                    challenge.push_str(&format!(r#", error="{error}", error_description="{}""#, quote_safe(message)));
                }
                insert(&mut res, header::WWW_AUTHENTICATE, &challenge);
                res.json(json!({"error": code, "message": message}))
            }
            Self::InsufficientScope { needed } => {
                let challenge = format!(
                    r#"Bearer realm="tessera", resource_metadata="{resource_metadata}", error="insufficient_scope", scope="{needed}", error_description="the token lacks a required scope""#
                );
                insert(&mut res, header::WWW_AUTHENTICATE, &challenge);
                res.json(json!({
                    "error": ErrorCode::InsufficientScope,
                    "message": format!("this request needs the scope(s): {needed}"),
                    "details": {"required_scopes": needed.split(' ').collect::<Vec<_>>()},
                }))
            }
            Self::OriginNotAllowed => res.json(json!({
                "error": ErrorCode::OriginNotAllowed,
                "message": "requests from this Origin are not allowed (add it to TESSERA_ALLOWED_ORIGINS)",
            })),
            Self::RateLimited { scope, limit, retry_after_secs } => {
                insert(&mut res, header::RETRY_AFTER, &retry_after_secs.to_string());
                insert_named(&mut res, "RateLimit-Policy", &format!("\"{}\";q={limit};w=3600", scope.as_str()));
                insert_named(&mut res, "RateLimit-Limit", &limit.to_string());
                insert_named(&mut res, "RateLimit-Remaining", "0");
                insert_named(&mut res, "RateLimit-Reset", &retry_after_secs.to_string());
                res.json(json!({
                    "error": ErrorCode::RateLimited,
                    "message": match scope {
                        tessera_auth::LimitScope::Token =>
                            format!("this token may make {limit} requests per hour; retry in {retry_after_secs} s"),
                        tessera_auth::LimitScope::User => format!(
                            "this user's tokens may make {limit} requests per hour together; retry in {retry_after_secs} s"
                        ),
                    },
                    "details": {"limit_scope": scope.as_str(), "limit_per_hour": limit, "retry_after_seconds": retry_after_secs},
                }))
            }
            Self::Unavailable => {
                insert(&mut res, header::RETRY_AFTER, "5");
                res.json(json!({
                    "error": ErrorCode::TemporarilyUnavailable,
                    "message": "token state cannot be checked right now; retry shortly",
                }))
            }
            Self::ParseError => res.json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": "Parse error: the body is not valid JSON"},
            })),
            Self::InvalidRequest(why) => res.json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": {"code": -32600, "message": format!("Invalid Request: {why}")},
            })),
            Self::InvalidParams { id, message } => res.json(ServerJsonRpcMessage::error(
                ErrorData::invalid_params(format!("Invalid params: {message}"), None),
                id.clone(),
            )),
            Self::NotAcceptable => res.json(json!({
                "error": ErrorCode::NotAcceptable,
                "message": "the client must accept both application/json and text/event-stream",
            })),
            Self::PayloadTooLarge => res.json(json!({
                "error": ErrorCode::PayloadTooLarge,
                "message": "the request body is too large",
            })),
            Self::UnsupportedMediaType => res.json(json!({
                "error": ErrorCode::UnsupportedMediaType,
                "message": "the request body must be application/json",
            })),
            Self::MethodNotAllowed => {
                insert(&mut res, header::ALLOW, "POST");
                res.json(json!({
                    "error": ErrorCode::MethodNotAllowed,
                    "message": "this MCP endpoint is stateless: send JSON-RPC messages with POST",
                }))
            }
        }
    }
}

fn insert(res: &mut actix_web::HttpResponseBuilder, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.insert_header((name, v));
    }
}

fn insert_named(res: &mut actix_web::HttpResponseBuilder, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.insert_header((name, v));
    }
}

/// Keeps a sentence legal inside a quoted-string header parameter.
fn quote_safe(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\\' && (c.is_ascii_graphic() || *c == ' ')).collect()
}

/// A 405 in the project's error shape naming the methods `allow`ed (RFC 9110 §15.5.6), for
/// the documents served next to `/mcp`.
pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, allow)).json(json!({
        "error": ErrorCode::MethodNotAllowed,
        "message": format!("this path answers only {allow}"),
    }))
}
