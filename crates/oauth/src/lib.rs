//! Tessera's OAuth 2.1 authorization server for MCP clients (issue #13).
//!
//! [`rules`] holds the pure rules (PKCE S256, redirect URIs with RFC 8252 loopback ports,
//! RFC 8707 resources, code expiry, client metadata) with `now` passed in, failing with one
//! typed [`OAuthError`] whose RFC 6749 §5.2 code is chosen in one place. [`OAuthService`]
//! sequences them with the store and the token lifecycle: a grant is a token row issued by
//! `tessera_tokens::TokenService`, so it is listed, metered, narrowed and revoked like any other.

#![warn(missing_docs)]

pub mod cimd;
pub mod rules;
mod service;

pub use rules::OAuthError;
pub use service::{
    AuthorizeParams, AuthorizeRequest, Consent, OAuthConfig, OAuthService, ServerInfo, TokenForm, TokenResponse,
    ToolInfo,
};
