//! Integration tests of `/api/v2` over real HTTP, each against a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod auth;
mod cimd;
mod contract;
mod deactivation;
mod errors;
mod helpers;
mod introspect;
mod lifecycle;
mod limits;
mod logs;
mod oauth;
mod openapi;
mod paths;
mod servers;
mod sso;
mod teams;
mod tokens;
mod usage;
mod user_limits;
