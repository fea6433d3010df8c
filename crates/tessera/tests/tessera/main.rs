//! The `tessera` binary and its composition root over real HTTP and a real PostgreSQL, one
//! integration-test binary (nextest runs each test in its own process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alerts;
mod api_mount;
mod cli;
mod connections;
mod gateway;
mod gateway_holes;
mod guard;
mod http;
mod managed;
mod metering;
mod oauth_connections;
mod oauth_servers;
mod pgbouncer;
mod pins;
mod roles;
mod scale;
mod scale_gateway;
mod scim;
mod scim_compliance;
mod serve;
mod stdio;
mod support;
