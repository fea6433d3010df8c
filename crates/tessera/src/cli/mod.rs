//! The command line: `tessera serve | migrate | user | token | server | team | keys | openapi`.

mod keys;
mod openapi;
mod serve;
mod server;
mod stdio;
mod team;
mod token;
mod user;

use clap::{Arg, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

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
// Parsed once per process: the size of `server add`'s many options costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Teams: which scopes their members may hold.
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// List and rotate signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print the REST API's OpenAPI document (`tessera openapi > openapi.json`).
    Openapi,
}

/// Options every command reads and shows in its help; the rest of [`Settings`] only matters to
/// `serve`, so they are listed under `serve --help` alone (still accepted, and read from the
/// environment, everywhere, so `tessera --bind X serve` keeps working).
const SHOWN_EVERYWHERE: [&str; 3] = ["database_url", "data_dir", "public_url"];

impl Cli {
    /// The command line with `serve`'s options hidden from every other command's help.
    pub fn command_tree() -> clap::Command {
        let settings = Settings::augment_args(clap::Command::new("settings"));
        let serve_only: Vec<Arg> =
            settings.get_arguments().filter(|a| !SHOWN_EVERYWHERE.contains(&a.get_id().as_str())).cloned().collect();
        let hidden = |a: Arg| {
            if serve_only.iter().any(|s| s.get_id() == a.get_id()) { a.hide(true) } else { a }
        };
        // clap copies a global option into a subcommand only when the subcommand has none of
        // that name, so `serve` keeps its own visible copies while the rest inherit hidden ones.
        <Self as CommandFactory>::command()
            .mut_args(hidden)
            .mut_subcommand("serve", |serve| serve.args(serve_only.iter().cloned()))
            .after_help("Options that only `serve` reads: tessera serve --help")
    }

    /// Parses the process arguments (and environment) through [`Cli::command_tree`].
    pub fn parse_args() -> Self {
        let mut matches = Self::command_tree().get_matches();
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
    }

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

/// The lifecycle service of a command. `mints`: the command signs a token, so it needs the
/// issuer the server uses (its recorded public URL unless TESSERA_PUBLIC_URL says otherwise,
/// with a warning when neither is known); commands that only narrow or revoke sign nothing.
pub(crate) async fn lifecycle(
    db: &Database,
    settings: &Settings,
    mints: bool,
) -> Result<tessera_tokens::TokenService, CliError> {
    let ring = db.key_ring(settings).await?;
    let issuer = if mints { db.issuer(settings).await? } else { settings.issuer() };
    let audience = vec![format!("{issuer}/mcp")];
    let minter = tessera_tokens::Minter::new(std::sync::Arc::new(ring), issuer, audience);
    Ok(tessera_tokens::TokenService::new(db.store.clone(), minter))
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
        Command::User(cmd) => user::run(cmd, &db, &settings).await,
        Command::Token(cmd) => token::run(cmd, &db, &settings).await,
        Command::Server(cmd) => server::run(cmd, &db, &settings).await,
        Command::Team(cmd) => team::run(cmd, &db, &settings).await,
        Command::Keys(cmd) => keys::run(cmd, &db, &settings).await,
    };
    db.close().await;
    result
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut matches = Cli::command_tree().try_get_matches_from(args).unwrap();
        Cli::from_arg_matches_mut(&mut matches).unwrap()
    }

    #[test]
    fn serve_options_are_read_before_and_after_serve() {
        let before = parse(&["tessera", "--bind", "127.0.0.1:9001", "serve"]);
        let after = parse(&["tessera", "serve", "--bind", "127.0.0.1:9002"]);
        assert_eq!(before.settings.bind.port(), 9001);
        assert_eq!(after.settings.bind.port(), 9002);
    }

    #[test]
    fn serve_options_still_parse_under_other_commands() {
        let cli = parse(&["tessera", "user", "list", "--upstream-timeout", "7"]);
        assert_eq!(cli.settings.upstream_timeout, 7);
    }
}
