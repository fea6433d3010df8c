//! The one bearer guard of every face (`/mcp`, `/mcp/NAME`, `/api/v2`, token validation,
//! RFC 7662 introspection): identify → authorize → admit, each step refusing with the one
//! [`Denial`] type, which each face renders in its own protocol's shape without deciding
//! anything itself.
//!
//! 1. [`Guard::identify`]: exactly one `Authorization: Bearer` header, then the Validator
//!    (signature, audience, row, effective scopes). A token refused after its signature was
//!    verified and its row found is counted in its own usage (`rejected`) and may raise the
//!    auth-failure alert, on every face alike.
//! 2. The face's *policy* (a pure function of the principal and the request) decides which
//!    scopes the request needs; the guard never spends budget on a request the token may not
//!    make ([`Guard::admit`] takes the verdict first).
//! 3. [`Guard::admit`]: the token's and its user's rate limits, one budget for every face.
//!
//! What passes is an [`Identified`] caller whose request is counted exactly once, under the
//! label the face chose, with the outcome of its answer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tessera_core::ErrorCode;
use tessera_core::claims::Claims;
use tessera_core::validate::Principal;

use crate::{AuthError, BearerError, Decision, LimitScope, Metering, Outcome, UsageRecorder, Validator, bearer_token};

/// Usage label of a token refused by the Validator after it was identified.
pub const REJECTED_LABEL: &str = "rejected";

/// Which resource the token must name in its `aud` (RFC 8707).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// The built-in MCP server and the API (`{public}/mcp`).
    BuiltIn,
    /// A gateway server (`{public}/mcp/NAME`) or a direct server's own URL.
    Resource(&'a str),
}

impl<'a> Audience<'a> {
    /// The resource the Validator checks `aud` against (`None`: its built-in one).
    fn resource(self) -> Option<&'a str> {
        match self {
            Self::BuiltIn => None,
            Self::Resource(r) => Some(r),
        }
    }
}

/// Why the guard refused a request: the only refusals a bearer face can give before its own
/// protocol checks. Each knows its status, stable code and RFC 6750 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No usable `Authorization: Bearer` header (401).
    Bearer(BearerError),
    /// The token is bad: signature, claims, audience or its row (401 `invalid_token`).
    Rejected {
        /// Stable reason (`expired`, `revoked`, `wrong_audience`, ...).
        code: ErrorCode,
        /// Human sentence, never containing the token.
        message: String,
    },
    /// Token state cannot be checked now (503); never accepted in this case.
    Unavailable,
    /// The token lacks scopes for this request (403 `insufficient_scope`).
    InsufficientScope {
        /// Space-separated scopes that would allow it.
        needed: String,
    },
    /// Over the token's or its user's rate limit (429).
    RateLimited {
        /// Whose budget.
        scope: LimitScope,
        /// Requests per hour.
        limit: u32,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
}

impl Denial {
    /// The HTTP status every face answers this denial with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Bearer(_) | Self::Rejected { .. } => 401,
            Self::Unavailable => 503,
            Self::InsufficientScope { .. } => 403,
            Self::RateLimited { .. } => 429,
        }
    }

    /// The stable `error` code of the body.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Bearer(e) => e.code(),
            Self::Rejected { code, .. } => *code,
            Self::Unavailable => ErrorCode::TemporarilyUnavailable,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }

    /// The RFC 6750 §3.1 `error` of the `WWW-Authenticate` challenge; `None` when the client
    /// presented no bearer credentials at all (a bare challenge) or for a non-auth denial.
    pub fn challenge_error(&self) -> Option<&'static str> {
        match self {
            Self::Bearer(BearerError::Multiple) => Some("invalid_request"),
            Self::Bearer(e) if e.token_presented() => Some("invalid_token"),
            Self::Bearer(_) => None,
            Self::Rejected { .. } => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::Unavailable | Self::RateLimited { .. } => None,
        }
    }

    /// Whether the client presented bearer credentials (then a 401 names `error=`).
    pub fn presented(&self) -> bool {
        !matches!(self, Self::Bearer(e) if !e.token_presented())
    }

    /// A sentence for the body.
    pub fn message(&self) -> String {
        match self {
            Self::Bearer(e) => e.to_string(),
            Self::Rejected { message, .. } => message.clone(),
            Self::Unavailable => "token state cannot be checked right now; retry shortly".to_owned(),
            Self::InsufficientScope { needed } => format!("this request needs the scope(s): {needed}"),
            Self::RateLimited { scope: LimitScope::Token, limit, retry_after_secs } => {
                format!("this token may make {limit} requests per hour; retry in {retry_after_secs} s")
            }
            Self::RateLimited { scope: LimitScope::User, limit, retry_after_secs } => {
                format!("this user's tokens may make {limit} requests per hour together; retry in {retry_after_secs} s")
            }
        }
    }
}

