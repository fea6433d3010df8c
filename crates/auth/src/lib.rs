//! The Validator: the one code path that decides whether a bearer token is good, shared by
//! the MCP server and `POST /api/v2/tokens/validate` so they can never disagree.
//!
//! Order (DESIGN.md "Validation"): header → signature (cached by token hash) → the token's
//! row (cached per `jti` for at most the TTL, evicted by `NOTIFY`) → effective scopes.

mod bearer;
mod validator;

pub use bearer::{BearerError, bearer_token};
pub use validator::{AuthError, Validator, ValidatorConfig};
