//! Tessera as an OAuth client of the upstream MCP servers people connect their own accounts
//! to (issue #25, `--user-auth oauth`). [`rules`] holds the pure decisions (where metadata
//! lives, which client identity to use, when a token is due for refresh, who the upstream
//! says the person is); [`client::Upstream`] does the bounded, address-guarded HTTP.

#![warn(missing_docs)]

pub mod client;
pub mod rules;

pub use client::{
    AuthServer, ClientCredentials, CodeExchange, ConnectError, FETCH_TIMEOUT, Flow, MAX_DOCUMENT_BYTES, Tokens,
    Upstream, client_metadata,
};
pub use rules::ClientChoice;
