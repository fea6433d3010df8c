//! The HTTP side of connecting to an upstream's authorization server. Every fetch has the
//! CIMD fetcher's bounds (5 s, 64 KiB, no redirects, no proxy) and is pinned to an address
//! that passed [`rules::check_fetch`].

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use crate::rules::{self, ClientChoice};

/// Time allowed for any request to an upstream's authorization server.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from it.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest value accepted for a token or a client id.
const MAX_VALUE_CHARS: usize = 8192;

/// Why connecting (or refreshing, or revoking) failed. Each has a short code the
/// Connections page explains.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server could not be reached, timed out, or answered 5xx.
    #[error("the upstream's authorization server is unreachable: {0}")]
    Unreachable(String),
    /// The upstream does not say where its authorization server is.
    #[error("the upstream does not name an OAuth authorization server (RFC 9728): {0}")]
    NotOAuth(String),
    /// An answer is not what the specifications say it must be.
    #[error("the upstream's authorization server answered something invalid: {0}")]
    Invalid(String),
    /// An address Tessera may not fetch.
    #[error("refused to fetch: {0}")]
    Refused(#[from] rules::FetchRefused),
    /// The authorization server refused, with its OAuth error code.
    #[error("the upstream's authorization server refused: {error}")]
    Rejected {
        /// `invalid_grant`, `invalid_client`, ...
        error: String,
    },
    /// Tessera has no way to identify itself there.
    #[error(transparent)]
    NoClient(#[from] rules::NoClientIdentity),
}

impl ConnectError {
    /// The short code shown to the person.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "upstream_unreachable",
            Self::NotOAuth(_) => "not_oauth",
            Self::Invalid(_) => "invalid_response",
            Self::Refused(_) => "address_refused",
            Self::Rejected { .. } => "rejected",
            Self::NoClient(_) => "no_client",
        }
    }

    /// Whether the grant is gone for good (the person must connect again).
    pub fn grant_is_dead(&self) -> bool {
        matches!(self, Self::Rejected { error } if error == "invalid_grant" || error == "unauthorized_client")
    }
}

/// An upstream's authorization server, as discovered (stored with the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServer {
    /// Its issuer identifier.
    pub issuer: String,
    /// Where the browser goes.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// RFC 7009 revocation, when offered.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 7591 registration, when offered.
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// Whether it accepts Client ID Metadata Documents.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// Whether it accepts the client secret in the body (else HTTP Basic).
    #[serde(default)]
    pub secret_in_body: bool,
    /// What the resource asked for (its 401's `scope`, else its `scopes_supported`).
    #[serde(default)]
    pub resource_scope: Option<String>,
}

/// How Tessera identifies itself at one authorization server. `Debug` hides the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret of a confidential client.
    pub client_secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Tokens from the upstream's authorization server. `Debug` hides them.
#[derive(Clone)]
pub struct Tokens {
    /// Sent upstream as `Authorization: Bearer`.
    pub access_token: Zeroizing<String>,
    /// Kept to refresh (and revoke) with.
    pub refresh_token: Option<Zeroizing<String>>,
    /// When the access token ends, if the server said.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who the upstream says the person is (display only).
    pub identity: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("expires_at", &self.expires_at).field("identity", &self.identity).finish()
    }
}

/// One connection attempt's secrets: `state` and the PKCE verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Echoed by the callback.
    pub state: String,
    /// Proves the code exchange comes from who started the flow.
    pub verifier: String,
}

impl Flow {
    /// Fresh random values.
    pub fn generate() -> Self {
        Self { state: random(), verifier: random() }
    }

    /// The S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fetched answer: status, `WWW-Authenticate` and (bounded) body.
#[derive(Debug)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The `WWW-Authenticate` header, if any.
    pub challenge: Option<String>,
    /// At most [`MAX_DOCUMENT_BYTES`].
    pub body: Vec<u8>,
}

/// What exchanging an authorization code sends.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The callback's code.
    pub code: &'a str,
    /// The flow's PKCE verifier.
    pub verifier: &'a str,
    /// The redirect URI the flow used.
    pub redirect_uri: &'a str,
    /// The upstream URL (RFC 8707).
    pub resource: &'a str,
}

/// Talks to the upstream's authorization server for servers registered at one host.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The host of the administrator-registered upstream URL (private addresses allowed there).
    host: String,
}

