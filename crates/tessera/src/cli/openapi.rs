//! `tessera openapi`: print the REST API's OpenAPI document, generated from the code.

use std::io::Write;

use crate::error::CliError;

/// Writes the document to stdout (the committed `openapi.json` is exactly this output).
pub fn run() -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", tessera_api::openapi_json())?;
    Ok(())
}
