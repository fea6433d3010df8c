//! The API's one error type and its one mapping to HTTP.
//!
//! Every error leaving `/api/v2` has the shape `{"error": "snake_code", "message": "...",
//! "details"?: {...}}`, actix's own extractor errors and unmatched routes included.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use tessera_auth::AuthError;
use tessera_core::ErrorCode;
use tessera_core::lifecycle::TokenRuleViolation;
use tessera_core::upstream::DirectServerViolation;
use tessera_core::values::InvalidValue;
use tessera_store::StoreError;
use tessera_tokens::{ServerError, TokenError};
use utoipa::ToSchema;

/// How long clients should wait before retrying when the database is out of reach.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code for programs, one of the published vocabulary (`ErrorCode`).
    #[schema(schema_with = error_code_schema)]
    pub error: String,
    /// A sentence for people.
    pub message: String,
    /// Structured facts about the failure, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Present (and `false`) only on `POST /tokens/validate` answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// Everything that can go wrong in a request, one variant per HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is invalid.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: ErrorCode,
        /// Human sentence.
        message: String,
        /// Structured facts (boxed: keeps every `Result<_, ApiError>` small).
        details: Option<Box<Value>>,
    },
    /// 401: no (valid) credentials. `invalid_token` marks a presented but bad bearer token.
    #[error("{message}")]
    Unauthenticated {
        /// Stable code.
        code: ErrorCode,
        /// Human sentence.
        message: String,
        /// Whether a bearer token was presented and refused (RFC 6750 `error="invalid_token"`).
        invalid_token: bool,
    },
    /// 401 from `POST /tokens/validate`: the presented token is not active (the guard's
    /// refusal, answered with `"active": false`).
    #[error("{}", .0.message())]
    Inactive(tessera_auth::Denial),
    /// 403: authenticated but not allowed.
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: ErrorCode,
        /// Human sentence.
        message: String,
        /// Structured facts.
        details: Option<Box<Value>>,
        /// The scope a bearer credential lacks, for `WWW-Authenticate`.
        missing_scope: Option<&'static str>,
    },
    /// 404: no such resource, or one the caller may not see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the path exists but not with this method; holds the `Allow` header's value.
    #[error("this path answers only {0}")]
    MethodNotAllowed(&'static str),
    /// 409: the resource's state forbids the change.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: ErrorCode,
        /// Human sentence.
        message: String,
    },
    /// 413: the body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 429: slow down.
    #[error("{message}")]
    TooManyRequests {
        /// Human sentence.
        message: String,
        /// Seconds until a retry can succeed.
        retry_after: u64,
        /// The requests per hour and whose budget (`token` or `user`) refused the call
        /// (sent as `RateLimit-Limit` and `RateLimit-Policy`, with `RateLimit-Remaining: 0`,
        /// and as the error's `details`).
        limit: Option<(u32, &'static str)>,
    },
    /// A refusal of the one bearer guard (401, 403, 429 or 503), rendered as every bearer
    /// face renders it: the guard decides status, code and challenge.
    #[error("{}", .0.message())]
    Denied(tessera_auth::Denial),
    /// 503: the database is out of reach.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    /// 502: an upstream (an MCP server's authorization server) failed or refused.
    #[error("{0}")]
    BadGateway(String),
    /// 503: every password-check slot is taken (a sign-in flood); retry shortly.
    #[error("too many sign-ins are being checked right now; retry shortly")]
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 500: a bug or an unexpected failure; the cause goes to the log, never to the client.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into(), details: None }
    }

    /// The `error` code of this answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. } => *code,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::TooManyRequests { .. } => ErrorCode::RateLimited,
            Self::Denied(denial) | Self::Inactive(denial) => denial.code(),
            Self::Unavailable | Self::Busy { .. } => ErrorCode::TemporarilyUnavailable,
            Self::BadGateway(_) => ErrorCode::UpstreamUnavailable,
            Self::Internal => ErrorCode::InternalError,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Denied(denial) | Self::Inactive(denial) => {
                StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Unavailable | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            Self::Denied(denial) => return denied(denial, None),
            Self::Inactive(denial) => return denied(denial, Some(false)),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthenticated { invalid_token: true, .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tessera", error="invalid_token""#));
            }
            Self::Unauthenticated { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tessera""#));
            }
            Self::Forbidden { missing_scope: Some(scope), .. } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="tessera", error="insufficient_scope", scope="{scope}""#),
                ));
            }
            Self::TooManyRequests { retry_after, limit, .. } => {
                let retry_after = (*retry_after).max(1).to_string();
                res.insert_header((header::RETRY_AFTER, retry_after.clone()));
                if let Some((limit, scope)) = limit {
                    res.insert_header(("ratelimit-policy", format!("\"{scope}\";q={limit};w=3600")));
                    res.insert_header(("ratelimit-limit", limit.to_string()));
                    res.insert_header(("ratelimit-remaining", "0"));
                    res.insert_header(("ratelimit-reset", retry_after));
                }
            }
            Self::Unavailable => {
                res.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_SECS.to_string()));
            }
            Self::Busy { retry_after } => {
                res.insert_header((header::RETRY_AFTER, (*retry_after).max(1).to_string()));
            }
            Self::MethodNotAllowed(allow) => {
                res.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        let details = match self {
            Self::BadRequest { details, .. } | Self::Forbidden { details, .. } => details.as_deref().cloned(),
            Self::TooManyRequests { limit: Some((limit, scope)), retry_after, .. } => Some(serde_json::json!({
                "limit_scope": scope, "limit_per_hour": limit, "retry_after_seconds": (*retry_after).max(1),
            })),
            _ => None,
        };
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        res.json(ErrorBody { error: self.code().as_str().to_owned(), message: self.to_string(), details, active: None })
    }
}

