//! Value types of the token lifecycle, parsed once at the edge (API body, CLI flag, MCP
//! argument). Each bound is one `const` here; the OpenAPI attributes, the CLI help, the SQL
//! `CHECK`s (mirrors, see `migrations/V1__initial.sql`) and the UI (served by
//! `GET /api/v2/limits`) read it from here.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::ErrorCode;

/// Longest token name, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;
/// Longest revocation reason, in characters.
pub const REASON_MAX_CHARS: usize = 500;
/// Smallest rate limit, requests per hour.
pub const RATE_LIMIT_MIN: u32 = 1;
/// Largest rate limit, requests per hour.
pub const RATE_LIMIT_MAX: u32 = 1_000_000;
/// Longest rotation grace, in seconds (one day).
pub const GRACE_MAX_SECS: i64 = 86_400;
/// Shortest token lifetime, in days.
pub const LIFETIME_MIN_DAYS: i64 = 1;
/// Longest token lifetime, in days.
pub const LIFETIME_MAX_DAYS: i64 = 365;
/// Lifetime of a token when none is asked for, in days.
pub const LIFETIME_DEFAULT_DAYS: i64 = 30;

/// A request value outside its bounds; the variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Name empty after trimming, too long, or with a NUL.
    #[error("name must be 1 to {NAME_MAX_CHARS} characters (surrounding spaces are trimmed)")]
    Name,
    /// Description too long or with a NUL.
    #[error("description must be at most {DESCRIPTION_MAX_CHARS} characters")]
    Description,
    /// Reason too long or with a NUL.
    #[error("reason must be at most {REASON_MAX_CHARS} characters")]
    Reason,
    /// Rate limit out of range.
    #[error(
        "rate_limit_per_hour must be between {RATE_LIMIT_MIN} and {RATE_LIMIT_MAX} (or null for unlimited), got {0}"
    )]
    RateLimit(i64),
    /// Grace out of range.
    #[error("grace_seconds must be between 0 and {GRACE_MAX_SECS}")]
    Grace(i64),
    /// Lifetime out of range.
    #[error("expiry must be between {LIFETIME_MIN_DAYS} and {LIFETIME_MAX_DAYS} days, got {0}")]
    Lifetime(i64),
    /// A text field holds a NUL character, which PostgreSQL cannot store.
    #[error("{0} must not contain NUL characters")]
    Nul(&'static str),
}

impl InvalidValue {
    /// Stable snake_case code for programs.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Name => ErrorCode::InvalidName,
            Self::Description => ErrorCode::InvalidDescription,
            Self::Reason => ErrorCode::InvalidReason,
            Self::RateLimit(_) => ErrorCode::InvalidRateLimit,
            Self::Grace(_) => ErrorCode::InvalidGrace,
            Self::Lifetime(_) => ErrorCode::InvalidExpiry,
            Self::Nul(_) => ErrorCode::InvalidCharacters,
        }
    }
}

fn reject_nul(field: &'static str, s: &str) -> Result<(), InvalidValue> {
    if s.contains('\0') { Err(InvalidValue::Nul(field)) } else { Ok(()) }
}

/// A token's human name: trimmed, 1..=100 characters. The API and the CLI both trim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TokenName(String);

