//! The `tessera` binary's library half: configuration, database start-up, HTTP server and
//! the command line, so integration tests can build the app in-process.

pub mod access_log;
pub mod alerts;
pub mod cli;
pub mod config;
pub mod database;
pub mod error;
pub mod housekeeping;
pub mod secret_key;
pub mod server;
pub mod telemetry;
pub mod ui;