/// A guard refusal on `/api/v2`: the challenge of RFC 6750 §3 (no `resource_metadata`: the
/// API is not an MCP resource), the rate-limit headers, the project's error body (with
/// `active` on `POST /tokens/validate`).
fn denied(denial: &tessera_auth::Denial, active: Option<bool>) -> HttpResponse<BoxBody> {
    use tessera_auth::Denial as D;
    let status = StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let mut challenge = r#"Bearer realm="tessera""#.to_owned();
        if let Some(error) = denial.challenge_error() {
            challenge.push_str(&format!(r#", error="{error}""#));
        }
        if let D::InsufficientScope { needed } = denial {
            challenge.push_str(&format!(r#", scope="{needed}""#));
        }
        res.insert_header((header::WWW_AUTHENTICATE, challenge));
    }
    let details = match denial {
        D::InsufficientScope { needed } => Some(serde_json::json!({
            "required_scopes": needed.split(' ').collect::<Vec<_>>(),
        })),
        D::RateLimited { scope, limit, retry_after_secs } => {
            let retry_after = (*retry_after_secs).max(1);
            res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            res.insert_header(("ratelimit-policy", format!("\"{}\";q={limit};w=3600", scope.as_str())));
            res.insert_header(("ratelimit-limit", limit.to_string()));
            res.insert_header(("ratelimit-remaining", "0"));
            res.insert_header(("ratelimit-reset", retry_after.to_string()));
            Some(serde_json::json!({
                "limit_scope": scope.as_str(), "limit_per_hour": limit, "retry_after_seconds": retry_after,
            }))
        }
        D::Unavailable => {
            res.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_SECS.to_string()));
            None
        }
        D::Bearer(_) | D::Rejected { .. } => None,
    };
    res.json(ErrorBody { error: denial.code().as_str().to_owned(), message: denial.message(), details, active })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => {
                Self::Conflict { code: ErrorCode::Conflict, message: format!("{what} already exists") }
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::Internal
            }
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        Self::BadRequest { code: e.code(), message: e.to_string(), details: None }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotFound => Self::NotFound("token"),
            TokenError::Rule(rule) => rule.into(),
            TokenError::Store(e) => e.into(),
            TokenError::Signing(cause) => {
                tracing::error!(%cause, "token signing failed");
                Self::Internal
            }
            // Only the OAuth token endpoint meets these, and it maps them itself.
            e @ (TokenError::GrantInvalid | TokenError::RefreshReused) => {
                Self::BadRequest { code: ErrorCode::InvalidGrant, message: e.to_string(), details: None }
            }
        }
    }
}