#[derive(Deserialize)]
struct ResourceMetadata {
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    registration_endpoint: Option<String>,
    #[serde(default)]
    client_id_metadata_document_supported: bool,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

#[derive(Deserialize)]
struct Registered {
    client_id: String,
    client_secret: Option<String>,
}

impl Upstream {
    /// For the server registered at `upstream_url`.
    pub fn for_server(upstream_url: &str) -> Self {
        let host = Url::parse(upstream_url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Self { host }
    }

    /// Sends one request to `url` after the address guard; `build` adds method and body.
    async fn send(
        &self,
        url: &Url,
        build: impl FnOnce(&reqwest::Client, Url) -> reqwest::RequestBuilder,
    ) -> Result<Fetched, ConnectError> {
        let host = url.host_str().ok_or_else(|| ConnectError::Invalid(format!("{url} has no host")))?.to_owned();
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConnectError::Invalid(format!("{url} is not an http(s) URL")));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| ConnectError::Unreachable(format!("{host} did not resolve in time")))?
            .map_err(|_| ConnectError::Unreachable(format!("{host} does not resolve")))?;
        let addrs: Vec<SocketAddr> = lookup.collect();
        rules::check_fetch(url, &self.host, &addrs.iter().map(SocketAddr::ip).collect::<Vec<_>>())?;
        // Pinned to the addresses just checked (all of them: `localhost` may name ::1 first
        // and 127.0.0.1 second); no proxy from the environment (it would connect wherever it
        // likes, past the check).
        let http = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        let mut res = build(&http, url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(format!("{host}: {}", innermost(&e))))?;
        let challenge =
            res.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = res.status().as_u16();
        let mut body = Vec::new();
        loop {
            let chunk = res.chunk().await.map_err(|e| ConnectError::Unreachable(innermost(&e)))?;
            let Some(chunk) = chunk else { break };
            if body.len().saturating_add(chunk.len()) > MAX_DOCUMENT_BYTES {
                return Err(ConnectError::Invalid(format!("an answer from {host} is larger than 64 KiB")));
            }
            body.extend_from_slice(&chunk);
        }
        if status >= 500 {
            return Err(ConnectError::Unreachable(format!("{host} answered {status}")));
        }
        Ok(Fetched { status, challenge, body })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<Option<T>, ConnectError> {
        let got = self.send(url, |http, url| http.get(url)).await?;
        if got.status != 200 {
            return Ok(None);
        }
        serde_json::from_slice(&got.body).map(Some).map_err(|e| ConnectError::Invalid(format!("{url}: {e}")))
    }

