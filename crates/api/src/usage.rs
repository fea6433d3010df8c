//! `GET /api/v2/tokens/{id}/usage`: the hourly counters the MCP server writes, summed into
//! totals, a dense time series, per-method counts and denials.

use std::collections::BTreeMap;
use tessera_core::ErrorCode;

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::outcome::Outcome;
use tessera_store::UsageIncrement;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, authenticate};
use crate::error::{ApiError, ErrorBody};
use crate::tokens::visible_token;

/// Bucket size of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One bucket per hour (at most 31 days).
    Hour,
    /// One bucket per UTC day (at most 366 days).
    #[default]
    Day,
}

impl Granularity {
    fn step(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }

    fn max_span(self) -> Duration {
        match self {
            Self::Hour => Duration::days(31),
            Self::Day => Duration::days(366),
        }
    }

    /// The start of the bucket holding `t`.
    fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = self.step().num_seconds();
        let ts = t.timestamp();
        Utc.timestamp_opt(ts - ts.rem_euclid(step), 0).single().unwrap_or(t)
    }
}

/// The years a report's `from` and `to` may fall in. Wider dates are no usage Tessera can
/// have, and near chrono's limits the date arithmetic below would overflow.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=9999;

/// `t` when it lies within [`YEARS`], else a 400 `invalid_query` naming the parameter.
fn within_years(name: &'static str, t: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    if YEARS.contains(&t.year()) {
        return Ok(t);
    }
    Err(ApiError::BadRequest {
        code: ErrorCode::InvalidQuery,
        message: format!("`{name}` must lie between the years {} and {}", YEARS.start(), YEARS.end()),
        details: Some(Box::new(serde_json::json!({ "parameter": name }))),
    })
}

/// Query of the usage endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start (RFC 3339, inclusive; rounded down to the bucket). Default: `to` minus 30 days
    /// (`day`) or 24 hours (`hour`). Years 2000 to 9999.
    #[param(pattern = "^[2-9][0-9]{3}-")]
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive). Default: now. Years 2000 to 9999.
    #[param(pattern = "^[2-9][0-9]{3}-")]
    pub to: Option<DateTime<Utc>>,
    /// `hour` or `day` (default `day`).
    pub granularity: Option<Granularity>,
}

/// Request counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// Every request.
    pub requests: i64,
    /// Served successfully.
    pub ok: i64,
    /// Served with an error.
    pub error: i64,
    /// Refused (401, 403 or 429).
    pub denied: i64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome, n: i64) {
        self.requests += n;
        match outcome {
            Outcome::Ok => self.ok += n,
            Outcome::Error => self.error += n,
            Outcome::Unauthorized | Outcome::Forbidden | Outcome::RateLimited => self.denied += n,
        }
    }
}

/// One bucket of the series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bucket {
    /// Bucket start.
    pub start: DateTime<Utc>,
    /// Counts in the bucket.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Counts for one MCP method or tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MethodUsage {
    /// MCP method, or the tool's name for `tools/call`.
    pub method: String,
    /// Counts for it.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Refusals by HTTP status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Denials {
    /// Unauthenticated (bad, expired or revoked token).
    #[serde(rename = "401")]
    pub unauthorized: i64,
    /// Missing scope.
    #[serde(rename = "403")]
    pub forbidden: i64,
    /// Over the rate limit.
    #[serde(rename = "429")]
    pub rate_limited: i64,
}

/// The usage report.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Token id.
    pub token_id: Uuid,
    /// Start of the first bucket.
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Bucket size.
    pub granularity: Granularity,
    /// Sums over the whole range.
    pub totals: Counts,
    /// Every bucket in the range, zeros included.
    pub series: Vec<Bucket>,
    /// Per MCP method or tool, busiest first.
    pub methods: Vec<MethodUsage>,
    /// Refusals by status.
    pub denials: Denials,
    /// Last use ever seen (not limited to the range).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Client address of that last use.
    pub last_used_from: Option<String>,
}