/// A face's verdict on what an identified request needs (its policy's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The token's scopes allow it.
    Allow,
    /// It needs these space-separated scopes, which the token lacks.
    Need(String),
}

impl Verdict {
    /// `Allow` when every scope of `needed` is in `principal`'s effective set, else `Need`
    /// naming the missing ones.
    pub fn require<'a>(principal: &Principal, needed: impl IntoIterator<Item = &'a str>) -> Self {
        let missing: Vec<&str> = needed.into_iter().filter(|s| !principal.effective.contains(s)).collect();
        if missing.is_empty() { Self::Allow } else { Self::Need(missing.join(" ")) }
    }
}

/// The `RateLimit-*` values of an admitted request whose token (or user) has a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// Requests per hour.
    pub limit: u32,
    /// Requests left in the current burst.
    pub remaining: u32,
    /// Seconds until the burst is full again.
    pub reset_secs: u64,
}

impl RateHeaders {
    /// Header names and values, as every face sends them on success.
    pub fn pairs(&self) -> [(&'static str, u64); 3] {
        [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset_secs),
        ]
    }
}

/// A token that passed [`Guard::identify`]: whose it is, and where its request is counted.
#[derive(Debug)]
pub struct Identified {
    /// The token's principal.
    pub principal: Arc<Principal>,
    /// Its verified claims (introspection answers with them).
    pub claims: Claims,
    /// The client address (`last_used_from`).
    pub from: Option<String>,
    /// When the request arrived.
    pub now: DateTime<Utc>,
    usage: Arc<UsageRecorder>,
}

impl Identified {
    /// Counts this request in the token's usage under `label` (once per request).
    pub fn count(&self, label: &str, outcome: Outcome) {
        self.usage.record(self.principal.token_id, label, outcome, self.now, self.from.clone());
    }
}

/// The guard: the Validator and the metering of one process, shared by every face.
#[derive(Debug, Clone)]
pub struct Guard {
    validator: Arc<Validator>,
    metering: Arc<Metering>,
}

impl Guard {
    /// A guard over this process's Validator and metering.
    pub fn new(validator: Arc<Validator>, metering: Arc<Metering>) -> Self {
        Self { validator, metering }
    }

    /// The Validator (for a stream's periodic re-check).
    pub fn validator(&self) -> &Arc<Validator> {
        &self.validator
    }

    /// The metering (usage and rate limits).
    pub fn metering(&self) -> &Arc<Metering> {
        &self.metering
    }

    /// Step 1: the bearer token of the request's `Authorization` header values, checked for
    /// `audience`. A token refused after it was identified is counted against itself.
    pub async fn identify<'a>(
        &self,
        authorization: impl Iterator<Item = &'a [u8]>,
        audience: Audience<'_>,
        from: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Identified, Denial> {
        let token = bearer_token(authorization).map_err(Denial::Bearer)?;
        self.identify_token(token, audience, from, now).await
    }

