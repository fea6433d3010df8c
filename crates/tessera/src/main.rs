//! `tessera`: scoped, revocable tokens for MCP servers.

use std::process::ExitCode;

use clap::Parser;
use tessera::cli::{self, Cli};

#[actix_web::main]
async fn main() -> ExitCode {
    // A missing .env is normal; real environment variables win over it.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    tessera::telemetry::init(cli.settings.log_format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
