//! Settings shared by every command, read from flags or the environment (and `.env`), and
//! parsed once: the public URL is a [`Url`], secrets are [`Secret`]s whose `Debug` shows
//! nothing, and a bad value stops the start with a message naming the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use url::Url;

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A secret setting (a signing secret, a key): `Debug` prints `[redacted]`, so no log line
/// or error that formats the settings can carry it; [`Secret::expose`] is the one way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt("[redacted]", f)
    }
}

/// `DATABASE_URL`: its `Debug` shows the URL with its password (in the user-info or a
/// `password=` parameter) replaced by `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    /// The URL, password included, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(Secret(s.to_owned())))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_database_url(self.expose()), f)
    }
}

/// Settings every command needs: where the database is and how tokens are signed.
///
/// `Debug` is safe to log: secrets and the database password print as `[redacted]`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL URL. When unset, Tessera runs its own local PostgreSQL under TESSERA_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// A direct PostgreSQL URL for LISTEN and migrations, when DATABASE_URL goes through a
    /// transaction-mode pooler such as PgBouncer (setting it makes every pooled statement run
    /// in its own transaction). Defaults to DATABASE_URL.
    #[arg(long, env = "TESSERA_LISTEN_DATABASE_URL", global = true, hide_env_values = true)]
    pub listen_database_url: Option<DatabaseUrl>,

    /// Directory for the managed local PostgreSQL (used only without DATABASE_URL).
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./.tessera", global = true)]
    pub data_dir: PathBuf,

    /// The URL clients use to reach this server; it is the tokens' issuer and the base of
    /// their audience (`<url>/mcp`). Defaults to http://<TESSERA_BIND>.
    #[arg(long, env = "TESSERA_PUBLIC_URL", global = true, value_parser = parse_public_url)]
    pub public_url: Option<Url>,

    /// Shared secret (at least 32 bytes) that switches signing from Ed25519 to HS256.
    #[arg(long, env = "TESSERA_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Key that encrypts upstream servers' credential headers at rest: 32 bytes as base64 or
    /// 64 hex digits. Unset: `secret.key` in TESSERA_DATA_DIR, created on first use (give every
    /// replica the same key).
    #[arg(long, env = "TESSERA_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Seconds a gateway upstream may take to answer a request (the answer's start; streams
    /// then run as long as they run).
    #[arg(long, env = "TESSERA_UPSTREAM_TIMEOUT", default_value_t = 60, global = true)]
    pub upstream_timeout: u64,

    /// Most stdio server processes this instance runs at once (a request beyond it is 503).
    #[arg(long, env = "TESSERA_STDIO_MAX_PROCESSES", default_value_t = 64, global = true)]
    pub stdio_max_processes: usize,

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

    /// How often counted usage is written to the database, in milliseconds (and once more at
    /// shutdown).
    #[arg(long, env = "TESSERA_USAGE_FLUSH_INTERVAL_MS", default_value_t = 1_000, global = true)]
    pub usage_flush_interval_ms: u64,

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

    /// Single sign-on: the OpenID provider's issuer URL (discovery at
    /// `/.well-known/openid-configuration`; https, or http on a loopback host). Unset: no SSO.
    #[arg(long, env = "TESSERA_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<Url>,

    /// Tessera's client id at the OpenID provider (its redirect URI is
    /// `{TESSERA_PUBLIC_URL}/api/v2/auth/oidc/callback`).
    #[arg(long, env = "TESSERA_OIDC_CLIENT_ID", global = true)]
    pub oidc_client_id: Option<String>,

    /// Tessera's client secret at the OpenID provider.
    #[arg(long, env = "TESSERA_OIDC_CLIENT_SECRET", global = true, hide_env_values = true)]
    pub oidc_client_secret: Option<Secret>,

    /// Scopes asked of the OpenID provider (space-separated).
    #[arg(long, env = "TESSERA_OIDC_SCOPES", default_value = "openid email profile", global = true)]
    pub oidc_scopes: String,

    /// The ID-token claim holding the person's groups; a dotted path reads nested claims
    /// (Keycloak's `realm_access.roles`, Clerk's `org_role`).
    #[arg(long, env = "TESSERA_OIDC_GROUPS_CLAIM", default_value = "groups", global = true)]
    pub oidc_groups_claim: String,

    /// Identity-provider groups whose members are Tessera administrators (comma-separated),
    /// refreshed at every sign-in. Unset: administrators are made with `tessera user admin`.
    #[arg(long, env = "TESSERA_OIDC_ADMIN_GROUPS", value_delimiter = ',', global = true)]
    pub oidc_admin_groups: Vec<String>,

    /// Email and password sign-in on the web UI and `POST /api/v2/auth/login`: `on` (default)
    /// or `off` (SSO only; the CLI still works, for break-glass).
    #[arg(long, env = "TESSERA_PASSWORD_LOGIN", value_enum, default_value = "on", global = true)]
    pub password_login: Switch,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// A PostgreSQL URL fit for logs: the password in the user-info part and any `password=`
/// query parameter are replaced by `[redacted]`; a string that is not a URL (a libpq
/// `key=value` list) is shown as `[redacted]` whole.
pub fn redact_database_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let Ok(mut parsed) = Url::parse(url) else {
        return if url.contains('=') || url.contains('@') { REDACTED.to_owned() } else { url.to_owned() };
    };
    if parsed.password().is_some() && parsed.set_password(Some(REDACTED)).is_err() {
        return REDACTED.to_owned();
    }
    if parsed.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") { REDACTED.to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `[` and `]` are percent-encoded in the user-info and query; show the marker as written.
    parsed.as_str().replace("%5Bredacted%5D", REDACTED)
}

