//! Settings shared by every command, read from flags or the environment (and `.env`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Settings every command needs: where the database is and how tokens are signed.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL URL. When unset, Tessera runs its own local PostgreSQL under TESSERA_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the managed local PostgreSQL (used only without DATABASE_URL).
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./.tessera", global = true)]
    pub data_dir: PathBuf,

    /// The URL clients use to reach this server; it is the tokens' issuer and the base of
    /// their audience (`<url>/mcp`). Defaults to http://<TESSERA_BIND>.
    #[arg(long, env = "TESSERA_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Shared secret (at least 32 bytes) that switches signing from Ed25519 to HS256.
    #[arg(long, env = "TESSERA_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Address the HTTP server listens on.
    #[arg(long, env = "TESSERA_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// Maximum pooled database connections.
    #[arg(long, env = "TESSERA_DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// How long a token's database row may be served from cache, in milliseconds (capped at
    /// 60000; revocations evict at once through LISTEN/NOTIFY regardless).
    #[arg(long, env = "TESSERA_CACHE_TTL_MS", default_value_t = 30_000, global = true)]
    pub cache_ttl_ms: u64,

    /// Log format on stderr.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
}

impl Settings {
    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> String {
        self.public_url()
    }

    /// The validator's settings derived from these.
    pub fn validator_config(&self) -> tessera_auth::ValidatorConfig {
        tessera_auth::ValidatorConfig {
            issuer: self.issuer(),
            resource: self.mcp_resource(),
            cache_ttl: std::time::Duration::from_millis(self.cache_ttl_ms),
            reload_keys: self.jwt_secret.is_none(),
        }
    }

    /// The MCP resource tokens are bound to (RFC 8707).
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.public_url())
    }
}