impl From<tessera_tokens::TeamError> for ApiError {
    fn from(e: tessera_tokens::TeamError) -> Self {
        use tessera_tokens::TeamError as T;
        let message = e.to_string();
        match e {
            T::NotFound(_) => Self::NotFound("team"),
            T::NoUser(_) => Self::NotFound("user"),
            T::Conflict(_) => Self::Conflict { code: ErrorCode::TeamExists, message },
            T::BuiltIn => Self::Conflict { code: ErrorCode::BuiltinTeam, message },
            T::BadName | T::BadGroup => Self::BadRequest { code: ErrorCode::InvalidName, message, details: None },
            T::AdminScope => Self::BadRequest { code: ErrorCode::AdminScopeForbidden, message, details: None },
            T::Scope(_) => Self::BadRequest { code: ErrorCode::UnknownScope, message, details: None },
            T::Token(e) => e.into(),
            T::Store(e) => e.into(),
        }
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        let bad = |code: ErrorCode, message: String| Self::BadRequest { code, message, details: None };
        match e {
            ServerError::NotFound => Self::NotFound("server"),
            ServerError::ToolNotFound => Self::NotFound("tool"),
            ServerError::NotHeld => Self::Conflict { code: ErrorCode::ToolNotHeld, message: e.to_string() },
            ServerError::Conflict => Self::Conflict {
                code: ErrorCode::ServerExists,
                message: "a server with that name already exists".to_owned(),
            },
            ServerError::Name(e) => bad(ErrorCode::InvalidName, e.to_string()),
            ServerError::Upstream(e) => bad(ErrorCode::InvalidServer, e.to_string()),
            ServerError::Direct(v @ DirectServerViolation::Headers) => Self::BadRequest {
                code: ErrorCode::DirectServerHeaders,
                message: v.to_string(),
                details: Some(Box::new(serde_json::json!({"field": "headers"}))),
            },
            ServerError::Direct(v @ DirectServerViolation::UrlIsAudience { .. }) => {
                Self::Conflict { code: ErrorCode::DirectServerUrlIsAudience, message: v.to_string() }
            }
            ServerError::Value(e) => e.into(),
            ServerError::Seal(e) => {
                tracing::error!(error = %e, "stored server headers cannot be opened");
                Self::Internal
            }
            ServerError::KeyUnavailable(cause) => {
                tracing::error!(%cause, "no secret key for upstream credentials (set TESSERA_SECRET_KEY)");
                Self::Internal
            }
            // Only introspection authenticates servers, and it answers in RFC 6749's shape itself.
            ServerError::BadCredentials => bad(ErrorCode::InvalidClient, e.to_string()),
            ServerError::NotPersonal => bad(ErrorCode::NotConnectable, e.to_string()),
            ServerError::Connect(c) => Self::BadGateway(c.to_string()),
            ServerError::Stdio(e) => bad(ErrorCode::InvalidServer, e.to_string()),
            ServerError::Store(e) => e.into(),
        }
    }
}

/// Each lifecycle rule's HTTP meaning: 400 when no token may have what was asked, 403 when
/// this credential may not grant it, 409 when the token's state forbids the change.
impl From<TokenRuleViolation> for ApiError {
    fn from(rule: TokenRuleViolation) -> Self {
        use TokenRuleViolation as V;
        let message = rule.to_string();
        let bad = |code, details: Option<Value>| Self::BadRequest {
            code,
            message: message.clone(),
            details: details.map(Box::new),
        };
        let forbidden = |code, details: Value| Self::Forbidden {
            code,
            message: message.clone(),
            details: Some(Box::new(details)),
            missing_scope: None,
        };
        match &rule {
            V::WidensScopes { missing } => {
                bad(ErrorCode::ScopeWidening, Some(serde_json::json!({ "missing": missing })))
            }
            V::ExtendsExpiry => bad(ErrorCode::ExpiryExtension, None),
            V::ExpiryInPast => bad(ErrorCode::ExpiryInPast, None),
            V::ExpiryOutOfRange => bad(ErrorCode::InvalidExpiry, None),
            V::AdminScopeViaApi => bad(ErrorCode::AdminScopeForbidden, None),
            V::DirectServerScopesMixed { direct, others } => bad(
                ErrorCode::DirectServerScopesMixed,
                Some(serde_json::json!({ "direct_servers": direct, "other_scopes": others })),
            ),
            V::ExceedsCredential { missing } => {
                forbidden(ErrorCode::ScopeExceedsCredential, serde_json::json!({ "missing": missing }))
            }
            V::NotAllowed { missing } => {
                forbidden(ErrorCode::ScopeNotAllowed, serde_json::json!({ "missing": missing }))
            }
            V::LooserThanCredential { credential_limit } => forbidden(
                ErrorCode::RateLimitExceedsCredential,
                serde_json::json!({ "credential_rate_limit_per_hour": credential_limit }),
            ),
            V::RotateOthersToken => forbidden(ErrorCode::NotOwner, serde_json::json!({})),
            V::Inactive => Self::Conflict { code: ErrorCode::TokenInactive, message },
            V::AlreadyRotated => Self::Conflict { code: ErrorCode::AlreadyRotated, message },
            V::RotateOAuthGrant => Self::Conflict { code: ErrorCode::OauthGrant, message },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Rejected(r) => {
                Self::Unauthenticated { code: r.code(), message: r.message(), invalid_token: true }
            }
            AuthError::Unavailable(cause) => {
                tracing::warn!(%cause, "token state unavailable");
                Self::Unavailable
            }
        }
    }
}

/// `ErrorBody.error` in the OpenAPI document: the published list of codes as an enum.
fn error_code_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .examples([serde_json::json!("not_found")])
        .build()
}

/// Turns actix's JSON body errors into [`ApiError`]s (wired through `JsonConfig`).
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    from_json_payload(&err).into()
}

/// The mapping of a JSON body failure, shared by the `Json` extractor and optional bodies.
pub fn from_json_payload(err: &JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge(err.to_string())
        }
        JsonPayloadError::Deserialize(e) => invalid_json(e),
        _ => ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read"),
    }
}