/// Reads `TESSERA_PUBLIC_URL`: an absolute `http` or `https` URL with a host and no
/// credentials, query or fragment (it becomes the tokens' issuer and audience).
pub fn parse_public_url(s: &str) -> Result<Url, String> {
    let url =
        Url::parse(s.trim()).map_err(|e| format!("not an absolute URL ({e}), e.g. https://tessera.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme must be http or https, not {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL needs a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry a user name or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".to_owned());
    }
    Ok(url)
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
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
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
        config.usage_flush_interval = std::time::Duration::from_millis(self.usage_flush_interval_ms.max(10));
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

    /// The single sign-on settings, `None` without `TESSERA_OIDC_ISSUER`; an incomplete
    /// configuration stops the start with a message naming what is missing.
    pub fn sso_config(&self) -> Result<Option<tessera_sso::SsoConfig>, String> {
        let Some(issuer) = &self.oidc_issuer else {
            if self.oidc_client_id.is_some() || self.oidc_client_secret.is_some() {
                return Err("TESSERA_OIDC_CLIENT_ID/SECRET are set but TESSERA_OIDC_ISSUER is not".to_owned());
            }
            if self.password_login == Switch::Off {
                return Err(
                    "TESSERA_PASSWORD_LOGIN=off needs single sign-on (TESSERA_OIDC_ISSUER): nobody could sign in"
                        .to_owned(),
                );
            }
            return Ok(None);
        };
        let client_id =
            self.oidc_client_id.clone().ok_or("TESSERA_OIDC_ISSUER is set: set TESSERA_OIDC_CLIENT_ID too")?;
        let client_secret =
            self.oidc_client_secret.clone().ok_or("TESSERA_OIDC_ISSUER is set: set TESSERA_OIDC_CLIENT_SECRET too")?;
        let groups_claim: Vec<String> = self.oidc_groups_claim.split('.').map(|p| p.trim().to_owned()).collect();
        if groups_claim.iter().any(String::is_empty) {
            return Err(format!(
                "TESSERA_OIDC_GROUPS_CLAIM is not a claim name or dotted path: {:?}",
                self.oidc_groups_claim
            ));
        }
        if !self.oidc_scopes.split_whitespace().any(|s| s == "openid") {
            return Err("TESSERA_OIDC_SCOPES must include `openid`".to_owned());
        }
        Ok(Some(tessera_sso::SsoConfig {
            issuer: issuer.clone(),
            client_id,
            client_secret: client_secret.expose().to_owned(),
            scopes: self.oidc_scopes.split_whitespace().collect::<Vec<_>>().join(" "),
            groups_claim,
            admin_groups: self
                .oidc_admin_groups
                .iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect(),
            redirect_uri: format!("{}/api/v2/auth/oidc/callback", self.public_url()),
        }))
    }

    /// The gateway's settings derived from these.
    pub fn gateway_config(&self) -> tessera_gateway::GatewayConfig {
        let mut config = tessera_gateway::GatewayConfig::new(&self.public_url());
        config.allowed_origins = self.mcp_config().allowed_origins;
        config.upstream_timeout = std::time::Duration::from_secs(self.upstream_timeout.max(1));
        config.trusted_proxies = self.trusted_proxies();
        config.authorization_server = self.oauth == Switch::On;
        config
    }

    /// The stdio servers' settings: homes under the data directory, the process bound, and
    /// the upstream timeout as their handshake and per-request limit.
    pub fn stdio_config(&self) -> tessera_gateway::StdioConfig {
        let mut config = tessera_gateway::StdioConfig::new(
            self.data_dir.clone(),
            std::time::Duration::from_secs(self.upstream_timeout.max(1)),
        );
        config.max_processes = self.stdio_max_processes;
        config
    }

    /// How long registering a server waits for its tool list: the upstream timeout, but at
    /// most 15 s, since someone is waiting for `server add` (an upstream that takes longer is
    /// still registered; its tools are learnt on first use).
    pub fn discovery_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.upstream_timeout.clamp(1, 15))
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
    fn settings_debug_hides_the_secret_key() {
        let probe = Probe::parse_from(["tessera", "--secret-key", "c2VhbGluZy1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"]);
        let debug = format!("{:?}", probe.settings);
        assert!(!debug.contains("c2VhbGluZy1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"), "{debug}");
        assert!(debug.contains("secret_key: Some(\"[redacted]\")"), "{debug}");
    }

    #[test]
    fn a_bad_public_url_is_a_clear_start_up_error() {
        for bad in
            ["tessera.example.com", "ftp://tessera.example.com", "https://u:p@tessera.example.com", "https://x/?a=1"]
        {
            let err = Probe::try_parse_from(["tessera", "--public-url", bad]).unwrap_err().to_string();
            assert!(err.contains("--public-url"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_public_url_and_what_derives_from_it_have_no_trailing_slash() {
        let s = Probe::parse_from(["tessera", "--public-url", "https://tessera.example.com/base/"]).settings;
        assert_eq!(s.public_url(), "https://tessera.example.com/base");
        assert_eq!(s.issuer(), "https://tessera.example.com/base");
        assert_eq!(s.mcp_resource(), "https://tessera.example.com/base/mcp");
        let s = Probe::parse_from(["tessera", "--bind", "127.0.0.1:9000"]).settings;
        assert_eq!(s.public_url(), "http://127.0.0.1:9000");
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
        // Not a URL the parser accepts (the authority ends at the first `/`): all of it hidden.
        assert_eq!(redact_database_url("postgres://u:p/w@h/db"), "[redacted]");
        assert_eq!(redact_database_url("host=db password=x"), "[redacted]");
    }
}
