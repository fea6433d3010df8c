//! How a counted request ended: one vocabulary for the faces that count (MCP, API), the
//! usage recorder and the `usage_hourly.outcome` column.

/// How a counted request ended (the `usage_hourly.outcome` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered successfully.
    Ok,
    /// Answered with an error (tool error, JSON-RPC error, bad request).
    Error,
    /// Refused: bad token.
    Unauthorized,
    /// Refused: missing scope or origin.
    Forbidden,
    /// Refused: rate limited.
    RateLimited,
}

impl Outcome {
    /// The outcome an HTTP answer's status stands for (REST calls: a 404 or 409 is an error).
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=399 => Self::Ok,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            429 => Self::RateLimited,
            _ => Self::Error,
        }
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Unauthorized => "401",
            Self::Forbidden => "403",
            Self::RateLimited => "429",
        }
    }

    /// The outcome stored as `s` (the column's `CHECK` admits only the five texts above).
    pub fn from_stored(s: &str) -> Self {
        match s {
            "ok" => Self::Ok,
            "401" => Self::Unauthorized,
            "403" => Self::Forbidden,
            "429" => Self::RateLimited,
            _ => Self::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips() {
        for o in [Outcome::Ok, Outcome::Error, Outcome::Unauthorized, Outcome::Forbidden, Outcome::RateLimited] {
            assert_eq!(Outcome::from_stored(o.as_str()), o);
        }
    }

    #[test]
    fn http_statuses_map_to_their_outcome() {
        assert_eq!(Outcome::from_status(201), Outcome::Ok);
        assert_eq!(Outcome::from_status(404), Outcome::Error);
        assert_eq!(Outcome::from_status(409), Outcome::Error);
        assert_eq!(Outcome::from_status(403), Outcome::Forbidden);
        assert_eq!(Outcome::from_status(429), Outcome::RateLimited);
    }
}
