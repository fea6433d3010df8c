//! Reading the bearer token from `Authorization` headers (RFC 6750 §2.1 only).

use tessera_core::ErrorCode;
use tessera_core::codec::MAX_TOKEN_BYTES;

/// Why no usable bearer token was found in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization` header: the client sent no credentials at all.
    #[error("no bearer token was sent")]
    Missing,
    /// More than one `Authorization` header.
    #[error("more than one Authorization header was sent")]
    Multiple,
    /// A scheme other than `Bearer` (e.g. `Basic`): no credentials Tessera understands.
    #[error("the Authorization scheme must be Bearer")]
    WrongScheme,
    /// The token is empty (`Bearer` alone), not ASCII, or contains spaces.
    #[error("the bearer token is malformed")]
    Malformed,
    /// Longer than 4 KiB.
    #[error("the bearer token is longer than 4 KiB")]
    TooLarge,
}

impl BearerError {
    /// Stable reason code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::MissingToken,
            Self::Multiple => ErrorCode::MultipleAuthorizationHeaders,
            Self::WrongScheme => ErrorCode::WrongScheme,
            Self::Malformed => ErrorCode::Malformed,
            Self::TooLarge => ErrorCode::TooLarge,
        }
    }

    /// Whether a bearer token was presented (RFC 6750 §3.1: then the 401 carries `error=`).
    /// Another scheme such as `Basic` carries no bearer credentials, so it is answered like a
    /// request without any: a bare challenge, no error code.
    pub fn token_presented(self) -> bool {
        !matches!(self, Self::Missing | Self::WrongScheme)
    }
}

/// Extracts the token from the values of every `Authorization` header of a request.
pub fn bearer_token<'a, I>(mut values: I) -> Result<&'a str, BearerError>
where
    I: Iterator<Item = &'a [u8]>,
{
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Multiple);
    }
    let value = std::str::from_utf8(value).map_err(|_| BearerError::Malformed)?.trim();
    if value.eq_ignore_ascii_case("bearer") {
        // The right scheme with an empty token: a malformed bearer credential.
        return Err(BearerError::Malformed);
    }
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::WrongScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::WrongScheme);
    }
    let token = token.trim_start();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(BearerError::TooLarge);
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<String, BearerError> {
        bearer_token(values.iter().map(|v| v.as_bytes())).map(str::to_owned)
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(parse(&["bEaReR abc.def.ghi"]).unwrap(), "abc.def.ghi");
    }

    #[test]
    fn no_header_is_missing() {
        assert_eq!(parse(&[]), Err(BearerError::Missing));
    }

    #[test]
    fn two_headers_are_refused() {
        assert_eq!(parse(&["Bearer a", "Bearer b"]), Err(BearerError::Multiple));
    }

    #[test]
    fn basic_scheme_is_refused() {
        assert_eq!(parse(&["Basic dXNlcjpwYXNz"]), Err(BearerError::WrongScheme));
    }

    #[test]
    fn bearer_scheme_without_token_is_a_malformed_token() {
        assert_eq!(parse(&["Bearer"]), Err(BearerError::Malformed));
        assert_eq!(parse(&["Bearer  "]), Err(BearerError::Malformed));
        assert!(BearerError::Malformed.token_presented());
    }

    #[test]
    fn another_scheme_presents_no_bearer_token() {
        assert!(!BearerError::WrongScheme.token_presented());
        assert!(!BearerError::Missing.token_presented());
        assert_eq!(parse(&["Digest username=x"]), Err(BearerError::WrongScheme));
        assert_eq!(parse(&["Basic"]), Err(BearerError::WrongScheme));
    }

    #[test]
    fn token_with_inner_space_is_malformed() {
        assert_eq!(parse(&["Bearer a b"]), Err(BearerError::Malformed));
    }

    #[test]
    fn token_over_4_kib_is_too_large() {
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(parse(&[&long]), Err(BearerError::TooLarge));
    }
}