    /// Finds the authorization server of the MCP server at `resource`: its 401's
    /// `resource_metadata` (asked with `headers`, the server's shared headers), else the RFC
    /// 9728 well-known URLs; then the server's RFC 8414 or OpenID metadata.
    pub async fn discover(&self, resource: &str, headers: &[(String, String)]) -> Result<AuthServer, ConnectError> {
        let resource_url = Url::parse(resource).map_err(|_| ConnectError::Invalid("the upstream URL".into()))?;
        let probe = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "tessera", "version": env!("CARGO_PKG_VERSION")}},
        });
        let answered = self
            .send(&resource_url, |http, url| {
                let mut req = http.post(url).json(&probe).header("accept", "application/json, text/event-stream");
                for (name, value) in headers {
                    req = req.header(name.as_str(), value.as_str());
                }
                req
            })
            .await?;
        let challenge = answered.challenge.as_deref().map(rules::challenge).unwrap_or_default();
        let mut candidates = Vec::new();
        if let Some(url) = challenge.resource_metadata.as_deref().and_then(|u| Url::parse(u).ok()) {
            candidates.push(url);
        }
        candidates.extend(rules::protected_resource_urls(&resource_url));
        let mut metadata = None;
        for url in &candidates {
            if let Some(found) = self.get_json::<ResourceMetadata>(url).await? {
                metadata = Some(found);
                break;
            }
        }
        let metadata = metadata.ok_or_else(|| {
            ConnectError::NotOAuth(format!("no protected resource metadata at {}", candidates[0].as_str()))
        })?;
        let issuer = metadata
            .authorization_servers
            .first()
            .ok_or_else(|| ConnectError::NotOAuth("its metadata names no authorization server".into()))?;
        let issuer_url = Url::parse(issuer).map_err(|_| ConnectError::Invalid(format!("issuer {issuer}")))?;
        let mut server = None;
        for url in rules::authorization_server_urls(&issuer_url) {
            if let Some(found) = self.get_json::<ServerMetadata>(&url).await? {
                server = Some(found);
                break;
            }
        }
        let server = server.ok_or_else(|| ConnectError::NotOAuth(format!("no metadata for the issuer {issuer}")))?;
        if server.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ConnectError::Invalid(format!("its metadata names issuer {} for {issuer}", server.issuer)));
        }
        if server.code_challenge_methods_supported.as_ref().is_some_and(|m| !m.iter().any(|m| m == "S256")) {
            return Err(ConnectError::Invalid("its authorization server does not support PKCE S256".into()));
        }
        for endpoint in [&server.authorization_endpoint, &server.token_endpoint] {
            Url::parse(endpoint).map_err(|_| ConnectError::Invalid(format!("endpoint {endpoint}")))?;
        }
        let resource_scope = challenge
            .scope
            .or_else(|| (!metadata.scopes_supported.is_empty()).then(|| metadata.scopes_supported.join(" ")));
        let methods = &server.token_endpoint_auth_methods_supported;
        let secret_in_body =
            methods.iter().any(|m| m == "client_secret_post") && !methods.iter().any(|m| m == "client_secret_basic");
        Ok(AuthServer {
            issuer: server.issuer,
            authorization_endpoint: server.authorization_endpoint,
            token_endpoint: server.token_endpoint,
            revocation_endpoint: server.revocation_endpoint,
            registration_endpoint: server.registration_endpoint,
            client_id_metadata_document_supported: server.client_id_metadata_document_supported,
            secret_in_body,
            resource_scope,
        })
    }

    /// Tessera's client identity at `server` for `choice`: the metadata document's URL, or a
    /// new RFC 7591 registration (a public client using PKCE, or whatever secret it issues).
    pub async fn register(
        &self,
        server: &AuthServer,
        choice: ClientChoice,
        metadata_document_url: &str,
        redirect_uri: &str,
    ) -> Result<ClientCredentials, ConnectError> {
        match choice {
            ClientChoice::PreRegistered => {
                Err(ConnectError::Invalid("a pre-registered client is not registered".into()))
            }
            ClientChoice::MetadataDocument => {
                Ok(ClientCredentials { client_id: metadata_document_url.to_owned(), client_secret: None })
            }
            ClientChoice::Dynamic => {
                let endpoint = server.registration_endpoint.as_deref().ok_or(rules::NoClientIdentity)?;
                let url = Url::parse(endpoint).map_err(|_| ConnectError::Invalid(format!("endpoint {endpoint}")))?;
                let body = client_metadata(redirect_uri);
                let got = self.send(&url, |http, url| http.post(url).json(&body)).await?;
                if !(200..300).contains(&got.status) {
                    return Err(rejected(&got));
                }
                let reg: Registered = serde_json::from_slice(&got.body)
                    .map_err(|e| ConnectError::Invalid(format!("registration answer: {e}")))?;
                if reg.client_id.is_empty() || reg.client_id.len() > MAX_VALUE_CHARS {
                    return Err(ConnectError::Invalid("registration answer: client_id".into()));
                }
                Ok(ClientCredentials { client_id: reg.client_id, client_secret: reg.client_secret.map(Zeroizing::new) })
            }
        }
    }

    /// Where to send the browser: the authorization-code flow with PKCE S256, `state` and
    /// RFC 8707 `resource` (exactly the upstream URL).
    pub fn authorization_url(
        server: &AuthServer,
        client: &ClientCredentials,
        flow: &Flow,
        redirect_uri: &str,
        resource: &str,
        scope: Option<&str>,
    ) -> Result<Url, ConnectError> {
        let mut url = Url::parse(&server.authorization_endpoint)
            .map_err(|_| ConnectError::Invalid("authorization_endpoint".into()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", &flow.state)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", resource);
        if let Some(scope) = scope.filter(|s| !s.trim().is_empty()) {
            url.query_pairs_mut().append_pair("scope", scope);
        }
        Ok(url)
    }

    /// Exchanges the callback's code.
    pub async fn exchange(
        &self,
        server: &AuthServer,
        client: &ClientCredentials,
        code: &CodeExchange<'_>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, ConnectError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.code),
            ("code_verifier", code.verifier),
            ("redirect_uri", code.redirect_uri),
            ("resource", code.resource),
        ];
        self.token_request(server, client, &form, now, None).await
    }

    /// Refreshes with `refresh_token`; a server that issues no new refresh token keeps the old
    /// one valid (RFC 6749 §6), so it is kept.
    pub async fn refresh(
        &self,
        server: &AuthServer,
        client: &ClientCredentials,
        refresh_token: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> Result<Tokens, ConnectError> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("resource", resource)];
        self.token_request(server, client, &form, now, Some(refresh_token)).await
    }

    /// RFC 7009: revokes `token` (best effort; a server without the endpoint is fine).
    pub async fn revoke(
        &self,
        server: &AuthServer,
        client: &ClientCredentials,
        token: &str,
        hint: &str,
    ) -> Result<(), ConnectError> {
        let Some(endpoint) = server.revocation_endpoint.as_deref() else { return Ok(()) };
        let url = Url::parse(endpoint).map_err(|_| ConnectError::Invalid(format!("endpoint {endpoint}")))?;
        let form = [("token", token), ("token_type_hint", hint)];
        let got = self.send(&url, |http, url| authenticated(http.post(url), server, client, &form)).await?;
        if got.status == 200 { Ok(()) } else { Err(rejected(&got)) }
    }

    async fn token_request(
        &self,
        server: &AuthServer,
        client: &ClientCredentials,
        form: &[(&str, &str)],
        now: DateTime<Utc>,
        old_refresh: Option<&str>,
    ) -> Result<Tokens, ConnectError> {
        let url = Url::parse(&server.token_endpoint).map_err(|_| ConnectError::Invalid("token_endpoint".into()))?;
        let got = self.send(&url, |http, url| authenticated(http.post(url), server, client, form)).await?;
        if got.status != 200 {
            return Err(rejected(&got));
        }
        read_tokens(&got.body, now, old_refresh)
    }
}

