//! The command line: `tessera serve | migrate | user | token | server | keys | openapi`.

mod keys;
mod openapi;
mod serve;
mod server;
mod token;
mod user;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Tessera: scoped, revocable tokens for MCP servers.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// Log progress at INFO (cluster start-up, migrations); without it commands other than
    /// `serve` log only warnings and errors (`RUST_LOG` overrides both).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server: web UI, REST API, MCP endpoint, health and readiness.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Issue, list, revoke and rotate tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Register upstream MCP servers served at /mcp/NAME, and classify their tools.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// List and rotate signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print the REST API's OpenAPI document (`tessera openapi > openapi.json`).
    Openapi,
}

impl Cli {
    /// The log filter when `RUST_LOG` is unset: `serve` and `-v` log at INFO, other commands
    /// only warnings, so their stdout/stderr is the answer and nothing else.
    pub fn default_log_filter(&self) -> &'static str {
        if self.verbose || matches!(self.command, Command::Serve) {
            crate::telemetry::DEFAULT_FILTER
        } else {
            crate::telemetry::QUIET_FILTER
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = cli.settings;
    if let Command::Serve = cli.command {
        return serve::serve(&settings).await;
    }
    // Generated from the code: no database needed.
    if let Command::Openapi = cli.command {
        return openapi::run();
    }
    let db = Database::open(&settings).await?;
    let result = match cli.command {
        Command::Serve | Command::Openapi => Ok(()),
        Command::Migrate => {
            println!("migrations applied; schema is current");
            Ok(())
        }
        Command::User(cmd) => user::run(cmd, &db).await,
        Command::Token(cmd) => token::run(cmd, &db, &settings).await,
        Command::Server(cmd) => server::run(cmd, &db, &settings).await,
        Command::Keys(cmd) => keys::run(cmd, &db, &settings).await,
    };
    db.close().await;
    result
}