    /// Step 1 for a token that came another way (RFC 7662's form field).
    pub async fn identify_token(
        &self,
        token: &str,
        audience: Audience<'_>,
        from: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Identified, Denial> {
        match self.validator.identify(token, audience.resource(), now).await {
            Ok((claims, principal)) => Ok(Identified {
                principal: Arc::new(principal),
                claims,
                from,
                now,
                usage: Arc::clone(&self.metering.usage),
            }),
            Err((AuthError::Rejected(rejection), identified)) => {
                if let Some(token_id) = identified {
                    self.metering.usage.record(token_id, REJECTED_LABEL, Outcome::Unauthorized, now, from);
                    self.metering.alerts.auth_failure(token_id, now);
                }
                Err(Denial::Rejected { code: rejection.code(), message: rejection.message() })
            }
            Err((AuthError::Unavailable(why), _)) => {
                tracing::warn!(reason = %why, "token state unavailable: refusing with 503");
                Err(Denial::Unavailable)
            }
        }
    }

    /// Whether a token admitted earlier still holds for `audience` at `now`: an open stream's
    /// periodic re-check (revoked, expired or narrowed away ends it). The Validator's caches
    /// make it cheap, and a revocation evicts them at once through NOTIFY.
    pub async fn still_valid(&self, token: &str, audience: Audience<'_>, now: DateTime<Utc>) -> bool {
        self.validator.identify(token, audience.resource(), now).await.is_ok()
    }

    /// Steps 2 and 3: the face's `verdict` first (a refused request spends no budget and is
    /// counted as `forbidden` under `label`), then the rate limit (a refusal counted as
    /// `rate_limited`). `Ok` carries the `RateLimit-*` values when a limit applies; the face
    /// counts the admitted request itself once its answer is known ([`Identified::count`]).
    pub async fn admit(
        &self,
        identified: &Identified,
        label: &str,
        verdict: Verdict,
    ) -> Result<Option<RateHeaders>, Denial> {
        if let Verdict::Need(needed) = verdict {
            identified.count(label, Outcome::Forbidden);
            return Err(Denial::InsufficientScope { needed });
        }
        let principal = &identified.principal;
        match self.metering.admit(principal, identified.from.as_deref(), identified.now).await {
            Decision::Unlimited => Ok(None),
            Decision::Allowed { limit, remaining, reset_secs } => {
                Ok(Some(RateHeaders { limit, remaining, reset_secs }))
            }
            Decision::Limited { scope, limit, retry_after_secs } => {
                identified.count(label, Outcome::RateLimited);
                Err(Denial::RateLimited { scope, limit, retry_after_secs })
            }
        }
    }
}

/// RFC 6750 §2.3: a token in the query string (`access_token=` or `token=`) is refused
/// outright on every face: URLs end up in logs and histories.
pub fn token_in_query(query: &str) -> bool {
    !query.is_empty()
        && query.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or(pair);
            key.eq_ignore_ascii_case("access_token") || key.eq_ignore_ascii_case("token")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_has_one_status_code_and_challenge() {
        let cases = [
            (Denial::Bearer(BearerError::Missing), 401, "missing_token", None),
            (Denial::Bearer(BearerError::WrongScheme), 401, "wrong_scheme", None),
            (Denial::Bearer(BearerError::Malformed), 401, "malformed", Some("invalid_token")),
            (Denial::Bearer(BearerError::Multiple), 401, "multiple_authorization_headers", Some("invalid_request")),
            (
                Denial::Rejected { code: ErrorCode::Expired, message: String::new() },
                401,
                "expired",
                Some("invalid_token"),
            ),
            (Denial::Unavailable, 503, "temporarily_unavailable", None),
            (
                Denial::InsufficientScope { needed: "read:x".into() },
                403,
                "insufficient_scope",
                Some("insufficient_scope"),
            ),
            (
                Denial::RateLimited { scope: LimitScope::Token, limit: 60, retry_after_secs: 3 },
                429,
                "rate_limited",
                None,
            ),
        ];
        for (denial, status, code, challenge) in cases {
            assert_eq!(denial.status(), status, "{denial:?}");
            assert_eq!(denial.code().as_str(), code, "{denial:?}");
            assert_eq!(denial.challenge_error(), challenge, "{denial:?}");
        }
    }

    #[test]
    fn tokens_in_the_query_string_are_noticed_whatever_their_case() {
        assert!(token_in_query("access_token=x"));
        assert!(token_in_query("a=1&TOKEN=x"));
        assert!(!token_in_query(""));
        assert!(!token_in_query("tokens=1&page=2"));
    }
}