/// Reads a successful token response (RFC 6749 §5.1): a Bearer token of printable characters
/// (it goes into a header), at most 8 KiB each; a refresh answer without a new refresh token
/// keeps `old_refresh`.
pub fn read_tokens(body: &[u8], now: DateTime<Utc>, old_refresh: Option<&str>) -> Result<Tokens, ConnectError> {
    let answer: TokenResponse =
        serde_json::from_slice(body).map_err(|e| ConnectError::Invalid(format!("token response: {e}")))?;
    if !answer.token_type.eq_ignore_ascii_case("bearer") {
        return Err(ConnectError::Invalid(format!("token response: token_type {}", answer.token_type)));
    }
    let usable = |t: &str| !t.is_empty() && t.len() <= MAX_VALUE_CHARS && t.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !usable(&answer.access_token) || answer.refresh_token.as_deref().is_some_and(|t| !usable(t)) {
        return Err(ConnectError::Invalid("token response: a token that is not a valid bearer value".into()));
    }
    let identity = rules::identity(answer.id_token.as_deref(), &answer.access_token);
    let refresh_token = answer.refresh_token.or_else(|| old_refresh.map(str::to_owned));
    Ok(Tokens {
        access_token: Zeroizing::new(answer.access_token),
        refresh_token: refresh_token.map(Zeroizing::new),
        expires_at: rules::expires_at(now, answer.expires_in),
        identity,
    })
}

/// What Tessera says about itself when it registers (and in its metadata document).
pub fn client_metadata(redirect_uri: &str) -> serde_json::Value {
    serde_json::json!({
        "client_name": "Tessera",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// Adds the client's authentication (HTTP Basic, or the body where only that is offered, or
/// just `client_id` for a public client) and the form.
fn authenticated(
    req: reqwest::RequestBuilder,
    server: &AuthServer,
    client: &ClientCredentials,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let req = match &client.client_secret {
        Some(secret) if !server.secret_in_body => {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req.basic_auth(enc(&client.client_id), Some(enc(secret)))
        }
        Some(secret) => {
            fields.push(("client_id", &client.client_id));
            fields.push(("client_secret", secret.as_str()));
            req
        }
        None => {
            fields.push(("client_id", &client.client_id));
            req
        }
    };
    req.form(&fields)
}

fn rejected(got: &Fetched) -> ConnectError {
    let error = serde_json::from_slice::<ErrorResponse>(&got.body)
        .map(|e| e.error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect())
        .unwrap_or_else(|_| format!("http_{}", got.status));
    ConnectError::Rejected { error }
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |err| err.source()).last().map(ToString::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: serde_json::Value) -> Result<Tokens, ConnectError> {
        read_tokens(body.to_string().as_bytes(), Utc::now(), Some("old-refresh"))
    }

    #[test]
    fn a_good_token_response_is_read_and_keeps_the_old_refresh_token_when_none_comes() {
        let t = read(serde_json::json!({"access_token": "abc", "token_type": "bearer", "expires_in": 60})).unwrap();
        assert_eq!(t.access_token.as_str(), "abc");
        assert_eq!(t.refresh_token.as_ref().map(|r| r.as_str()), Some("old-refresh"));
        assert!(t.expires_at.is_some());
    }

    #[test]
    fn a_malformed_token_response_is_refused_and_gives_no_tokens() {
        for body in [
            serde_json::json!({"token_type": "Bearer"}),
            serde_json::json!({"access_token": "abc", "token_type": "DPoP"}),
            serde_json::json!({"access_token": "", "token_type": "Bearer"}),
            serde_json::json!({"access_token": "a b", "token_type": "Bearer"}),
            serde_json::json!({"access_token": "a\r\nX-Evil: 1", "token_type": "Bearer"}),
            serde_json::json!({"access_token": "x".repeat(9000), "token_type": "Bearer"}),
            serde_json::json!({"access_token": "abc", "token_type": "Bearer", "refresh_token": "r\u{7f}"}),
            serde_json::json!({"access_token": 7, "token_type": "Bearer"}),
            serde_json::json!(["abc"]),
        ] {
            assert!(matches!(read(body.clone()), Err(ConnectError::Invalid(_))), "{body}");
        }
        assert!(matches!(read_tokens(b"not json", Utc::now(), None), Err(ConnectError::Invalid(_))));
    }
}
