//! Opaque pagination cursors: base64url of a versioned position, so the format can change
//! without clients noticing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::ErrorCode;
use uuid::Uuid;

use crate::error::ApiError;

const PREFIX: &str = "t1:";

/// The cursor that continues after token `after`.
pub fn encode(after: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{after}"))
}

/// The position a cursor names; anything else is a 400.
pub fn decode(cursor: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(PREFIX).and_then(|id| id.parse().ok()))
        .ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidCursor, "the cursor is not one this server returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let id = Uuid::now_v7();
        assert_eq!(decode(&encode(id)).unwrap(), id);
    }

    #[test]
    fn foreign_cursor_is_refused() {
        assert!(decode("not a cursor").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("x1:abc")).is_err());
    }
}
