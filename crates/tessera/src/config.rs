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

    /// HTTP worker threads (0: one per CPU core).
    #[arg(long, env = "TESSERA_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,

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

    /// Browser origins allowed to call /mcp besides the public URL's own (comma-separated;
    /// a request with any other `Origin` gets 403).
    #[arg(long, env = "TESSERA_ALLOWED_ORIGINS", value_delimiter = ',', global = true)]
    pub allowed_origins: Vec<String>,

    /// Scopes every request to /mcp needs (space-separated; inheritance applies).
    #[arg(long, env = "TESSERA_MCP_REQUIRED_SCOPES", default_value = "mcp:access", value_parser = parse_scopes, global = true)]
    pub mcp_required_scopes: tessera_core::ScopeSet,

    /// Which faces this process serves (comma-separated): `api`, `mcp`, or both, so MCP
    /// replicas can scale without the API.
    #[arg(long, env = "TESSERA_ROLES", value_enum, value_delimiter = ',', default_value = "api,mcp", global = true)]
    pub roles: Vec<Role>,
}

/// A face of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The REST API (and the web UI).
    Api,
    /// The MCP endpoint, its metadata and metrics.
    Mcp,
}

fn parse_scopes(s: &str) -> Result<tessera_core::ScopeSet, String> {
    tessera_core::ScopeSet::parse_any(s).map_err(|e| e.to_string())
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

    /// Whether this process serves `role`.
    pub fn serves(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The MCP face's settings derived from these.
    pub fn mcp_config(&self) -> tessera_mcp::McpConfig {
        let mut config = tessera_mcp::McpConfig::new(&self.public_url());
        config.allowed_origins =
            self.allowed_origins.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        config.required_scopes = self.mcp_required_scopes.clone();
        config
    }

    /// The MCP resource tokens are bound to (RFC 8707).
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.public_url())
    }
}