/// The report's numbers, from raw rows (pure, so it is tested without a database).
pub fn aggregate(
    rows: &[UsageIncrement],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    granularity: Granularity,
) -> (Counts, Vec<Bucket>, Vec<MethodUsage>, Denials) {
    let mut totals = Counts::default();
    let mut buckets: BTreeMap<DateTime<Utc>, Counts> = BTreeMap::new();
    let mut start = granularity.floor(from);
    while start < to {
        buckets.insert(start, Counts::default());
        start += granularity.step();
    }
    let mut methods: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut denials = Denials::default();
    for row in rows {
        totals.add(row.outcome, row.count);
        buckets.entry(granularity.floor(row.hour)).or_default().add(row.outcome, row.count);
        methods.entry(row.method.as_str()).or_default().add(row.outcome, row.count);
        match row.outcome {
            Outcome::Unauthorized => denials.unauthorized += row.count,
            Outcome::Forbidden => denials.forbidden += row.count,
            Outcome::RateLimited => denials.rate_limited += row.count,
            Outcome::Ok | Outcome::Error => {}
        }
    }
    let series = buckets.into_iter().map(|(start, counts)| Bucket { start, counts }).collect();
    let mut methods: Vec<MethodUsage> =
        methods.into_iter().map(|(method, counts)| MethodUsage { method: method.to_owned(), counts }).collect();
    methods.sort_by(|a, b| b.counts.requests.cmp(&a.counts.requests).then_with(|| a.method.cmp(&b.method)));
    (totals, series, methods, denials)
}

/// Usage of one token over a time range.
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}/usage", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id"), UsageQuery),
    responses(
        (status = 200, description = "The report", body = UsageView),
        (status = 400, description = "Bad range or granularity", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn usage(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    query: web::Query<UsageQuery>,
) -> Result<web::Json<UsageView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    let record = visible_token(&state, &caller, id.into_inner()).await?;
    let granularity = query.granularity.unwrap_or_default();
    let to = within_years("to", query.to.unwrap_or(now))?;
    let default_span = match granularity {
        Granularity::Hour => Duration::hours(24),
        Granularity::Day => Duration::days(30),
    };
    let from = match query.from {
        Some(from) => within_years("from", from)?,
        // `to` is at least 2000-01-01, so this cannot underflow; checked all the same.
        None => to.checked_sub_signed(default_span).ok_or(ApiError::Internal)?,
    };
    let from = granularity.floor(from);
    if from >= to {
        return Err(ApiError::bad_request(ErrorCode::InvalidRange, "`from` must be before `to`"));
    }
    if to.signed_duration_since(from) > granularity.max_span() {
        return Err(ApiError::bad_request(
            ErrorCode::RangeTooLarge,
            format!("at most {} days per report at this granularity", granularity.max_span().num_days()),
        ));
    }
    let rows = state.store.usage_rows(record.id, from, to).await?;
    let unflushed = state.metering.usage.unflushed_last_uses(&[record.id]).remove(&record.id);
    let (last_used_at, last_used_from) =
        crate::tokens::latest_use((record.last_used_at, record.last_used_from), unflushed);
    let (totals, series, methods, denials) = aggregate(&rows, from, to, granularity);
    Ok(web::Json(UsageView {
        token_id: record.id,
        from,
        to,
        granularity,
        totals,
        series,
        methods,
        denials,
        last_used_at,
        last_used_from,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 - 1_800_000_000 % 86_400 + h * 3600, 0).unwrap()
    }

    fn row(h: i64, method: &str, outcome: &str, count: i64) -> UsageIncrement {
        UsageIncrement {
            token_id: Uuid::nil(),
            hour: at(h),
            method: method.into(),
            outcome: Outcome::from_stored(outcome),
            count,
            last_at: at(h),
            last_from: None,
        }
    }

    #[test]
    fn hourly_series_is_dense_and_sums_outcomes() {
        let rows = [row(1, "whoami", "ok", 3), row(1, "whoami", "401", 1), row(3, "tasks_list", "429", 2)];
        let (totals, series, methods, denials) = aggregate(&rows, at(0), at(4), Granularity::Hour);
        assert_eq!(totals, Counts { requests: 6, ok: 3, error: 0, denied: 3 });
        assert_eq!(series.len(), 4);
        assert_eq!(series[1].counts.requests, 4);
        assert_eq!(series[2].counts.requests, 0);
        assert_eq!(methods[0].method, "whoami");
        assert_eq!(denials, Denials { unauthorized: 1, forbidden: 0, rate_limited: 2 });
    }

    #[test]
    fn daily_buckets_gather_hours_of_the_same_day() {
        let rows = [row(1, "a", "ok", 1), row(23, "a", "error", 1), row(25, "a", "403", 1)];
        let (_, series, _, _) = aggregate(&rows, at(0), at(48), Granularity::Day);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].counts, Counts { requests: 2, ok: 1, error: 1, denied: 0 });
        assert_eq!(series[1].counts.denied, 1);
    }
}
