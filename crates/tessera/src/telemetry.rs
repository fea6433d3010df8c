//! Logging to stderr with `tracing`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset. rmcp logs an INFO line for every MCP request it
/// serves: at `info` a busy server would log per request, which DESIGN.md ("Operations")
/// rules out. Per-request lines are opt-in (`TESSERA_ACCESS_LOG=1`, see
/// [`crate::access_log`]).
/// rmcp's client (which lists a new server's tools) logs an ERROR and a WARN when the upstream
/// cannot be reached; the registry reports that itself, once, as a warning.
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,rmcp=warn,rmcp::transport::worker=off,rmcp::transport::common::reqwest=off";

/// The filter of CLI commands other than `serve` without `-v`: their output is the answer on
/// stdout, so start-up chatter (cluster start, migrations) stays out of the way.
pub const QUIET_FILTER: &str = "warn,rmcp::transport::worker=off,rmcp::transport::common::reqwest=off";

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