impl TokenName {
    /// Trims `s` and checks its length.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        reject_nul("name", s)?;
        let s = s.trim();
        if (1..=NAME_MAX_CHARS).contains(&s.chars().count()) { Ok(Self(s.to_owned())) } else { Err(InvalidValue::Name) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A token's description, up to 1000 characters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Checks the length of `s`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        reject_nul("description", s)?;
        if s.chars().count() <= DESCRIPTION_MAX_CHARS { Ok(Self(s.to_owned())) } else { Err(InvalidValue::Description) }
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a token was revoked: trimmed, up to 500 characters; blank means no reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RevokeReason(String);

impl RevokeReason {
    /// Trims `s`; `None` when nothing is left.
    pub fn parse(s: &str) -> Result<Option<Self>, InvalidValue> {
        reject_nul("reason", s)?;
        let s = s.trim();
        match s.chars().count() {
            0 => Ok(None),
            n if n <= REASON_MAX_CHARS => Ok(Some(Self(s.to_owned()))),
            _ => Err(InvalidValue::Reason),
        }
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Requests per hour a token may make, 1..=1,000,000. `None` where it appears means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RateLimit(u32);

impl RateLimit {
    /// Checks the range of `n`.
    pub fn new(n: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(n) {
            Ok(v) if (RATE_LIMIT_MIN..=RATE_LIMIT_MAX).contains(&v) => Ok(Self(v)),
            _ => Err(InvalidValue::RateLimit(n)),
        }
    }

    /// A limit read back from the database, where a `CHECK` mirrors the bounds; a value
    /// outside them (only possible by hand-editing the row) counts as the largest limit.
    pub fn from_stored(n: i32) -> Self {
        Self(u32::try_from(n).unwrap_or(RATE_LIMIT_MAX).clamp(RATE_LIMIT_MIN, RATE_LIMIT_MAX))
    }

    /// Requests per hour.
    pub fn per_hour(self) -> u32 {
        self.0
    }

    /// The value for the `integer` column (always fits: the maximum is far below `i32::MAX`).
    pub fn to_stored(self) -> i32 {
        i32::try_from(self.0).unwrap_or(i32::MAX)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How long a rotated token keeps working, 0..=86,400 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grace(i64);

impl Grace {
    /// Checks the range of `secs`.
    pub fn from_secs(secs: i64) -> Result<Self, InvalidValue> {
        if (0..=GRACE_MAX_SECS).contains(&secs) { Ok(Self(secs)) } else { Err(InvalidValue::Grace(secs)) }
    }

    /// The grace in seconds.
    pub fn secs(self) -> i64 {
        self.0
    }

    /// The grace as a duration.
    pub fn duration(self) -> Duration {
        Duration::seconds(self.0)
    }
}

/// A new token's lifetime, 1..=365 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(i64);

impl Lifetime {
    /// Checks the range of `days`.
    pub fn from_days(days: i64) -> Result<Self, InvalidValue> {
        if (LIFETIME_MIN_DAYS..=LIFETIME_MAX_DAYS).contains(&days) {
            Ok(Self(days))
        } else {
            Err(InvalidValue::Lifetime(days))
        }
    }

    /// The default lifetime (30 days).
    pub fn default_days() -> Self {
        Self(LIFETIME_DEFAULT_DAYS)
    }

    /// The lifetime in days.
    pub fn days(self) -> i64 {
        self.0
    }

    /// The expiry instant of a token created at `now`; `None` only past the calendar's end.
    pub fn expires_at(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        now.checked_add_signed(Duration::days(self.0))
    }
}

/// Every bound above, as the UI and scripts read them (`GET /api/v2/limits`).
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Longest token name.
    pub name_max_chars: usize,
    /// Longest description.
    pub description_max_chars: usize,
    /// Longest revocation reason.
    pub reason_max_chars: usize,
    /// Smallest rate limit.
    pub rate_limit_min: u32,
    /// Largest rate limit.
    pub rate_limit_max: u32,
    /// Longest rotation grace.
    pub grace_max_seconds: i64,
    /// Shortest lifetime.
    pub lifetime_min_days: i64,
    /// Longest lifetime.
    pub lifetime_max_days: i64,
    /// Default lifetime.
    pub lifetime_default_days: i64,
}

/// The bounds of this build.
pub const LIMITS: Limits = Limits {
    name_max_chars: NAME_MAX_CHARS,
    description_max_chars: DESCRIPTION_MAX_CHARS,
    reason_max_chars: REASON_MAX_CHARS,
    rate_limit_min: RATE_LIMIT_MIN,
    rate_limit_max: RATE_LIMIT_MAX,
    grace_max_seconds: GRACE_MAX_SECS,
    lifetime_min_days: LIFETIME_MIN_DAYS,
    lifetime_max_days: LIFETIME_MAX_DAYS,
    lifetime_default_days: LIFETIME_DEFAULT_DAYS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(TokenName::parse("  laptop ").unwrap().as_str(), "laptop");
        assert_eq!(TokenName::parse("   "), Err(InvalidValue::Name));
        assert!(TokenName::parse(&"x".repeat(NAME_MAX_CHARS)).is_ok());
        assert_eq!(TokenName::parse(&"x".repeat(NAME_MAX_CHARS + 1)), Err(InvalidValue::Name));
    }

    #[test]
    fn nul_characters_are_refused_with_the_field_named() {
        assert_eq!(TokenName::parse("a\0b"), Err(InvalidValue::Nul("name")));
        assert_eq!(Description::parse("a\0"), Err(InvalidValue::Nul("description")));
        assert_eq!(RevokeReason::parse("\0"), Err(InvalidValue::Nul("reason")));
        assert!(InvalidValue::Nul("name").to_string().contains("name"));
    }

    #[test]
    fn blank_reason_is_no_reason() {
        assert_eq!(RevokeReason::parse("  "), Ok(None));
        assert_eq!(RevokeReason::parse(&"r".repeat(REASON_MAX_CHARS + 1)), Err(InvalidValue::Reason));
    }

    #[test]
    fn rate_limit_range_is_1_to_a_million() {
        assert!(RateLimit::new(0).is_err());
        assert!(RateLimit::new(-5).is_err());
        assert_eq!(RateLimit::new(1_000_000).unwrap().per_hour(), 1_000_000);
        assert_eq!(RateLimit::new(1_000_001), Err(InvalidValue::RateLimit(1_000_001)));
        assert_eq!(RateLimit::new(i64::MAX), Err(InvalidValue::RateLimit(i64::MAX)));
    }

    #[test]
    fn grace_is_0_to_a_day() {
        assert_eq!(Grace::from_secs(0).unwrap().secs(), 0);
        assert!(Grace::from_secs(86_400).is_ok());
        assert_eq!(Grace::from_secs(86_401), Err(InvalidValue::Grace(86_401)));
        assert!(Grace::from_secs(-1).is_err());
    }

    #[test]
    fn lifetime_is_1_to_365_days() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(Lifetime::from_days(1).unwrap().expires_at(now), Some(now + Duration::days(1)));
        assert!(Lifetime::from_days(365).is_ok());
        assert_eq!(Lifetime::from_days(0), Err(InvalidValue::Lifetime(0)));
        assert!(Lifetime::from_days(366).unwrap_err().to_string().contains("between 1 and 365"));
    }
}
