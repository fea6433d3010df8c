//! The Validator: the one code path that decides whether a bearer token is good, shared by
//! the MCP server and `POST /api/v2/tokens/validate` so they can never disagree.
//!
//! Order (DESIGN.md "Validation"): header → signature (cached by token hash) → the token's
//! row (cached per `jti` for at most the TTL, evicted by `NOTIFY`) → effective scopes →
//! rate limit and usage ([`Metering`]).

mod bearer;
mod client_ip;
mod limits;
mod usage;
mod validator;

use std::sync::Arc;

pub use bearer::{BearerError, bearer_token};
pub use client_ip::{Cidr, CidrError, TrustedProxies};
pub use limits::{Decision, RateLimits, quota_for};
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
    /// Usage counters waiting for the next flush.
    pub usage: Arc<UsageRecorder>,
}
