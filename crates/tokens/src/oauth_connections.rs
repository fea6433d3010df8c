//! Connected accounts through OAuth (issue #25, `--user-auth oauth`): Tessera is an OAuth
//! client of the upstream's authorization server, once per person. The flow's start and end
//! live here (discovery and client registration on first use), as do refresh (one at a time
//! per connection across instances, claimed in the row) and revocation on disconnect. The
//! tokens are sealed per (server, person); the access token reaches only the gateway's cache.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::sealed::{SealError, SealKey, Sealed};
use tessera_store::{Actor, OAuthSetup, SealedTokens, ServerRecord, UserAuth};
use tessera_upstream_oauth::{
    AuthServer, ClientCredentials, CodeExchange, ConnectError, Flow, Tokens, Upstream, rules,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::servers::{ServerError, ServerService};

/// What an administrator gives for a server whose users connect through OAuth.
#[derive(Clone, Default)]
pub struct PersonalOAuth {
    /// Scopes to ask for (`None`: what the upstream asks for).
    pub scope: Option<String>,
    /// A client registered at the upstream's authorization server by the administrator.
    pub client_id: Option<String>,
    /// Its secret (confidential clients).
    pub client_secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for PersonalOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalOAuth")
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Tessera's own addresses in the flow.
#[derive(Debug, Clone)]
pub struct ConnectUrls {
    /// `{public}/api/v2/connections/callback`, exactly.
    pub redirect_uri: String,
    /// Tessera's Client ID Metadata Document.
    pub metadata_document: String,
    /// Whether the public URL is `https` (a metadata document is fetchable only then).
    pub public_https: bool,
}

/// What the upstream's redirect back brought, with the flow's verifier.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    /// The authorization code.
    pub code: &'a str,
    /// The flow's PKCE verifier.
    pub verifier: &'a str,
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// New tokens are stored (and every gateway's cache dropped them).
    Done,
    /// Another caller (perhaps another instance) is refreshing this connection right now.
    Busy,
    /// The grant is dead: the connection was forgotten, the person must connect again.
    Gone,
}

/// The two tokens, as sealed together.
#[derive(Serialize, Deserialize)]
struct TokenPair {
    a: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

/// How long one refresh may hold its claim.
const REFRESH_CLAIM: i64 = 30;
/// Connections refreshed per sweep at most.
const SWEEP_LIMIT: i64 = 100;

fn tokens_context(server: Uuid, user: Uuid) -> Vec<u8> {
    format!("connection/{server}/{user}").into_bytes()
}

fn client_context(server: Uuid) -> Vec<u8> {
    format!("server-oauth-client/{server}").into_bytes()
}

fn seal_tokens(key: &SealKey, server: Uuid, user: Uuid, tokens: &Tokens, now: DateTime<Utc>) -> SealedTokens {
    let pair = TokenPair {
        a: tokens.access_token.as_str().to_owned(),
        r: tokens.refresh_token.as_ref().map(|r| r.as_str().to_owned()),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&pair).unwrap_or_default());
    SealedTokens {
        value: key.seal(&plain, &tokens_context(server, user)),
        issued_at: now,
        expires_at: tokens.expires_at,
        identity: tokens.identity.clone(),
    }
}

/// Opens a connection's sealed tokens: (access, refresh).
pub(crate) fn open_tokens(
    key: &SealKey,
    server: Uuid,
    user: Uuid,
    sealed: &Sealed,
) -> Result<(Zeroizing<String>, Option<Zeroizing<String>>), SealError> {
    let plain = Zeroizing::new(key.open(sealed, &tokens_context(server, user))?);
    let pair: TokenPair = serde_json::from_slice(&plain).map_err(|_| SealError::Open)?;
    Ok((Zeroizing::new(pair.a), pair.r.map(Zeroizing::new)))
}

impl ServerService {
    /// Makes server `name`'s users connect through the upstream's OAuth authorization server.
    pub async fn set_personal_oauth(
        &self,
        actor: &Actor,
        name: &str,
        oauth: &PersonalOAuth,
    ) -> Result<(), ServerError> {
        let record = self.get(name).await?;
        let secret = match &oauth.client_secret {
            Some(s) => Some(self.sealing_key()?.seal(s.as_bytes(), &client_context(record.id))),
            None => None,
        };
        let auth = UserAuth {
            header: "authorization".to_owned(),
            prefix: "Bearer ".to_owned(),
            oauth: Some(OAuthSetup {
                scope: oauth.scope.clone().filter(|s| !s.trim().is_empty()),
                client_id: oauth.client_id.clone(),
                client_secret: secret,
                preregistered: oauth.client_id.is_some(),
                authorization_server: None,
            }),
        };
        if !self.store().set_user_auth(actor, name, Some(&auth)).await? {
            return Err(ServerError::NotFound);
        }
        self.forget(name);
        Ok(())
    }

    /// Starts a person's connection to server `name`: the URL to send their browser to, and
    /// the flow's secrets to keep (bound to the person by the caller) until the callback.
    /// Discovers the authorization server and registers Tessera there the first time; what
    /// was learnt is kept until the server's user auth is set again.
    pub async fn begin_connect(&self, name: &str, urls: &ConnectUrls) -> Result<(url::Url, Flow), ServerError> {
        let record = self.get(name).await?;
        let (server, client, setup) = self.oauth_client(&record, urls).await?;
        let flow = Flow::generate();
        let scope = setup.scope.as_deref().or(server.resource_scope.as_deref());
        let url = Upstream::authorization_url(&server, &client, &flow, &urls.redirect_uri, &record.url, scope)?;
        Ok((url, flow))
    }

    /// Ends `user_id`'s connection to server `name` with the callback's `code`: exchanges it
    /// and stores the tokens sealed. Returns who the upstream says they are.
    pub async fn finish_connect(
        &self,
        actor: &Actor,
        user_id: Uuid,
        name: &str,
        callback: Callback<'_>,
        urls: &ConnectUrls,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, ServerError> {
        let record = self.get(name).await?;
        let (server, client, _) = self.oauth_client(&record, urls).await?;
        let exchange = CodeExchange {
            code: callback.code,
            verifier: callback.verifier,
            redirect_uri: &urls.redirect_uri,
            resource: &record.url,
        };
        let tokens = Upstream::for_server(&record.url).exchange(&server, &client, &exchange, now).await?;
        let sealed = seal_tokens(&self.sealing_key()?, record.id, user_id, &tokens, now);
        self.store().put_oauth_connection(actor, user_id, record.id, name, &sealed).await?;
        self.forget(name);
        Ok(tokens.identity)
    }

    /// Refreshes `user_id`'s tokens for server `name` now (the upstream refused the access
    /// token, or it is about to end). One refresh at a time per connection: a second caller
    /// gets [`Refreshed::Busy`].
    pub async fn refresh_connection(
        &self,
        user_id: Uuid,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, ServerError> {
        let record = self.get(name).await?;
        let until = now + Duration::seconds(REFRESH_CLAIM);
        let Some(sealed) = self.store().claim_refresh(user_id, record.id, now, until).await? else {
            return Ok(Refreshed::Busy);
        };
        let result = self.refresh_claimed(&record, user_id, &sealed, now).await;
        match result {
            Ok(()) => {
                self.forget(name);
                Ok(Refreshed::Done)
            }
            Err(ServerError::Connect(e)) if e.grant_is_dead() => {
                tracing::info!(server = %name, user = %user_id, "an upstream grant ended; the person must connect again");
                let system = Actor { ip: Some("refresh".to_owned()), ..Actor::default() };
                self.store().delete_connection(&system, user_id, record.id, name).await?;
                self.forget(name);
                Ok(Refreshed::Gone)
            }
            Err(e) => {
                self.store().release_refresh(user_id, record.id).await?;
                Err(e)
            }
        }
    }

    async fn refresh_claimed(
        &self,
        record: &ServerRecord,
        user_id: Uuid,
        sealed: &Sealed,
        now: DateTime<Utc>,
    ) -> Result<(), ServerError> {
        let key = self.sealing_key()?;
        let (_, refresh) = open_tokens(&key, record.id, user_id, sealed)?;
        let Some(refresh) = refresh else {
            // Nothing to refresh with: the grant ends with its access token.
            return Err(ConnectError::Rejected { error: "invalid_grant".into() }.into());
        };
        let (server, client) = self.stored_client(record).await?;
        let tokens = Upstream::for_server(&record.url).refresh(&server, &client, &refresh, &record.url, now).await?;
        let sealed = seal_tokens(&key, record.id, user_id, &tokens, now);
        self.store().finish_refresh(user_id, record.id, &record.name, &sealed).await?;
        Ok(())
    }

    /// Refreshes every OAuth connection due (see [`rules::refresh_due`]); returns how many
    /// were refreshed. Run periodically off the request path by every instance: the claim
    /// in the row keeps two from refreshing one connection.
    pub async fn refresh_expiring(&self, now: DateTime<Utc>) -> Result<usize, ServerError> {
        let horizon = now + Duration::minutes(5);
        let due = self.store().expiring_connections(now, horizon, SWEEP_LIMIT).await?;
        let mut done = 0;
        for (_, name, user, issued, expires) in due {
            if !rules::refresh_due(now, issued, expires) {
                continue;
            }
            match self.refresh_connection(user, &name, now).await {
                Ok(Refreshed::Done) => done += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(server = %name, error = %e, "could not refresh a connected account"),
            }
        }
        Ok(done)
    }

    /// Revokes at their upstreams the OAuth grants of `user_id`'s connections, in the
    /// background (best effort; a short-lived process awaits the handle). Call it before the
    /// account is deactivated or deleted, which forgets the connections.
    pub async fn revoke_connections_of(&self, user_id: Uuid) -> Option<tokio::task::JoinHandle<()>> {
        match self.store().oauth_connections(Some(user_id), None).await {
            Ok(rows) => self.revoke_in_background(rows).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a person's connections to revoke them upstream");
                None
            }
        }
    }

    /// Revokes every OAuth grant of connections to `record` (it is being removed), in the
    /// background.
    pub(crate) async fn revoke_connections_to(&self, record: &ServerRecord) {
        match self.store().oauth_connections(None, Some(record.id)).await {
            Ok(rows) => drop(self.revoke_in_background(rows).await),
            Err(e) => tracing::warn!(error = %e, "could not read a server's connections to revoke them upstream"),
        }
    }

    /// Reads what each revocation needs now (the rows are about to go), then revokes off the
    /// caller's path: an unreachable upstream must not hold up a deactivation.
    async fn revoke_in_background(&self, rows: Vec<(String, Uuid, Sealed)>) -> Option<tokio::task::JoinHandle<()>> {
        let mut ready = Vec::with_capacity(rows.len());
        for (name, user, sealed) in rows {
            match self.get(&name).await {
                Ok(record) => ready.push((record, user, sealed)),
                Err(e) => tracing::warn!(server = %name, error = %e, "cannot revoke an upstream grant"),
            }
        }
        if ready.is_empty() {
            return None;
        }
        let this = self.clone();
        // The grants' client and tokens are read now; the rows may be gone when this runs.
        let mut jobs = Vec::with_capacity(ready.len());
        for (record, user, sealed) in ready {
            match this.opened_for_revocation(&record, user, &sealed).await {
                Ok(job) => jobs.push(job),
                Err(e) => tracing::warn!(server = %record.name, error = %e, "cannot revoke an upstream grant"),
            }
        }
        Some(tokio::spawn(async move {
            for (record, server, client, token, hint) in jobs {
                if let Err(e) = Upstream::for_server(&record.url).revoke(&server, &client, &token, hint).await {
                    tracing::warn!(server = %record.name, error = %e, "could not revoke an upstream grant");
                }
            }
        }))
    }

    async fn opened_for_revocation(
        &self,
        record: &ServerRecord,
        user_id: Uuid,
        sealed: &Sealed,
    ) -> Result<(ServerRecord, AuthServer, ClientCredentials, Zeroizing<String>, &'static str), ServerError> {
        let (server, client) = self.stored_client(record).await?;
        let (access, refresh) = open_tokens(&self.sealing_key()?, record.id, user_id, sealed)?;
        Ok(match refresh {
            Some(r) => (record.clone(), server, client, r, "refresh_token"),
            None => (record.clone(), server, client, access, "access_token"),
        })
    }

    /// Revokes `user_id`'s upstream tokens for `record` at its authorization server (RFC
    /// 7009; best effort: a failure is logged, the connection is forgotten anyway).
    pub(crate) async fn revoke_upstream(&self, record: &ServerRecord, user_id: Uuid, sealed: &Sealed) {
        let revoke = async {
            let (record, server, client, token, hint) = self.opened_for_revocation(record, user_id, sealed).await?;
            Upstream::for_server(&record.url).revoke(&server, &client, &token, hint).await?;
            Ok::<(), ServerError>(())
        };
        if let Err(e) = revoke.await {
            tracing::warn!(server = %record.name, error = %e, "could not revoke an upstream grant at disconnect");
        }
    }

    /// The authorization server and client of an OAuth server, discovering and registering
    /// on first use.
    async fn oauth_client(
        &self,
        record: &ServerRecord,
        urls: &ConnectUrls,
    ) -> Result<(AuthServer, ClientCredentials, OAuthSetup), ServerError> {
        let auth = self.store().user_auth(record.id).await?.ok_or(ServerError::NotPersonal)?;
        let mut setup = auth.oauth.ok_or(ServerError::NotPersonal)?;
        let known =
            setup.authorization_server.as_ref().and_then(|v| serde_json::from_value::<AuthServer>(v.clone()).ok());
        if let (Some(server), Some(_)) = (known, &setup.client_id) {
            let client = self.open_client(record, &setup)?;
            return Ok((server, client, setup));
        }
        let upstream = Upstream::for_server(&record.url);
        let shared: Vec<(String, String)> = self
            .open_headers(record)
            .await?
            .iter()
            .map(|h| (h.name().to_owned(), h.expose_value().to_owned()))
            .collect();
        let server = upstream.discover(&record.url, &shared).await?;
        let (client_id, secret) = if setup.client_id.is_some() {
            (setup.client_id.clone().unwrap_or_default(), None)
        } else {
            let choice = rules::choose_client(
                false,
                urls.public_https,
                server.client_id_metadata_document_supported,
                server.registration_endpoint.is_some(),
            )
            .map_err(ConnectError::from)?;
            let client = upstream.register(&server, choice, &urls.metadata_document, &urls.redirect_uri).await?;
            let secret = match &client.client_secret {
                Some(s) => Some(self.sealing_key()?.seal(s.as_bytes(), &client_context(record.id))),
                None => None,
            };
            (client.client_id, secret)
        };
        let doc = serde_json::to_value(&server).map_err(|_| ConnectError::Invalid("metadata".into()))?;
        let saved = self.store().save_oauth_client(record.id, &doc, &client_id, secret.as_ref()).await?;
        setup = saved.and_then(|a| a.oauth).ok_or(ServerError::NotPersonal)?;
        let client = self.open_client(record, &setup)?;
        Ok((server, client, setup))
    }

    /// The stored authorization server and client (a refresh or revocation never discovers).
    async fn stored_client(&self, record: &ServerRecord) -> Result<(AuthServer, ClientCredentials), ServerError> {
        let auth = self.store().user_auth(record.id).await?.ok_or(ServerError::NotPersonal)?;
        let setup = auth.oauth.ok_or(ServerError::NotPersonal)?;
        let server = setup
            .authorization_server
            .as_ref()
            .and_then(|v| serde_json::from_value::<AuthServer>(v.clone()).ok())
            .ok_or_else(|| ConnectError::NotOAuth("not discovered yet".into()))?;
        Ok((server, self.open_client(record, &setup)?))
    }

    fn open_client(&self, record: &ServerRecord, setup: &OAuthSetup) -> Result<ClientCredentials, ServerError> {
        let client_id = setup.client_id.clone().ok_or_else(|| ConnectError::NotOAuth("no client yet".into()))?;
        let client_secret = match &setup.client_secret {
            Some(sealed) => {
                let plain = self.sealing_key()?.open(sealed, &client_context(record.id))?;
                Some(Zeroizing::new(String::from_utf8(plain).map_err(|_| SealError::Open)?))
            }
            None => None,
        };
        Ok(ClientCredentials { client_id, client_secret })
    }
}
