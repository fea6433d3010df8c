//! `tessera`: scoped, revocable tokens for MCP servers.

use std::process::ExitCode;

use tessera::cli::{self, Cli};

/// mimalloc instead of glibc's malloc: the MCP path allocates and frees many small objects
/// per request (JSON, rmcp's per-request service and tasks) across worker threads; see the
/// README's Performance section for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    // A missing .env is normal; real environment variables win over it.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse_args();
    tessera::telemetry::init(cli.settings.log_format, cli.default_log_filter());
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
