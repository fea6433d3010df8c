//! Tessera's token lifecycle service: the one caller of the lifecycle rules
//! (`tessera_core::lifecycle`), used by the REST API, the CLI and (later) the OAuth token
//! endpoint alike; and the registry of upstream servers whose scopes join the catalog.
//!
//! Each change runs in one transaction: lock the row, check who may see it and the rules,
//! mint (here, never in the store), persist, audit, NOTIFY, commit; then the local cache is
//! evicted. So a rule lives in `tessera-core`, its sequencing here, and its persistence in
//! `tessera-store`.

#![warn(missing_docs)]

mod connections;
mod minter;
mod oauth_connections;
mod server_cache;
mod servers;
mod service;
mod stdio;
mod teams;

pub use connections::{PersonalCredentials, PersonalHeader};
pub use minter::{KeySource, Minter};
pub use oauth_connections::{Callback, ConnectUrls, PersonalOAuth, Refreshed};
pub use server_cache::{FALLBACK_TTL, GatewayServer, LIVE_TTL, ToolPins};
pub use servers::{
    Discovery, KeyLoader, PatchedServer, ServerError, ServerInput, ServerPatch, ServerService, ToolListing, ToolSource,
    ToolView, catalog,
};
pub use service::{
    GrantInput, IssueInput, Issued, IssuedAccess, PatchInput, RevokeCause, Revoked, TokenError, TokenService,
};
pub use stdio::{STDIO_SCHEME, StdioCommand, StdioServerInput, StdioSummary, is_stdio};
pub use teams::{TeamError, TeamService};
