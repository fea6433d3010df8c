//! The store against a real PostgreSQL, one integration-test binary: each test owns a fresh
//! database (nextest runs each in its own process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sessions;
mod shared_state;
mod sso;
mod tokens;
