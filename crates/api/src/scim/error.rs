//! SCIM's one error type and its one mapping to HTTP: RFC 7644 §3.12's body
//! (`urn:ietf:params:scim:api:messages:2.0:Error`, `status` as a string, `scimType`).

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use tessera_store::StoreError;
use tessera_tokens::{TeamError, TokenError};

use super::SCIM_MEDIA_TYPE;
use crate::error::ApiError;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM request that failed.
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
    /// Headers the failure carries (`WWW-Authenticate`, `Retry-After`, rate limits).
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ScimError {
    /// An error with `status`, RFC 7644's `scimType` if one fits, and a sentence.
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into(), headers: Vec::new() }
    }

    /// 400 with `scim_type` (`invalidValue`, `invalidSyntax`, `invalidFilter`, `noTarget`,
    /// `mutability`, `invalidPath`).
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// 409 `uniqueness`.
    pub fn taken(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            res.insert_header((name.clone(), value.clone()));
        }
        let mut body = json!({"schemas": [ERROR_SCHEMA], "status": self.status.as_str(), "detail": self.detail});
        if let Some(kind) = self.scim_type {
            body["scimType"] = json!(kind);
        }
        res.insert_header((header::CONTENT_TYPE, SCIM_MEDIA_TYPE))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body.to_string())
    }
}

/// The API's answer to the same failure (the guard's refusals, a database out of reach),
/// with its status and headers, in SCIM's shape.
impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> Self {
        let res = e.error_response();
        let headers = res
            .headers()
            .iter()
            .filter(|(name, _)| **name != header::CONTENT_TYPE && **name != header::CONTENT_LENGTH)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let scim_type = (res.status() == StatusCode::BAD_REQUEST).then_some("invalidValue");
        Self { status: res.status(), scim_type, detail: e.to_string(), headers }
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::taken(format!("{what} already exists")),
            StoreError::NotFound(what) => Self::not_found(format!("no such {what}")),
            other => ApiError::from(other).into(),
        }
    }
}

impl From<TokenError> for ScimError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(store) => store.into(),
            other => ApiError::from(other).into(),
        }
    }
}

impl From<TeamError> for ScimError {
    fn from(e: TeamError) -> Self {
        match e {
            TeamError::Conflict(_) => Self::taken(e.to_string()),
            TeamError::BadName => Self::bad("invalidValue", e.to_string()),
            TeamError::NotFound(_) => Self::not_found(e.to_string()),
            TeamError::NoUser(_) => Self::bad("invalidValue", e.to_string()),
            TeamError::BuiltIn => Self::bad("mutability", e.to_string()),
            TeamError::Store(store) => store.into(),
            TeamError::Token(token) => token.into(),
            other => ApiError::from(other).into(),
        }
    }
}
