//! Settings shared by every command, read from flags or the environment (and `.env`).

use std::fmt;
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
///
/// Its `Debug` is written by hand: it hides `jwt_secret` and the database password.
#[derive(Clone, Args)]
pub struct Settings {
    /// PostgreSQL URL. When unset, Tessera runs its own local PostgreSQL under TESSERA_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// A direct PostgreSQL URL for LISTEN and migrations, when DATABASE_URL goes through a
    /// transaction-mode pooler such as PgBouncer (setting it makes every pooled statement run
    /// in its own transaction). Defaults to DATABASE_URL.
    #[arg(long, env = "TESSERA_LISTEN_DATABASE_URL", global = true, hide_env_values = true)]
    pub listen_database_url: Option<String>,

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

    /// Key that encrypts upstream servers' credential headers at rest: 32 bytes as base64 or
    /// 64 hex digits. Unset: `secret.key` in TESSERA_DATA_DIR, created on first use (give every
    /// replica the same key).
    #[arg(long, env = "TESSERA_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Seconds a gateway upstream may take to answer a request (the answer's start; streams
    /// then run as long as they run).
    #[arg(long, env = "TESSERA_UPSTREAM_TIMEOUT", default_value_t = 60, global = true)]
    pub upstream_timeout: u64,

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

    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` header names the client, for
    /// the login throttle, usage and the audit log. Default: none, the socket peer is the client.
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<tessera_auth::Cidr>,

    /// Write one INFO line per HTTP request (method, path, status, latency; never the query).
    /// Off: those lines are at DEBUG.
    #[arg(long, env = "TESSERA_ACCESS_LOG", global = true, action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: bool,

    /// Let webhooks target loopback, private and link-local addresses (off: such targets are
    /// refused, against SSRF; tests and single-host setups turn it on).
    #[arg(long, env = "TESSERA_WEBHOOKS_ALLOW_LOCAL", global = true, action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub webhooks_allow_local: bool,

    /// How often the webhook dispatcher looks for due deliveries, in milliseconds.
    #[arg(long, env = "TESSERA_ALERT_DISPATCH_INTERVAL_MS", default_value_t = 2_000, global = true)]
    pub alert_dispatch_interval_ms: u64,

    /// How often the alert scanner looks for expiring tokens and ending grace periods, in
    /// milliseconds.
    #[arg(long, env = "TESSERA_ALERT_SCAN_INTERVAL_MS", default_value_t = 60_000, global = true)]
    pub alert_scan_interval_ms: u64,

    /// Wait after a webhook's first failed attempt, in milliseconds; each further failure
    /// waits 4 times longer (capped at 6 h), up to 8 attempts.
    #[arg(long, env = "TESSERA_WEBHOOK_RETRY_BASE_MS", default_value_t = 30_000, global = true)]
    pub webhook_retry_base_ms: u64,

    /// 401s for one token id within 5 minutes that raise `token.auth_failures`.
    #[arg(long, env = "TESSERA_ALERT_AUTH_FAILURES", default_value_t = 10, global = true)]
    pub alert_auth_failures: u32,
    /// The built-in OAuth 2.1 authorization server for MCP clients: `on` (default) or `off`
    /// (header-only deployments: no /oauth/*, and the resource metadata names no server).
    #[arg(long, env = "TESSERA_OAUTH", value_enum, default_value = "on", global = true)]
    pub oauth: Switch,

    /// Lifetime of OAuth access tokens, in seconds (the grant itself lives as long as the
    /// user chose on the consent page; clients refresh).
    #[arg(long, env = "TESSERA_OAUTH_ACCESS_TTL", default_value_t = 3600,
          value_parser = clap::value_parser!(u32).range(60..=86_400), global = true)]
    pub oauth_access_ttl: u32,

    /// Let OAuth client metadata documents be fetched from loopback and private addresses
    /// (development and tests; never on a server reachable from elsewhere).
    #[arg(long, env = "TESSERA_OAUTH_ALLOW_LOCAL_CLIENTS", global = true, action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub oauth_allow_local_clients: bool,

    /// A PEM file of extra CA certificates trusted when fetching OAuth client metadata
    /// documents, besides the system's roots.
    #[arg(long, env = "TESSERA_OAUTH_EXTRA_CA_FILE", global = true)]
    pub oauth_extra_ca_file: Option<std::path::PathBuf>,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &self.database_url.as_deref().map(redact_database_url))
            .field("listen_database_url", &self.listen_database_url.as_deref().map(redact_database_url))
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "[redacted]"))
            .field("secret_key", &self.secret_key.as_ref().map(|_| "[redacted]"))
            .field("upstream_timeout", &self.upstream_timeout)
            .field("bind", &self.bind)
            .field("workers", &self.workers)
            .field("db_max_connections", &self.db_max_connections)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("log_format", &self.log_format)
            .field("allowed_origins", &self.allowed_origins)
            .field("mcp_required_scopes", &self.mcp_required_scopes)
            .field("roles", &self.roles)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("access_log", &self.access_log)
            .field("webhooks_allow_local", &self.webhooks_allow_local)
            .field("alert_dispatch_interval_ms", &self.alert_dispatch_interval_ms)
            .field("alert_scan_interval_ms", &self.alert_scan_interval_ms)
            .field("webhook_retry_base_ms", &self.webhook_retry_base_ms)
            .field("alert_auth_failures", &self.alert_auth_failures)
            .field("oauth", &self.oauth)
            .field("oauth_access_ttl", &self.oauth_access_ttl)
            .field("oauth_allow_local_clients", &self.oauth_allow_local_clients)
            .field("oauth_extra_ca_file", &self.oauth_extra_ca_file)
            .finish()
    }
}

/// A PostgreSQL URL fit for logs: the password in the user-info part and any `password=`
/// query parameter are replaced by `[redacted]`.
pub fn redact_database_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            // The last `@` ends the user-info: an unescaped `@` or `/` in a password must
            // not leave part of it outside the redaction.
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:{REDACTED}@{host}"),
                None => format!("{scheme}://{userinfo}@{host}"),
            },
            None => format!("{scheme}://{rest}"),
        },
        // Not a URL (a libpq key=value string?): nothing here is safe to show.
        None if head.contains('=') => return REDACTED.to_owned(),
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
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
    /// The alert dispatcher's and scanner's settings.
    pub fn alert_config(&self) -> crate::alerts::AlertConfig {
        use std::time::Duration;
        crate::alerts::AlertConfig {
            dispatch_interval: Duration::from_millis(self.alert_dispatch_interval_ms.max(10)),
            scan_interval: Duration::from_millis(self.alert_scan_interval_ms.max(10)),
            retry_base: Duration::from_millis(self.webhook_retry_base_ms.max(1)),
            allow_local: self.webhooks_allow_local,
            auth_failure_threshold: self.alert_auth_failures.max(1),
        }
    }

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
        config.trusted_proxies = self.trusted_proxies();
        config.authorization_server = self.oauth == Switch::On;
        config
    }

    /// The OAuth authorization server's settings, `None` when it is off; the extra CA file
    /// is read and checked here, so a bad one stops the start.
    pub fn oauth_config(&self) -> Result<Option<tessera_oauth::OAuthConfig>, String> {
        if self.oauth == Switch::Off {
            return Ok(None);
        }
        let extra_ca_pem = match &self.oauth_extra_ca_file {
            Some(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("TESSERA_OAUTH_EXTRA_CA_FILE {}: {e}", path.display()))?;
                tessera_oauth::cimd::CimdFetcher::new(false, Some(&pem))?;
                Some(pem)
            }
            None => None,
        };
        Ok(Some(tessera_oauth::OAuthConfig {
            issuer: self.issuer(),
            resources: vec![self.mcp_resource()],
            access_ttl: chrono::Duration::seconds(i64::from(self.oauth_access_ttl)),
            allow_local_clients: self.oauth_allow_local_clients,
            extra_ca_pem,
        }))
    }

    /// The gateway's settings derived from these.
    pub fn gateway_config(&self) -> tessera_gateway::GatewayConfig {
        let mut config = tessera_gateway::GatewayConfig::new(&self.public_url());
        config.allowed_origins = self.mcp_config().allowed_origins;
        config.upstream_timeout = std::time::Duration::from_secs(self.upstream_timeout.max(1));
        config.trusted_proxies = self.trusted_proxies();
        config
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> tessera_auth::TrustedProxies {
        tessera_auth::TrustedProxies::new(self.trusted_proxies.clone())
    }

    /// The MCP resource tokens are bound to (RFC 8707).
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.public_url())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn settings_debug_hides_the_jwt_secret_and_the_database_password() {
        let probe = Probe::parse_from([
            "tessera",
            "--database-url",
            "postgres://tessera:s3cr3t-pw@db.internal:5432/tessera?sslmode=require&password=other-pw",
            "--jwt-secret",
            "0123456789abcdef0123456789abcdef-very-secret",
        ]);
        let debug = format!("{:?}", probe.settings);
        assert!(!debug.contains("s3cr3t-pw"), "{debug}");
        assert!(!debug.contains("other-pw"), "{debug}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("postgres://tessera:[redacted]@db.internal:5432/tessera?sslmode=require"), "{debug}");
        assert!(debug.contains("jwt_secret: Some(\"[redacted]\")"), "{debug}");
    }

    #[test]
    fn access_log_is_off_unless_asked_for() {
        assert!(!Probe::parse_from(["tessera"]).settings.access_log);
        assert!(Probe::parse_from(["tessera", "--access-log"]).settings.access_log);
    }

    #[test]
    fn database_urls_without_a_password_are_shown_as_they_are() {
        assert_eq!(redact_database_url("postgres://app@localhost/db"), "postgres://app@localhost/db");
        assert_eq!(redact_database_url("postgres:///db?host=/run/pg"), "postgres:///db?host=/run/pg");
        assert_eq!(redact_database_url("postgres://u:p@ss@h/db"), "postgres://u:[redacted]@h/db");
        assert_eq!(redact_database_url("postgres://u:p/w@h/db"), "postgres://u:[redacted]@h/db");
        assert_eq!(redact_database_url("host=db password=x"), "[redacted]");
    }
}
