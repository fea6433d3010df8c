//! The Validator: the one code path that decides whether a bearer token is good, shared by
//! the MCP server and `POST /api/v2/tokens/validate` so they can never disagree.
//!
//! Order (DESIGN.md "Validation"): header → signature (cached by token hash) → the token's
//! row (cached per `jti` for at most the TTL, evicted by `NOTIFY`) → effective scopes →
//! the face's policy → rate limit and usage ([`Metering`]). Every bearer face runs that
//! order through the one [`Guard`].

mod alerts;
mod bearer;
mod client_ip;
mod guard;
mod limits;
mod shared_limits;
mod usage;
mod validator;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tessera_core::validate::Principal;
use tessera_store::Store;

pub use alerts::{AlertSignal, AlertSink};
pub use bearer::{BearerError, bearer_token};
pub use client_ip::{Cidr, CidrError, TrustedProxies};
pub use guard::{Audience, Denial, Guard, Identified, REJECTED_LABEL, RateHeaders, Verdict, token_in_query};
pub use limits::{Decision, LimitScope, RateLimits, quota_for};
pub use shared_limits::{SharedLimits, lease_decision, slice_size};
pub use tessera_core::outcome::Outcome;
pub use usage::{FlushStats, UsageRecorder};
pub use validator::{AuthError, FEED_DEAD_AFTER, HEARTBEAT_INTERVAL, Validator, ValidatorConfig};

/// What an admitted token spends, shared by every face of one process: its per-token rate
/// limit (one budget for MCP and API calls alike) and its usage counters (DESIGN.md
/// "Validation", step 5).
#[derive(Debug, Default)]
pub struct Metering {
    /// Per-token GCRA limiters.
    pub limits: RateLimits,
    /// Per-user GCRA limiters: one budget shared by all of a user's tokens.
    pub user_limits: RateLimits,
    /// Usage counters waiting for the next flush.
    pub usage: Arc<UsageRecorder>,
    /// Alert signals noticed while admitting (429s, new networks), written off the request path.
    pub alerts: Arc<AlertSink>,
    /// Budgets shared with every replica through Postgres; `None`: this process's own (tests
    /// of one face, tools).
    pub shared: Option<SharedLimits>,
}

impl Metering {
    /// Spends one request of the token's budget, then of its user's (issue #17): a call
    /// needs room in both. A refusal names whose budget it was; the first one of a token's
    /// hour becomes a `token.rate_limited` alert.
    pub async fn admit(&self, principal: &Principal, ip: Option<&str>, now: DateTime<Utc>) -> Decision {
        let token = self.check(LimitScope::Token, principal.token_id, principal.rate_limit_per_hour).await;
        let decision = match token {
            Decision::Limited { .. } => token,
            _ => {
                match self.check(LimitScope::User, principal.user_id, principal.user_rate_limit_per_hour).await {
                    Decision::Unlimited => token,
                    // The tighter of the two decides what the headers announce.
                    Decision::Allowed { remaining, .. } if matches!(token, Decision::Allowed { remaining: r, .. } if r <= remaining) => {
                        token
                    }
                    user => user,
                }
            }
        };
        match decision {
            Decision::Limited { scope, limit, .. } => self.alerts.rate_limited(principal, scope, limit, now),
            _ => self.alerts.used(principal.token_id, ip, now),
        }
        decision
    }

    /// Budgets shared by every process on `store`'s database (the composition root's choice).
    pub fn shared(store: Store) -> Self {
        Self { shared: Some(SharedLimits::new(store)), ..Self::default() }
    }

    async fn check(&self, scope: LimitScope, key: uuid::Uuid, per_hour: Option<i32>) -> Decision {
        match (&self.shared, scope) {
            (Some(shared), _) => shared.check(scope, key, per_hour).await,
            (None, LimitScope::Token) => self.limits.check_as(scope, key, per_hour),
            (None, LimitScope::User) => self.user_limits.check_as(scope, key, per_hour),
        }
    }
}
