//! `tessera serve`.

use std::net::TcpListener;

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;
use crate::server::{AppState, Application};

/// Starts the database (if managed), the HTTP server, and shuts both down on a signal.
pub async fn serve(settings: &Settings) -> Result<(), CliError> {
    let db = Database::open(settings).await?;
    let result = run_server(settings, &db).await;
    db.close().await;
    tracing::info!("stopped");
    result
}

async fn run_server(settings: &Settings, db: &Database) -> Result<(), CliError> {
    // Keys are created (and persisted) at start so the first request never races to make one.
    let state = AppState::start(db, settings.clone()).await?;
    let ring = state.validator.key_ring();
    if let Err(e) = db.record_public_url(settings).await {
        // Serving works without it; only the CLI's default issuer is affected.
        tracing::warn!(error = %e, "could not record the public URL for the CLI");
    }
    let listener = TcpListener::bind(settings.bind)
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", settings.bind)))?;
    let app = Application::build(state, listener)?;
    tracing::info!(
        bind = %settings.bind,
        port = app.port(),
        public_url = %settings.public_url(),
        alg = ring.algorithm().as_str(),
        kid = ring.signing_kid(),
        "tessera listening"
    );
    app.run().await?;
    Ok(())
}
