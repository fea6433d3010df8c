//! The MCP server over real HTTP against a real database: one binary, one fresh database
//! and one running server per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod guide;
mod helpers;
mod limits;
mod metadata;
mod revocation;
mod stateless;
mod tools;
mod usage;
