//! The authorization server's use cases: authorize, consent, token, register, revoke.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::lifecycle::{AutomaticRevocation, Requester};
use tessera_core::scope::ScopeSet;
use tessera_core::upstream::ToolAccess;
use tessera_core::values::{Lifetime, RateLimit, TokenName};
use tessera_store::{
    Actor, AuditAction, ClientKind, NewCode, OAuthClient, ServerRecord, Store, StoreError, TokenRecord,
};
use tessera_tokens::{GrantInput, TokenError, TokenService};
use url::Url;
use uuid::Uuid;

use crate::cimd::CimdFetcher;
use crate::rules::{self, ClientMetadata, CodeFacts, Exchange, OAuthError, ServerTarget, Target};

/// How the authorization server is deployed.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `issuer` (RFC 8414) and the `iss` of authorization responses (RFC 9207): the public URL.
    pub issuer: String,
    /// Resources a grant may be for; the first is the default.
    pub resources: Vec<String>,
    /// Access token lifetime (`TESSERA_OAUTH_ACCESS_TTL`).
    pub access_ttl: Duration,
    /// Fetch metadata documents from loopback and private addresses too
    /// (`TESSERA_OAUTH_ALLOW_LOCAL_CLIENTS`; development and tests only).
    pub allow_local_clients: bool,
    /// Extra CA certificates (PEM) trusted when fetching metadata documents
    /// (`TESSERA_OAUTH_EXTRA_CA_FILE`), besides the system's roots.
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// The query of `GET /oauth/authorize`, as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Where to send the answer.
    pub redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// Requested scopes.
    pub scope: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// RFC 8707 resource.
    pub resource: Option<String>,
}

/// A checked authorization request, ready for the consent page.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizeRequest {
    /// The client.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// `dynamic` or `metadata_document`.
    pub client_kind: ClientKind,
    /// Where the client comes from, for the user: the CIMD URL's host, or the redirect host.
    pub client_origin: String,
    /// Redirect URI (matched against the registration).
    pub redirect_uri: String,
    /// Host of the redirect URI, shown on the consent page.
    pub redirect_host: String,
    /// Echoed back to the client.
    pub state: Option<String>,
    /// Scopes asked for, or the target's default when none usable was (pre-ticked; never
    /// `mcp:admin`).
    pub scopes: Vec<String>,
    /// Scopes the person may choose from: the requested ones and narrower ones
    /// ([`rules::offered_scopes`]).
    pub offered: Vec<String>,
    /// The resource the grant is for.
    pub resource: String,
    /// The registered server that resource belongs to (`None`: the built-in `/mcp`).
    pub server: Option<ServerInfo>,
    /// What the grant is for, as resolved against the registry.
    #[serde(skip)]
    pub target: Target,
    /// PKCE challenge.
    #[serde(skip)]
    pub code_challenge: String,
}

/// A registered server as the consent page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// Its name (the `S` of its scopes).
    pub name: String,
    /// The admin's description.
    pub description: Option<String>,
    /// Whether it checks tokens itself (else the gateway serves it at `/mcp/S`).
    pub direct: bool,
    /// Its known tools (hidden ones left out), by name.
    pub tools: Vec<ToolInfo>,
}

/// A tool of a registered server and its access class.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Its description upstream.
    pub description: Option<String>,
    /// `read` or `write`.
    pub access: &'static str,
}

/// What the user chose on the consent page.
#[derive(Debug, Clone, Deserialize)]
pub struct Consent {
    /// Scopes left ticked.
    pub scopes: Vec<String>,
    /// Grant lifetime, 1-365 days (default 30).
    pub expires_in_days: Option<i64>,
    /// Optional requests per hour.
    pub rate_limit_per_hour: Option<i64>,
    /// Keep this person's grants in force for the same client and resource; by default the
    /// new grant replaces them once the client exchanges its code.
    pub keep_previous: bool,
}

/// The form of `POST /oauth/token`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenForm {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// Must repeat the authorization request's.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// The client (public clients authenticate by id only).
    pub client_id: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// RFC 8707 resource, if repeated (on refresh: must be the grant's own).
    pub resource: Option<String>,
    /// Requested scope on refresh (must not widen; ignored otherwise).
    pub scope: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The new refresh token (rotated on every use).
    pub refresh_token: String,
    /// Granted scopes.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse").field("expires_in", &self.expires_in).field("scope", &self.scope).finish()
    }
}

