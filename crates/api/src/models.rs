//! Request and response bodies (the OpenAPI schemas come from these types).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tessera_core::SecretToken;
use tessera_store::{AuditEvent, TokenRecord, TokenStatus, User};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A token's metadata (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Token id (the JWT's `jti`).
    pub id: Uuid,
    /// Owner's user id.
    pub user_id: Uuid,
    /// Human name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Granted scopes (not inheritance-expanded).
    pub scopes: Vec<String>,
    /// What the granted scopes allow, inheritance applied (`write:x` ⇒ `read:x`, `mcp:*`):
    /// computed here so that clients never re-implement the rules.
    pub effective_scopes: Vec<String>,
    /// Resources the token is bound to (RFC 8707).
    pub audience: Vec<String>,
    /// `active`, `expired`, `revoked` or `rotated`, at the time of the answer.
    #[schema(value_type = String, example = "active")]
    pub status: TokenStatus,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour; `null` is unlimited.
    pub rate_limit_per_hour: Option<i32>,
    /// Last use seen by the MCP server.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Client address of that last use.
    pub last_used_from: Option<String>,
    /// The token this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
    /// The token that replaced this one.
    pub replaced_by: Option<Uuid>,
    /// The token that minted this one through the API; revoking that token revokes this one.
    pub minted_by: Option<Uuid>,
    /// When it was revoked or rotated.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the revocation takes (or took) effect: a rotation's grace end.
    pub revocation_effective_at: Option<DateTime<Utc>>,
    /// Why it was revoked, if someone said.
    pub revoke_reason: Option<String>,
    /// For an OAuth grant: the client it was granted to ("via OAuth — <client>").
    pub oauth_client: Option<OAuthClientRef>,
}

/// The OAuth client a grant belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthClientRef {
    /// `client_id`.
    pub id: String,
    /// Its display name.
    pub name: Option<String>,
}

impl TokenView {
    /// The view of a stored record at `now`.
    pub fn new(r: TokenRecord, now: DateTime<Utc>) -> Self {
        Self {
            status: r.status(now),
            effective_scopes: r.scope_set().expand().to_vec(),
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            description: r.description,
            scopes: r.scopes,
            audience: r.audience,
            created_at: r.created_at,
            expires_at: r.expires_at,
            rate_limit_per_hour: r.rate_limit_per_hour,
            last_used_at: r.last_used_at,
            last_used_from: r.last_used_from,
            rotated_from: r.rotated_from,
            replaced_by: r.replaced_by,
            minted_by: r.minted_by,
            revoked_at: r.revoked_at,
            revocation_effective_at: r.revocation_effective_at,
            revoke_reason: r.revoke_reason,
            oauth_client: r.oauth_client_id.map(|id| OAuthClientRef { id, name: r.oauth_client_name }),
        }
    }
}

/// A new token with its secret, the only time the secret is ever returned.
#[derive(Serialize, ToSchema)]
pub struct IssuedTokenView {
    /// The token's metadata.
    #[serde(flatten)]
    pub metadata: TokenView,
    /// The bearer secret. Shown once; Tessera keeps only its SHA-256.
    pub token: String,
}

impl IssuedTokenView {
    /// Metadata plus the secret.
    pub fn new(record: TokenRecord, secret: SecretToken, now: DateTime<Utc>) -> Self {
        Self { metadata: TokenView::new(record, now), token: secret.into_inner() }
    }
}

impl fmt::Debug for IssuedTokenView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokenView").field("metadata", &self.metadata).finish_non_exhaustive()
    }
}

/// `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// 1 to 100 characters, not all spaces, no NUL (surrounding spaces are trimmed).
    #[schema(example = "laptop", min_length = 1, max_length = 100, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub name: String,
    /// Up to 1000 characters, no NUL.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Catalog scopes; `mcp:admin` is granted by the CLI only.
    #[schema(value_type = Vec<GrantableScope>, min_items = 1, example = json!(["read:tasks", "execute:mcp"]))]
    pub scopes: Vec<String>,
    /// Lifetime, 1 to 365 days (default 30).
    #[serde(default)]
    // utoipa takes literals only: these mirror `tessera_core::values`, checked by a test.
    #[schema(minimum = 1, maximum = 365, default = 30)]
    pub expires_in_days: Option<i64>,
    /// Requests per hour, 1 to 1000000; absent or `null` for unlimited.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_hour: Option<i32>,
}

