//! The published vocabulary of `error` codes: every code either face (`/api/v2` and `/mcp`,
//! the gateway included) puts in the project's JSON error shape `{"error", "message"}`.
//!
//! One list, so the same condition has the same code on both faces (a 429 is `rate_limited`
//! everywhere) and `openapi.json` can publish the list as an enum. Protocol-shaped answers
//! (JSON-RPC errors, RFC 6749 token-endpoint errors) keep their own codes; the OAuth codes
//! appear here only because the consent endpoints under `/api/v2` reuse them.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// A stable snake_case error code, the `error` field of every JSON error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the published list.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The code for a wire string, `None` for one outside the vocabulary.
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    // Generic answers, keyed by HTTP status.
    /// 400 with no more precise code.
    BadRequest = "bad_request",
    /// 401: no credentials (a session or a bearer token) where either is accepted.
    Unauthenticated = "unauthenticated",
    /// 403 with no more precise code.
    Forbidden = "forbidden",
    /// 404: no such resource, or one the caller may not see.
    NotFound = "not_found",
    /// 405: the path exists, not with this method (`Allow` names the methods).
    MethodNotAllowed = "method_not_allowed",
    /// 406: the client does not accept the answer's media types.
    NotAcceptable = "not_acceptable",
    /// 409 with no more precise code.
    Conflict = "conflict",
    /// 413: the body is too large.
    PayloadTooLarge = "payload_too_large",
    /// 415: the body is not JSON.
    UnsupportedMediaType = "unsupported_media_type",
    /// 429: a token's or its user's rate limit (or the sign-in throttle) is used up.
    RateLimited = "rate_limited",
    /// 503: the database (or a sign-in slot) is out of reach; retry after `Retry-After`.
    TemporarilyUnavailable = "temporarily_unavailable",
    /// 503 from `/ready`.
    NotReady = "not_ready",
    /// 500: a bug or an unexpected failure.
    InternalError = "internal_error",
    // The request's shape.
    /// The body could not be read or is not the expected object.
    InvalidBody = "invalid_body",
    /// The body is not valid JSON.
    MalformedJson = "malformed_json",
    /// A required field is absent.
    MissingField = "missing_field",
    /// A path parameter is malformed.
    InvalidPath = "invalid_path",
    /// A query parameter is malformed.
    InvalidQuery = "invalid_query",
    /// A paging cursor this server did not hand out.
    InvalidCursor = "invalid_cursor",
    /// A page size out of range.
    InvalidLimit = "invalid_limit",
    /// A time range whose start is not before its end.
    InvalidRange = "invalid_range",
    /// A time range longer than the granularity allows.
    RangeTooLarge = "range_too_large",
    // Reading the bearer token.
    /// No `Authorization` header.
    MissingToken = "missing_token",
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders = "multiple_authorization_headers",
    /// A scheme other than `Bearer`.
    WrongScheme = "wrong_scheme",
    /// The token is not a well-formed JWT.
    Malformed = "malformed",
    /// The token is longer than 4 KiB.
    TooLarge = "too_large",
    /// A token in the URL's query, never accepted.
    TokenInQuery = "token_in_query",
    /// A token in the body, never accepted.
    TokenInBody = "token_in_body",
    // Why a token is refused (401), the JWT first, then its row.
    /// `alg: none` or an algorithm this server does not sign with.
    AlgorithmNotAllowed = "algorithm_not_allowed",
    /// A `kid` this server does not know.
    UnknownKey = "unknown_key",
    /// A `crit` header parameter.
    UnsupportedCritical = "unsupported_critical",
    /// A key embedded in the header (`jwk`, `jku`, `x5u`, `x5c`).
    EmbeddedKey = "embedded_key",
    /// A `typ` other than Tessera's.
    WrongType = "wrong_type",
    /// The signature does not verify.
    InvalidSignature = "invalid_signature",
    /// Past its expiry.
    Expired = "expired",
    /// Before its `nbf`.
    NotYetValid = "not_yet_valid",
    /// Issued by another server.
    WrongIssuer = "wrong_issuer",
    /// Meant for another resource.
    WrongAudience = "wrong_audience",
    /// Signing failed on our side.
    SigningFailed = "signing_failed",
    /// The row's hash does not match the token.
    HashMismatch = "hash_mismatch",
    /// The row belongs to another user.
    SubjectMismatch = "subject_mismatch",
    /// Revoked.
    Revoked = "revoked",
    /// Rotated, past its grace period.
    Rotated = "rotated",
    /// The owner is disabled.
    UserDisabled = "user_disabled",
    // Who may do what (403 unless noted).
    /// The token lacks a scope the request needs.
    InsufficientScope = "insufficient_scope",
    /// A browser `Origin` that may not call `/mcp`.
    OriginNotAllowed = "origin_not_allowed",
    /// Only administrators may do this.
    AdminRequired = "admin_required",
    /// Only an administrator's session may do this.
    AdminOnly = "admin_only",
    /// The session's CSRF token is missing or wrong.
    CsrfFailed = "csrf_failed",
    /// 401: the session cookie names an ended session.
    SessionExpired = "session_expired",
    /// 401: only a browser session may do this.
    SessionRequired = "session_required",
    /// 400: logout with a bearer token.
    NotASession = "not_a_session",
    /// 401: wrong email or password.
    InvalidCredentials = "invalid_credentials",
    /// 400: not an email address.
    InvalidEmail = "invalid_email",
    /// 403: the person has not connected their own credential to this server (issue #25);
    /// `details.url` is where to.
    ConnectionRequired = "connection_required",
    /// 400: the server's users do not connect their own credential.
    NotConnectable = "not_connectable",
    /// 403: password sign-in is turned off (`TESSERA_PASSWORD_LOGIN=off`); sign in with SSO.
    PasswordLoginDisabled = "password_login_disabled",
    // A token's fields.
    /// Name empty or too long.
    InvalidName = "invalid_name",
    /// Description too long.
    InvalidDescription = "invalid_description",
    /// Revocation reason too long.
    InvalidReason = "invalid_reason",
    /// Rate limit out of range.
    InvalidRateLimit = "invalid_rate_limit",
    /// Grace period out of range.
    InvalidGrace = "invalid_grace",
    /// Expiry out of range.
    InvalidExpiry = "invalid_expiry",
    /// A NUL character in a text field.
    InvalidCharacters = "invalid_characters",
    /// Scopes that do not parse.
    InvalidScopes = "invalid_scopes",
    /// A scope outside the catalog.
    UnknownScope = "unknown_scope",
    // The token lifecycle's rules.
    /// Narrowing would add scopes.
    ScopeWidening = "scope_widening",
    /// Narrowing would extend the expiry.
    ExpiryExtension = "expiry_extension",
    /// An expiry in the past.
    ExpiryInPast = "expiry_in_past",
    /// `mcp:admin` asked for through the API.
    AdminScopeForbidden = "admin_scope_forbidden",
    /// Scopes beyond the credential's own.
    ScopeExceedsCredential = "scope_exceeds_credential",
    /// Scopes beyond what the owner's teams allow.
    ScopeNotAllowed = "scope_not_allowed",
    /// A rate limit looser than the credential's.
    RateLimitExceedsCredential = "rate_limit_exceeds_credential",
    /// Another user's token.
    NotOwner = "not_owner",
    /// 409: the token is no longer active.
    TokenInactive = "token_inactive",
    /// 409: the token was rotated already.
    AlreadyRotated = "already_rotated",
    /// 409: an OAuth grant's token, which its client refreshes instead.
    OauthGrant = "oauth_grant",
    /// A direct server's scopes together with scopes for anything else.
    DirectServerScopesMixed = "direct_server_scopes_mixed",
    // Servers, webhooks.
    /// 409: a server by that name exists.
    ServerExists = "server_exists",
    /// 409: a team by that name exists.
    TeamExists = "team_exists",
    /// 409: `everyone` has no members of its own and cannot be removed.
    BuiltinTeam = "builtin_team",
    /// An upstream server's URL or headers are invalid.
    InvalidServer = "invalid_server",
    /// 400: upstream headers on a direct server, which Tessera never calls.
    DirectServerHeaders = "direct_server_headers",
    /// 409: a direct server's new URL would leave its tokens' audience behind.
    DirectServerUrlIsAudience = "direct_server_url_is_audience",
    /// Too many tools in one change.
    TooManyTools = "too_many_tools",
    /// The user's webhook limit is reached.
    TooManyWebhooks = "too_many_webhooks",
    /// A webhook URL that is not an absolute http(s) URL.
    InvalidUrl = "invalid_url",
    /// A webhook target on a loopback, private or link-local address.
    PrivateTarget = "private_target",
    /// Webhook events missing or unknown.
    InvalidEvents = "invalid_events",
    // The gateway (`/mcp/{server}`).
    /// No such upstream session for this token.
    SessionNotFound = "session_not_found",
    /// The upstream speaks only the old SSE transport.
    SseTransportNotSupported = "sse_transport_not_supported",
    /// The upstream's answer is larger than the gateway relays.
    ResponseTooLarge = "response_too_large",
    /// 502: the upstream cannot be reached or refused the gateway.
    UpstreamUnavailable = "upstream_unavailable",
    /// 504: the upstream did not answer in time.
    UpstreamTimeout = "upstream_timeout",
    /// 403: the upstream now serves another definition of this tool than the pinned one (or
    /// a new tool held by the server's policy); an admin must approve it first.
    ToolChanged = "tool_changed",
    /// 409: approving a tool that is not held.
    ToolNotHeld = "tool_not_held",
    // OAuth codes (RFC 6749 and friends) the consent endpoints reuse.
    /// The authorization request is malformed.
    InvalidRequest = "invalid_request",
    /// Unknown or unauthenticated client.
    InvalidClient = "invalid_client",
    /// The grant is invalid, expired or reused.
    InvalidGrant = "invalid_grant",
    /// A grant type this server does not support.
    UnsupportedGrantType = "unsupported_grant_type",
    /// A response type this server does not support.
    UnsupportedResponseType = "unsupported_response_type",
    /// The requested scope is invalid.
    InvalidScope = "invalid_scope",
    /// The requested resource is not this server's.
    InvalidTarget = "invalid_target",
    /// The user denied the request.
    AccessDenied = "access_denied",
    /// A redirect URI the client did not register.
    InvalidRedirectUri = "invalid_redirect_uri",
    /// The client's metadata is invalid.
    InvalidClientMetadata = "invalid_client_metadata",
    /// Polling too fast.
    SlowDown = "slow_down",
    /// The authorization server failed.
    ServerError = "server_error",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_distinct_snake_case_and_parses_back() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} listed twice");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert_eq!(ErrorCode::parse(s), Some(*code));
        }
        assert_eq!(ErrorCode::parse("too_many_requests"), None);
    }
}