/// The authorization server; cheap to clone.
#[derive(Debug, Clone)]
pub struct OAuthService {
    store: Store,
    tokens: TokenService,
    config: OAuthConfig,
    documents: std::sync::Arc<CimdFetcher>,
}

fn store_err(e: StoreError) -> OAuthError {
    tracing::error!(error = %e, "oauth store failure");
    if matches!(e, StoreError::Unavailable(_)) { OAuthError::TemporarilyUnavailable } else { OAuthError::ServerError }
}

fn token_err(e: TokenError) -> OAuthError {
    match e {
        TokenError::GrantInvalid | TokenError::NotFound => {
            OAuthError::InvalidGrant("the grant is invalid, expired or revoked".to_owned())
        }
        TokenError::RefreshReused => {
            OAuthError::InvalidGrant("the refresh token was already used; the grant is revoked".to_owned())
        }
        TokenError::Rule(rule) => OAuthError::InvalidRequest(rule.to_string()),
        TokenError::Store(e) => store_err(e),
        TokenError::Signing(cause) => {
            tracing::error!(%cause, "oauth token signing failed");
            OAuthError::ServerError
        }
    }
}

/// 256 random bits, base64url: codes and refresh tokens.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn host_of(uri: &str) -> String {
    Url::parse(uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default()
}

impl OAuthService {
    /// The server over `store`, issuing grants through `tokens`.
    pub fn new(store: Store, tokens: TokenService, config: OAuthConfig) -> Self {
        let documents = CimdFetcher::new(config.allow_local_clients, config.extra_ca_pem.as_deref())
            .or_else(|e| {
                // The composition root checked the file at start-up; this is a safety net.
                tracing::error!(error = %e, "extra CA certificates unusable; using the system roots only");
                CimdFetcher::new(config.allow_local_clients, None)
            })
            .unwrap_or_else(|_| CimdFetcher::empty(config.allow_local_clients));
        Self { store, tokens, config, documents: std::sync::Arc::new(documents) }
    }

    /// The client behind `client_id`: a metadata document (fetched, cached, recorded so its
    /// grants can name it) for an `https` URL, else a registered client.
    async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, OAuthError> {
        if !client_id.starts_with("https://") {
            return self.store.oauth_client(client_id).await.map_err(store_err);
        }
        let doc = self.documents.fetch(client_id).await?;
        let client = OAuthClient {
            id: client_id.to_owned(),
            kind: "metadata_document".to_owned(),
            name: doc.name,
            redirect_uris: doc.redirect_uris,
            created_at: Utc::now(),
        };
        let actor = Actor::default();
        self.store.upsert_oauth_client(&client, ClientKind::MetadataDocument, &actor).await.map_err(store_err)?;
        Ok(Some(client))
    }

    /// What `resource` names: the built-in MCP resource (also when absent, without a query),
    /// else a server registered right now (its row comes along for the consent page).
    async fn target(&self, resource: Option<&str>) -> Result<(Target, Option<ServerRecord>), OAuthError> {
        if let Ok(builtin) = rules::resolve_target(resource, &self.config.resources, &[]) {
            return Ok((builtin, None));
        }
        let base = self.config.resources.first().map(|r| r.trim_end_matches('/')).unwrap_or_default();
        let records = self.store.list_servers().await.map_err(store_err)?;
        let servers: Vec<ServerTarget> = records
            .iter()
            .filter_map(|r| {
                let name = ServerName::parse(&r.name).ok()?;
                let resource = if r.direct { r.url.clone() } else { format!("{base}/{name}") };
                Some(ServerTarget { name, resource, direct: r.direct })
            })
            .collect();
        let target = rules::resolve_target(resource, &self.config.resources, &servers)?;
        let record = match &target {
            Target::Server(s) => records.into_iter().find(|r| r.name == s.name.as_str()),
            Target::Builtin(_) => None,
        };
        Ok((target, record))
    }