/// A scope the API may grant: the built-in catalog, whose one home is
/// `tessera_core::scope::CATALOG` (`mcp:admin` is the CLI's alone, so it is not listed), or a
/// registered upstream server's `read:S`, `write:S` or `call:S/TOOL`.
#[derive(Debug)]
pub struct GrantableScope;

/// The shape of a server scope (`tessera_core::catalog`: server names `[a-z0-9-]{1,32}`, tool
/// names 1 to 128 of `A-Za-z0-9_.-`); only registered servers' scopes are granted.
pub const SERVER_SCOPE_PATTERN: &str =
    r"^(?:(?:read|write):[a-z0-9-]{1,32}|call:[a-z0-9-]{1,32}/[A-Za-z0-9_.-]{1,128})$";

impl utoipa::PartialSchema for GrantableScope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaType, Type};
        let builtin = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("A built-in scope"))
            .enum_values(Some(tessera_core::scope::CATALOG.iter().copied()));
        let server = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("A registered upstream server's scope (GET /api/v2/limits lists the grantable ones)"))
            .pattern(Some(SERVER_SCOPE_PATTERN));
        AnyOfBuilder::new().description(Some("A grantable scope")).item(builtin).item(server).into()
    }
}

impl utoipa::ToSchema for GrantableScope {}

/// `PATCH /tokens/{id}`: every field optional; scopes may only narrow, expiry only shorten.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTokenRequest {
    /// New name (as for create).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub name: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<String>>,
    /// New rate limit; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_hour: Option<Option<i32>>,
    /// Narrower scopes (a subset of the granted ones).
    #[serde(default)]
    #[schema(value_type = Option<Vec<GrantableScope>>, min_items = 1)]
    pub scopes: Option<Vec<String>>,
    /// An earlier expiry (still in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `DELETE /tokens/{id}` (optional body).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why, recorded with the revocation (up to 500 characters, no NUL).
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub reason: Option<String>,
}

/// `POST /tokens/{id}/rotate` (optional body).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Seconds the old token keeps working, 0 to 86400 (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86400, default = 0)]
    pub grace_seconds: Option<i64>,
}

/// Status filter of `GET /tokens`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Usable now.
    Active,
    /// Revoked, or rotated past the grace.
    Revoked,
    /// Past expiry.
    Expired,
    /// Every token.
    #[default]
    All,
}

/// Query of `GET /tokens`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Filter by status (default `all`).
    pub status: Option<StatusFilter>,
    /// Name contains this text (case-insensitive).
    pub q: Option<String>,
}

/// One page of `GET /tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPageView {
    /// The tokens, newest first.
    pub items: Vec<TokenView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /tokens/{id}/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Most entries to return, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One audit entry about a token (never a secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Monotonic id.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened, e.g. `token.issue`, `token.revoke`.
    #[schema(example = "token.revoke")]
    pub action: String,
    /// The acting user, if known.
    pub actor_user_id: Option<Uuid>,
    /// The token used as API credential, if any.
    pub actor_token_id: Option<Uuid>,
    /// The client address (or `cli`), if known.
    pub ip: Option<String>,
    /// Extra facts about the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEvent> for AuditEntryView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            action: e.action,
            actor_user_id: e.actor_user_id,
            actor_token_id: e.actor_token_id,
            ip: e.ip,
            details: e.details,
        }
    }
}

/// `200` of `GET /tokens/{id}/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageView {
    /// The entries, oldest first.
    pub items: Vec<AuditEntryView>,
}

/// `200` of `POST /tokens/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationView {
    /// Always `true` here (an inactive token gets a 401).
    pub active: bool,
    /// Token id.
    pub id: Uuid,
    /// Owner's user id.
    pub sub: Uuid,
    /// Token name.
    pub name: String,
    /// Effective scopes (inheritance-expanded).
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour; `null` is unlimited.
    pub rate_limit_per_hour: Option<i32>,
}