/// A JSON body that does not parse, or does not match the expected shape.
pub fn invalid_json(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::BadRequest {
            code: ErrorCode::InvalidBody,
            message: format!("the request body does not match the expected shape: {e}"),
            details: None,
        },
        _ => ApiError::BadRequest {
            code: ErrorCode::MalformedJson,
            message: format!("the request body is not valid JSON: {e}"),
            details: None,
        },
    }
}

/// Turns actix's path errors (e.g. an id that is not a UUID) into [`ApiError`]s.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidPath, format!("invalid path parameter: {err}")).into()
}

/// Turns actix's query-string errors into [`ApiError`]s.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidQuery, format!("invalid query string: {err}")).into()
}

/// The JSON 404 for paths under the API that match no route.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// The JSON 405 for a path outside `/api/v2` called with a method it does not have (under
/// `/api/v2`, actix's own 405 and [`jsonify_error`] do this).
pub async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(allow))
}

/// Safety net: any error response that is not JSON yet (from a layer we do not control)
/// is replaced by the one error shape, keyed by its status.
pub fn jsonify_error<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "not found"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, "unsupported content type"),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthenticated, "authentication is required"),
        StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "not allowed"),
        StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "too many requests; retry later"),
        s if s.is_client_error() => (ErrorCode::BadRequest, "the request is invalid"),
        _ => (ErrorCode::InternalError, "internal error"),
    };
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status);
    // Keep protocol headers such as WWW-Authenticate, Retry-After or Allow.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    let body = ErrorBody { error: code.as_str().to_owned(), message: message.to_owned(), details: None, active: None };
    let res = ServiceResponse::new(req, new.json(body)).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::ErrorHandlers;
    use actix_web::test as http_test;
    use actix_web::{App, HttpResponse, web};

    use super::*;

    #[actix_web::test]
    async fn plain_text_errors_become_the_one_json_shape_keeping_protocol_headers() {
        let app = http_test::init_service(
            App::new().wrap(ErrorHandlers::new().default_handler(jsonify_error)).route(
                "/x",
                web::get()
                    .to(|| async { HttpResponse::TooManyRequests().insert_header(("Retry-After", "3")).body("slow") }),
            ),
        )
        .await;
        let res = http_test::call_service(&app, http_test::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get("retry-after").map(|v| v.to_str().ok()), Some(Some("3")));
        let body: Value = http_test::read_body_json(res).await;
        assert_eq!(body["error"], "rate_limited");
        assert!(body["message"].is_string());
    }

    #[test]
    fn every_oauth_code_the_consent_endpoints_reuse_is_in_the_published_vocabulary() {
        // The token and value codes of the lower layers are `ErrorCode`s already; the OAuth
        // codes are RFC 6749's, strings, mapped by `known` where `/api/v2` reuses them.
        use tessera_oauth::rules::OAuthError as O;
        let oauth = [
            O::InvalidRequest(String::new()),
            O::InvalidClient(String::new()),
            O::InvalidGrant(String::new()),
            O::UnsupportedGrantType,
            O::UnsupportedResponseType,
            O::InvalidScope(String::new()),
            O::InvalidTarget,
            O::AccessDenied,
            O::InvalidRedirectUri(String::new()),
            O::InvalidClientMetadata(String::new()),
            O::SlowDown(1),
            O::ServerError,
            O::TemporarilyUnavailable,
        ];
        for code in oauth.iter().map(O::code) {
            assert!(ErrorCode::parse(code).is_some(), "{code} is not in the vocabulary");
        }
        let limited = ApiError::TooManyRequests { message: String::new(), retry_after: 1, limit: None };
        assert_eq!(limited.code(), ErrorCode::RateLimited);
    }

    #[test]
    fn lifecycle_rules_map_to_400_403_or_409_and_internal_causes_stay_private() {
        let widen = ApiError::from(TokenRuleViolation::WidensScopes { missing: vec!["write:x".into()] });
        assert_eq!(widen.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(widen.code(), ErrorCode::ScopeWidening);
        let inactive = ApiError::from(TokenRuleViolation::Inactive);
        assert_eq!(inactive.status_code(), StatusCode::CONFLICT);
        let exceeds = ApiError::from(TokenRuleViolation::ExceedsCredential { missing: vec!["write:x".into()] });
        assert_eq!(exceeds.status_code(), StatusCode::FORBIDDEN);
        let internal = ApiError::from(TokenError::Signing("key material detail".into()));
        assert_eq!(internal.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(internal.to_string(), "internal error");
        let internal = ApiError::from(StoreError::Corrupt("key material detail".into()));
        assert_eq!(internal.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(internal.to_string(), "internal error");
    }
}