    /// A server's known tools with their class in force; hidden ones are left out.
    async fn tools(&self, server: &ServerRecord) -> Result<Vec<(ToolName, ToolAccess, Option<String>)>, OAuthError> {
        let rows = self.store.server_tools(server.id).await.map_err(store_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let overridden = row.access.as_deref().and_then(|a| ToolAccess::parse(a).ok());
                let access = ToolAccess::effective(overridden, row.read_only_hint);
                let name = ToolName::parse(&row.name).ok()?;
                (access != ToolAccess::Hidden).then_some((name, access, row.description))
            })
            .collect())
    }

    /// Deployment settings.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// Checks an authorization request: client and redirect URI first, then the rest. Every
    /// failure is answered on Tessera's own error page, never at the redirect URI: clients
    /// register themselves (RFC 7591) or describe themselves (CIMD), so a redirect URI proves
    /// nothing about who owns it, and an error redirect before the person has signed in would
    /// make `/oauth/authorize` an open redirector (RFC 9700 §4.11.2).
    pub async fn check_authorize(&self, p: &AuthorizeParams) -> Result<AuthorizeRequest, OAuthError> {
        let client_id =
            p.client_id.as_deref().ok_or_else(|| OAuthError::InvalidRequest("client_id is required".into()))?;
        let client =
            self.client(client_id).await?.ok_or_else(|| OAuthError::InvalidClient("unknown client_id".into()))?;
        let redirect_uri =
            p.redirect_uri.clone().ok_or_else(|| OAuthError::InvalidRequest("redirect_uri is required".into()))?;
        if !rules::redirect_uri_matches(&client.redirect_uris, &redirect_uri) {
            return Err(OAuthError::InvalidRequest("redirect_uri is not registered for this client".into()));
        }
        if p.state.as_ref().is_some_and(|s| s.len() > rules::MAX_STATE_CHARS) {
            return Err(OAuthError::InvalidRequest("state is too long".into()));
        }
        let state = p.state.clone();
        if p.response_type.as_deref() != Some("code") {
            return Err(OAuthError::UnsupportedResponseType);
        }
        let code_challenge = rules::check_challenge(p.code_challenge.as_deref(), p.code_challenge_method.as_deref())?;
        let (target, record) = self.target(p.resource.as_deref()).await?;
        let requested = rules::requested_scopes(p.scope.as_deref(), &target)?;
        let tools = match &record {
            Some(server) => self.tools(server).await?,
            None => Vec::new(),
        };
        let classes: Vec<(ToolName, ToolAccess)> = tools.iter().map(|(n, a, _)| (n.clone(), *a)).collect();
        let offered = rules::offered_scopes(&requested, &target, &classes);
        let server = record.map(|r| ServerInfo {
            name: r.name,
            description: r.description,
            direct: r.direct,
            tools: tools
                .into_iter()
                .map(|(name, access, description)| ToolInfo { name: name.into(), description, access: access.as_str() })
                .collect(),
        });
        let kind = if client.kind == "metadata_document" { ClientKind::MetadataDocument } else { ClientKind::Dynamic };
        let client_origin = match kind {
            ClientKind::MetadataDocument => host_of(&client.id),
            ClientKind::Dynamic => format!("registered dynamically; redirects to {}", host_of(&redirect_uri)),
        };
        Ok(AuthorizeRequest {
            client_id: client.id,
            client_name: client.name,
            client_kind: kind,
            client_origin,
            redirect_host: host_of(&redirect_uri),
            redirect_uri,
            state,
            scopes: requested.scopes.to_vec(),
            offered: offered.to_vec(),
            resource: target.resource().to_owned(),
            server,
            target,
            code_challenge,
        })
    }

    /// The redirect URL that carries `params` (plus `state` and `iss`) back to the client.
    pub fn redirect_url(&self, redirect_uri: &str, state: Option<&str>, params: &[(&str, &str)]) -> String {
        let Ok(mut url) = Url::parse(redirect_uri) else { return redirect_uri.to_owned() };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.config.issuer);
        }
        url.into()
    }

    /// The error redirect of a failed request.
    pub fn error_redirect(&self, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> String {
        let description = error.to_string();
        self.redirect_url(redirect_uri, state, &[("error", error.code()), ("error_description", &description)])
    }

    /// The user approved: stores a code bound to everything the token request must repeat
    /// and returns the redirect URL carrying it.
    pub async fn approve(
        &self,
        user_id: Uuid,
        ip: Option<String>,
        req: &AuthorizeRequest,
        consent: &Consent,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthError> {
        let offered = req.target.catalog().grant(&req.offered).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        let scopes = rules::approved_scopes(&offered, &consent.scopes, &req.target)?;
        let lifetime = consent
            .expires_in_days
            .map_or(Ok(Lifetime::default_days()), Lifetime::from_days)
            .map_err(|e| OAuthError::InvalidRequest(e.to_string()))?;
        let rate_limit = consent
            .rate_limit_per_hour
            .map(RateLimit::new)
            .transpose()
            .map_err(|e| OAuthError::InvalidRequest(e.to_string()))?;
        let code = random_secret();
        let expires_at = rules::code_expiry(now).ok_or(OAuthError::ServerError)?;
        let new = NewCode {
            code_sha256: sha256(&code),
            client_id: req.client_id.clone(),
            user_id,
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            resource: req.resource.clone(),
            scopes: scopes.to_vec(),
            lifetime_days: i32::try_from(lifetime.days()).map_err(|_| OAuthError::ServerError)?,
            rate_limit_per_hour: rate_limit.map(RateLimit::to_stored),
            created_at: now,
            expires_at,
            keep_previous: consent.keep_previous,
        };
        let actor = Actor { user_id: Some(user_id), token_id: None, ip };
        self.store.insert_oauth_code(&new, &actor).await.map_err(store_err)?;
        Ok(self.redirect_url(&req.redirect_uri, req.state.as_deref(), &[("code", &code)]))
    }

    /// The request as `user_id` sees it, with their grants in force to its client for its
    /// resource (what approving replaces, unless kept). Their scopes are offered and
    /// pre-ticked too: a client stepping up asks only for what it lacks (as the 2026-07-28
    /// challenge names only that), and replacing its grant must not take away what it had.
    pub async fn for_person(
        &self,
        user_id: Uuid,
        mut req: AuthorizeRequest,
        now: DateTime<Utc>,
    ) -> Result<(AuthorizeRequest, Vec<tessera_store::ActiveGrant>), OAuthError> {
        // Offered only what the person's teams allow them to hold (issuing checks it again).
        let allowance = self.tokens.allowance_of(user_id).await.map_err(token_err)?;
        let allowed = |s: &String| allowance.missing(&ScopeSet::parse_lenient(s)).is_empty();
        req.offered.retain(allowed);
        req.scopes.retain(allowed);
        let grants = self.store.active_grants(user_id, &req.client_id, &req.resource, now).await.map_err(store_err)?;
        let catalog = req.target.catalog();
        for scope in grants.iter().flat_map(|g| g.scopes.iter()) {
            // A scope the registry no longer has (a removed server or tool) is not offered again.
            let grantable = catalog.grant(std::slice::from_ref(scope)).is_ok() && allowed(scope);
            if grantable && !req.offered.contains(scope) {
                req.offered.push(scope.clone());
            }
            if grantable && !req.scopes.contains(scope) {
                req.scopes.push(scope.clone());
            }
        }
        Ok((req, grants))
    }

    /// The user said no: audited, and `access_denied` goes back to the client.
    pub async fn deny(&self, user_id: Uuid, ip: Option<String>, req: &AuthorizeRequest) -> Result<String, OAuthError> {
        let actor = Actor { user_id: Some(user_id), token_id: None, ip };
        let details = serde_json::json!({"client_id": req.client_id, "scopes": req.scopes});
        self.store.audit(&actor, AuditAction::OAuthDeny, None, details).await.map_err(store_err)?;
        Ok(self.error_redirect(&req.redirect_uri, req.state.as_deref(), &OAuthError::AccessDenied))
    }

    /// `POST /oauth/token`.
    pub async fn token(
        &self,
        ip: Option<String>,
        form: &TokenForm,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(ip, form, now).await,
            Some("refresh_token") => self.refresh(ip, form, now).await,
            Some(_) => Err(OAuthError::UnsupportedGrantType),
            None => Err(OAuthError::InvalidRequest("grant_type is required".into())),
        }
    }

    async fn exchange_code(
        &self,
        ip: Option<String>,
        form: &TokenForm,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let client_id =
            form.client_id.as_deref().ok_or_else(|| OAuthError::InvalidClient("client_id is required".into()))?;
        let code = form.code.as_deref().ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
        let code_sha = sha256(code);
        let stored = self
            .store
            .oauth_code(&code_sha)
            .await
            .map_err(store_err)?
            .ok_or_else(|| OAuthError::InvalidGrant("unknown authorization code".into()))?;
        if stored.used_at.is_some() {
            // A replayed code may be a stolen one: end what it produced (OAuth 2.1 §4.1.3).
            if let Some(grant) = stored.grant_id {
                let who = Requester::Person { user_id: stored.user_id, is_admin: false };
                if let Err(e) = self.tokens.revoke(&who, ip, grant, AutomaticRevocation::CodeReplayed, now).await {
                    tracing::error!(error = %e, grant_id = %grant, "could not revoke the grant of a replayed code");
                }
                tracing::warn!(grant_id = %grant, "authorization code replayed; grant revoked");
            }
            return Err(OAuthError::InvalidGrant("the authorization code was already used".into()));
        }
        let facts = CodeFacts {
            client_id: &stored.client_id,
            redirect_uri: &stored.redirect_uri,
            code_challenge: &stored.code_challenge,
            resource: &stored.resource,
            expires_at: stored.expires_at,
            used: false,
        };
        let exchange = Exchange {
            client_id,
            redirect_uri: form.redirect_uri.as_deref(),
            code_verifier: form.code_verifier.as_deref(),
            resource: form.resource.as_deref(),
        };
        rules::check_exchange(&facts, &exchange, now)?;
        // The server may have been removed since the consent: then there is nothing to issue for.
        let (target, _) = self.target(Some(&stored.resource)).await?;
        let client = self.store.oauth_client(client_id).await.map_err(store_err)?;
        let name = client.map_or_else(|| client_id.to_owned(), |c| c.name);
        let name: String = name.chars().take(tessera_core::values::NAME_MAX_CHARS).collect();
        let refresh = random_secret();
        let input = GrantInput {
            owner: stored.user_id,
            name: TokenName::parse(&name).map_err(|_| OAuthError::ServerError)?,
            scopes: target.catalog().grant(&stored.scopes).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
            lifetime: Lifetime::from_days(i64::from(stored.lifetime_days)).map_err(|_| OAuthError::ServerError)?,
            rate_limit: stored.rate_limit_per_hour.map(RateLimit::from_stored),
            client_id: client_id.to_owned(),
            resource: target.resource().to_owned(),
            access_ttl: self.config.access_ttl,
            code_sha256: code_sha,
            refresh_sha256: sha256(&refresh),
        };
        let user = self.store.user_by_id(stored.user_id).await.map_err(store_err)?;
        let who = Requester::Person { user_id: stored.user_id, is_admin: user.is_some_and(|u| u.is_admin) };
        let resource = input.resource.clone();
        let issued = self.tokens.issue_grant(&who, ip.clone(), input, now).await.map_err(token_err)?;
        if !stored.keep_previous {
            self.replace_previous(&who, ip, client_id, &resource, issued.grant.id, now).await;
        }
        Ok(response(issued, refresh, now))
    }

    /// Revokes the owner's other grants to `client_id` for `resource`, through the usual
    /// path (cascade, notification, webhook). The new grant is already issued: a failure here
    /// is logged and leaves the older grant to its owner, never fails the exchange.
    async fn replace_previous(
        &self,
        who: &Requester,
        ip: Option<String>,
        client_id: &str,
        resource: &str,
        new_grant: Uuid,
        now: DateTime<Utc>,
    ) {
        let Requester::Person { user_id, .. } = *who else { return };
        let previous = match self.store.active_grants(user_id, client_id, resource, now).await {
            Ok(grants) => grants,
            Err(e) => {
                tracing::error!(error = %e, "could not look up the grants a new one replaces");
                return;
            }
        };
        for grant in previous.into_iter().filter(|g| g.id != new_grant) {
            if let Err(e) = self.tokens.revoke(who, ip.clone(), grant.id, AutomaticRevocation::GrantReplaced, now).await
            {
                tracing::error!(error = %e, grant_id = %grant.id, "could not revoke a replaced grant");
            }
        }
    }

    async fn refresh(
        &self,
        ip: Option<String>,
        form: &TokenForm,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let client_id =
            form.client_id.as_deref().ok_or_else(|| OAuthError::InvalidClient("client_id is required".into()))?;
        let presented = form
            .refresh_token
            .as_deref()
            .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
        if let Some(resource) = form.resource.as_deref() {
            self.check_refresh_resource(resource, &sha256(presented)).await?;
        }
        let refresh = random_secret();
        let issued = self
            .tokens
            .refresh_grant(ip, client_id, &sha256(presented), &sha256(&refresh), self.config.access_ttl, now)
            .await
            .map_err(token_err)?;
        Ok(response(issued, refresh, now))
    }

    /// RFC 8707 §2.2: a refresh may repeat the resource, never move the grant to another
    /// one. Checked before the refresh token is used, so a refused request does not cost it.
    async fn check_refresh_resource(&self, resource: &str, refresh_sha256: &[u8; 32]) -> Result<(), OAuthError> {
        let (target, _) = self.target(Some(resource)).await?;
        let Some(refresh) = self.store.oauth_refresh(refresh_sha256).await.map_err(store_err)? else {
            // Unknown: the exchange itself answers invalid_grant.
            return Ok(());
        };
        let grant = self.store.get_token(refresh.grant_id).await.map_err(store_err)?;
        match grant {
            Some(grant) if !grant.audience.iter().any(|a| a == target.resource()) => Err(OAuthError::InvalidTarget),
            _ => Ok(()),
        }
    }

    /// `POST /oauth/register` (RFC 7591): a public client with checked metadata.
    pub async fn register(
        &self,
        ip: Option<String>,
        meta: &ClientMetadata,
        now: DateTime<Utc>,
    ) -> Result<OAuthClient, OAuthError> {
        let valid = rules::check_registration(meta)?;
        let client = OAuthClient {
            id: format!("tsr_{}", Uuid::now_v7().simple()),
            kind: "dynamic".to_owned(),
            name: valid.name,
            redirect_uris: valid.redirect_uris,
            created_at: now,
        };
        let actor = Actor { user_id: None, token_id: None, ip };
        self.store.upsert_oauth_client(&client, ClientKind::Dynamic, &actor).await.map_err(store_err)?;
        Ok(client)
    }

    /// `POST /oauth/revoke` (RFC 7009): a refresh token or an access token of a grant revokes
    /// the whole grant (its row, so its access and refresh tokens alike, and every token it
    /// minted), for whichever resource it was issued. A token that is neither, or that belongs
    /// to another client, is not an error (RFC 7009 §2.2): `Ok(false)`.
    pub async fn revoke(
        &self,
        ip: Option<String>,
        client_id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, OAuthError> {
        let grant = match self.store.oauth_refresh(&sha256(token)).await.map_err(store_err)? {
            Some(refresh) => self.store.get_token(refresh.grant_id).await.map_err(store_err)?,
            None => self.tokens.grant_of_access_token(client_id, token, now).await.map_err(token_err)?,
        };
        let Some(grant) = grant.filter(|g| g.oauth_client_id.as_deref() == Some(client_id)) else {
            return Ok(false);
        };
        let who = Requester::Person { user_id: grant.user_id, is_admin: false };
        self.tokens.revoke(&who, ip, grant.id, AutomaticRevocation::ClientRevoked, now).await.map_err(token_err)?;
        Ok(true)
    }
}

fn response(issued: tessera_tokens::IssuedAccess, refresh: String, now: DateTime<Utc>) -> TokenResponse {
    let record: &TokenRecord = &issued.grant;
    TokenResponse {
        access_token: issued.access_token.into_inner(),
        token_type: "Bearer",
        expires_in: (issued.expires_at - now).num_seconds().max(0),
        refresh_token: refresh,
        scope: record.scope_set().to_claim(),
    }
}