/// `POST /auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account email (any case), at most 320 characters.
    #[schema(max_length = 320, pattern = r"^[^\u0000]*$")]
    pub email: String,
    /// Password.
    #[schema(format = Password)]
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest").field("email", &self.email).finish_non_exhaustive()
    }
}

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Admins see and manage every token.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Requests per hour all of the user's tokens share, on top of each token's own limit;
    /// null: no per-user limit.
    pub rate_limit_per_hour: Option<i32>,
    /// Whether the account may sign in and use tokens (false once deactivated).
    pub active: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            is_admin: u.is_admin,
            created_at: u.created_at,
            rate_limit_per_hour: u.rate_limit_per_hour,
            active: u.disabled_at.is_none(),
        }
    }
}

/// `PATCH /users/{id}` (admins): the per-user rate limit. `{}` changes nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// Requests per hour shared by all of the user's tokens (1..=1000000), or null to remove
    /// the per-user limit; absent: left as it is.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_hour: Option<Option<i32>>,
    /// `false` deactivates the account (its sessions end, every token and grant it holds is
    /// revoked at once, sign-in is refused); `true` reactivates it (revoked tokens stay
    /// revoked); absent: left as it is.
    #[serde(default)]
    pub active: Option<bool>,
}

/// `200` of `POST /auth/login`; the session itself travels in the HttpOnly cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginView {
    /// The signed-in account.
    pub user: UserView,
    /// Send as `X-CSRF-Token` on every unsafe request of this session.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// `200` of `GET /auth/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// The calling account.
    pub user: UserView,
    /// `session` or `token`.
    #[schema(example = "session")]
    pub auth: String,
    /// The session's CSRF token (sessions only).
    pub csrf_token: Option<String>,
    /// The token used as credential (tokens only).
    pub token_id: Option<Uuid>,
    /// That token's effective scopes (tokens only).
    pub scopes: Option<Vec<String>>,
}

/// `GET /api/v2/limits`: the bounds of token fields and the scopes the API grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    /// Longest token name, in characters (surrounding spaces are trimmed).
    pub name_max_chars: usize,
    /// Longest description, in characters.
    pub description_max_chars: usize,
    /// Longest revocation reason, in characters.
    pub reason_max_chars: usize,
    /// Smallest rate limit, requests per hour.
    pub rate_limit_min: u32,
    /// Largest rate limit, requests per hour.
    pub rate_limit_max: u32,
    /// Longest rotation grace, in seconds.
    pub grace_max_seconds: i64,
    /// Shortest lifetime, in days.
    pub lifetime_min_days: i64,
    /// Longest lifetime, in days.
    pub lifetime_max_days: i64,
    /// Lifetime when none is asked for, in days.
    pub lifetime_default_days: i64,
    /// Scopes a token can be granted through the API (`mcp:admin` is CLI-only): the built-in
    /// ones and `read:S`/`write:S` of every registered server (`call:S/TOOL` too, for any tool).
    pub grantable_scopes: Vec<String>,
    /// Every registered server with the tools a `call:S/TOOL` scope can name (known and not
    /// hidden), so the token form can offer one checkbox per tool.
    pub servers: Vec<ServerToolsView>,
}

/// A registered server and its callable tools, as the token form offers them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerToolsView {
    /// The server's name (`read:{name}`, `write:{name}`).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Names of its known, not hidden tools.
    pub tools: Vec<String>,
}

impl LimitsView {
    /// This build's bounds.
    pub fn current() -> Self {
        let l = tessera_core::values::LIMITS;
        Self {
            name_max_chars: l.name_max_chars,
            description_max_chars: l.description_max_chars,
            reason_max_chars: l.reason_max_chars,
            rate_limit_min: l.rate_limit_min,
            rate_limit_max: l.rate_limit_max,
            grace_max_seconds: l.grace_max_seconds,
            lifetime_min_days: l.lifetime_min_days,
            lifetime_max_days: l.lifetime_max_days,
            lifetime_default_days: l.lifetime_default_days,
            grantable_scopes: tessera_core::scope::CATALOG.iter().map(|s| (*s).to_owned()).collect(),
            servers: Vec::new(),
        }
    }
}
