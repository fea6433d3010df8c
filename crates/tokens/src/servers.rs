//! The upstream server registry: register, change, remove servers, override tool classes,
//! and the scope catalog they contribute. Header values are sealed here (the store only sees
//! ciphertext) and opened only for the gateway's upstream calls.

use chrono::{DateTime, Utc};
use tessera_core::catalog::{Catalog, NameError, ServerName, ToolName};
use tessera_core::client_secret::{ClientCredential, hash_secret, secret_matches};
use tessera_core::pins::NewToolPolicy;
use tessera_core::sealed::{SealError, SealKey};
use tessera_core::upstream::{
    DirectServerViolation, InvalidUpstream, ToolAccess, UpstreamHeader, UpstreamUrl, check_direct_change, check_headers,
};
use tessera_core::values::{Description, InvalidValue};
use tessera_store::{
    Actor, ApprovedTool, DiscoveredTool, HeldTool, NewCredential, NewServer, SealedHeader, ServerRecord, ServerUpdate,
    Store, StoreError, ToolRecord,
};
use uuid::Uuid;

use crate::server_cache::{GatewayServer, ServerCache, ToolPins};

/// Why a registry operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No server of that name.
    #[error("server not found")]
    NotFound,
    /// The name is taken.
    #[error("a server with that name already exists")]
    Conflict,
    /// A server or tool name was refused.
    #[error(transparent)]
    Name(#[from] NameError),
    /// URL, header or access was refused.
    #[error(transparent)]
    Upstream(#[from] InvalidUpstream),
    /// A direct server's rule was broken (headers, or a URL change not accepted).
    #[error(transparent)]
    Direct(#[from] DirectServerViolation),
    /// The description was refused.
    #[error(transparent)]
    Value(#[from] InvalidValue),
    /// A stored header could not be opened with this key.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// No sealing key could be had (TESSERA_SECRET_KEY unset and the key file not usable).
    #[error("the secret key for upstream credentials is unavailable: {0}")]
    KeyUnavailable(String),
    /// The server has no tool of that name.
    #[error("the server has no such tool")]
    ToolNotFound,
    /// Approving a tool that is not held.
    #[error("the tool is not held: its served definition is the pinned one")]
    NotHeld,
    /// Client authentication of a direct server failed (unknown id, wrong or expired secret).
    #[error("client authentication failed")]
    BadCredentials,
    /// The server's users do not bring their own credential (no `--user-auth`).
    #[error("this server's users do not connect their own credential")]
    NotPersonal,
    /// The upstream's OAuth authorization server failed or refused (connected accounts).
    #[error(transparent)]
    Connect(#[from] tessera_upstream_oauth::ConnectError),
    /// A stdio server's command, environment or timeout was refused.
    #[error(transparent)]
    Stdio(#[from] tessera_core::stdio::InvalidCommand),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

/// A server to register; every field already parsed.
#[derive(Debug, Clone)]
pub struct ServerInput {
    /// Its name.
    pub name: ServerName,
    /// Its endpoint.
    pub url: UpstreamUrl,
    /// Its description.
    pub description: Option<Description>,
    /// Headers sent upstream.
    pub headers: Vec<UpstreamHeader>,
    /// What happens to tools first listed after the first listing.
    pub new_tools: NewToolPolicy,
}

/// A change to a server; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ServerPatch {
    /// New endpoint.
    pub url: Option<UpstreamUrl>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<Description>>,
    /// Replaces every header.
    pub headers: Option<Vec<UpstreamHeader>>,
    /// New policy for new tools.
    pub new_tools: Option<NewToolPolicy>,
    /// The caller accepts that a direct server's new URL leaves tokens naming the old one
    /// useless for it.
    pub invalidate_tokens: bool,
}

/// A changed server, and how many active tokens a direct server's move left naming its old
/// URL (`None`: it did not move).
#[derive(Debug, Clone)]
pub struct PatchedServer {
    /// The server after the change.
    pub record: ServerRecord,
    /// Active tokens whose `aud` names the old URL.
    pub tokens_invalidated: Option<u64>,
}

/// A tool and the class in force.
#[derive(Debug, Clone)]
pub struct ToolView {
    /// The stored row.
    pub record: ToolRecord,
    /// Override, else hint.
    pub access: ToolAccess,
}

/// Where the sealing key comes from, asked the first time a header is sealed or opened, so
/// a deployment that never registers a credential never needs a key (or a writable data
/// directory for its key file).
pub type KeyLoader = dyn Fn() -> Result<SealKey, String> + Send + Sync;

/// The sealing key, loaded once on first use.
struct LazyKey {
    key: std::sync::OnceLock<SealKey>,
    load: Box<KeyLoader>,
}

impl std::fmt::Debug for LazyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyKey([redacted])")
    }
}

/// The registry, with the key that seals its credentials.
#[derive(Debug, Clone)]
pub struct ServerService {
    store: Store,
    key: std::sync::Arc<LazyKey>,
    cache: std::sync::Arc<ServerCache>,
    tool_source: Option<std::sync::Arc<dyn ToolSource>>,
}

/// A future that lists an upstream's tools.
pub type ToolListing<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<DiscoveredTool>, String>> + Send + 'a>>;

/// Something that can ask an upstream for its tools (the gateway's MCP client): the registry
/// calls it when a server is registered, so its tools are known before any client lists them.
pub trait ToolSource: Send + Sync + std::fmt::Debug {
    /// Every tool `url` lists when called with `headers`; the error is a sentence for the admin.
    fn list_tools<'a>(&'a self, url: &'a str, headers: &'a [UpstreamHeader]) -> ToolListing<'a>;

    /// Every tool stdio server `name` lists when started with `command` (once, then stopped).
    fn list_stdio_tools<'a>(&'a self, name: &'a str, command: &'a crate::StdioCommand) -> ToolListing<'a> {
        let _ = (name, command);
        Box::pin(async { Err("stdio servers cannot be started here".to_owned()) })
    }
}

/// What asking a new server for its tools gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// This many tools were listed and recorded (and pinned), `held` of them held.
    Found {
        /// Tools listed.
        tools: usize,
        /// Of which held until approved (changed since their pin, or new under `hold`).
        held: usize,
    },
    /// The upstream could not be asked (it stays registered; its tools are learnt on first use).
    Failed(String),
    /// No tool source is wired in (or the server checks tokens itself).
    Skipped,
}

impl ServerService {
    /// A registry on `store`, sealing with `key`.
    pub fn new(store: Store, key: SealKey) -> Self {
        let lazy = LazyKey { key: std::sync::OnceLock::from(key), load: Box::new(|| Err("no key".to_owned())) };
        Self { store, key: std::sync::Arc::new(lazy), cache: std::sync::Arc::default(), tool_source: None }
    }

    /// The same registry, asking `source` for a server's tools when it is registered.
    #[must_use]
    pub fn with_tool_source(mut self, source: std::sync::Arc<dyn ToolSource>) -> Self {
        self.tool_source = Some(source);
        self
    }

    /// A registry on `store` whose key `load` gives the first time one is needed.
    pub fn with_key_loader(store: Store, load: Box<KeyLoader>) -> Self {
        let key = std::sync::Arc::new(LazyKey { key: std::sync::OnceLock::new(), load });
        Self { store, key, cache: std::sync::Arc::default(), tool_source: None }
    }

    /// The process's sealing key (loaded on first use), for other secrets sealed at rest or
    /// in transit, such as a single sign-on in progress.
    pub fn seal_key(&self) -> Result<SealKey, ServerError> {
        self.key()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn sealing_key(&self) -> Result<SealKey, ServerError> {
        self.key()
    }

    /// Drops this process's cached entry of `name` (others drop theirs on the change feed).
    pub(crate) fn forget(&self, name: &str) {
        self.cache.evict(name);
    }

    fn key(&self) -> Result<SealKey, ServerError> {
        if let Some(key) = self.key.key.get() {
            return Ok(key.clone());
        }
        let key = (self.key.load)().map_err(ServerError::KeyUnavailable)?;
        // Two first uses at once load the same key (env or the one file); either is kept.
        Ok(self.key.key.get_or_init(|| key).clone())
    }

    /// The scope catalog: the built-in scopes and every registered server's.
    pub async fn catalog(&self) -> Result<Catalog, ServerError> {
        Ok(catalog(&self.store).await?)
    }

    /// Registers a server.
    pub async fn add(
        &self,
        actor: &Actor,
        input: ServerInput,
        now: DateTime<Utc>,
    ) -> Result<ServerRecord, ServerError> {
        check_headers(&input.headers)?;
        let id = Uuid::now_v7();
        let server = NewServer {
            id,
            name: input.name.as_str().to_owned(),
            url: input.url.as_str().to_owned(),
            description: input.description.map(|d| d.as_str().to_owned()),
            headers: self.seal_all(id, &input.headers)?,
            direct: None,
            new_tools: input.new_tools,
        };
        let record = self.store.insert_server(actor, &server, now).await?;
        self.cache.evict(&record.name);
        Ok(record)
    }

    /// Registers a direct server (one that checks tokens itself, issue #15); the answer holds
    /// its introspection credential, the only time its secret is seen.
    pub async fn add_direct(
        &self,
        actor: &Actor,
        input: ServerInput,
        now: DateTime<Utc>,
    ) -> Result<(ServerRecord, ClientCredential), ServerError> {
        if !input.headers.is_empty() {
            return Err(DirectServerViolation::Headers.into());
        }
        let credential = ClientCredential::generate();
        let server = NewServer {
            id: Uuid::now_v7(),
            name: input.name.as_str().to_owned(),
            url: input.url.as_str().to_owned(),
            description: input.description.map(|d| d.as_str().to_owned()),
            headers: Vec::new(),
            direct: Some(stored(&credential)),
            new_tools: input.new_tools,
        };
        let record = self.store.insert_server(actor, &server, now).await?;
        self.cache.evict(&record.name);
        Ok((record, credential))
    }

    /// Issues a new credential for direct server `name`; the old ones keep working for
    /// `grace` (zero: they stop now).
    pub async fn rotate_credentials(
        &self,
        actor: &Actor,
        name: &str,
        grace: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<ClientCredential, ServerError> {
        let credential = ClientCredential::generate();
        let until = now.checked_add_signed(grace).unwrap_or(now);
        if self.store.rotate_server_credential(actor, name, &stored(&credential), until, now).await? {
            Ok(credential)
        } else {
            Err(ServerError::NotFound)
        }
    }

    /// The direct server whose credential this is, if the secret is right and not expired.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<ServerRecord, ServerError> {
        let found = self.store.server_credential(client_id, now).await?;
        match found {
            Some(c) if secret_matches(secret, &c.secret_sha256) => Ok(c.server),
            _ => Err(ServerError::BadCredentials),
        }
    }

    /// The token that opened gateway session `session` on `server`, as recorded by whichever
    /// replica saw its `initialize` (the id is stored only as its SHA-256).
    pub async fn session_owner(&self, server: &ServerRecord, session: &str) -> Result<Option<Uuid>, ServerError> {
        let hash = tessera_core::client_secret::hash_secret(session);
        Ok(self.store.gateway_session_owner(server.id, &hash).await?)
    }

    /// Records that `token` opened gateway session `session` on `server`.
    pub async fn bind_session(&self, server: &ServerRecord, session: &str, token: Uuid) -> Result<(), ServerError> {
        let hash = tessera_core::client_secret::hash_secret(session);
        Ok(self.store.bind_gateway_session(server.id, &hash, token).await?)
    }

    /// Forgets gateway session `session` on `server` (after its DELETE).
    pub async fn end_session(&self, server: &ServerRecord, session: &str) -> Result<(), ServerError> {
        let hash = tessera_core::client_secret::hash_secret(session);
        Ok(self.store.end_gateway_session(server.id, &hash).await?)
    }

    /// Every server.
    pub async fn list(&self) -> Result<Vec<ServerRecord>, ServerError> {
        Ok(self.store.list_servers().await?)
    }

    /// One server.
    pub async fn get(&self, name: &str) -> Result<ServerRecord, ServerError> {
        self.store.get_server(name).await?.ok_or(ServerError::NotFound)
    }

    /// Changes a server.
    pub async fn patch(
        &self,
        actor: &Actor,
        name: &str,
        patch: ServerPatch,
        now: DateTime<Utc>,
    ) -> Result<PatchedServer, ServerError> {
        let current = self.get(name).await?;
        if crate::is_stdio(&current) && (patch.url.is_some() || patch.headers.is_some()) {
            return Err(tessera_core::stdio::InvalidCommand::NotHttp.into());
        }
        let moves = current.direct && patch.url.as_ref().is_some_and(|u| u.as_str() != current.url);
        let tokens_invalidated =
            if moves { Some(self.store.count_active_server_tokens(name, now).await?) } else { None };
        if current.direct {
            check_direct_change(
                &current.url,
                patch.url.as_ref(),
                patch.headers.as_deref(),
                patch.invalidate_tokens,
                tokens_invalidated.unwrap_or(0),
            )?;
        }
        let headers = match &patch.headers {
            Some(headers) => {
                check_headers(headers)?;
                Some(self.seal_all(current.id, headers)?)
            }
            None => None,
        };
        let update = ServerUpdate {
            url: patch.url.map(|u| u.as_str().to_owned()),
            description: patch.description.map(|d| d.map(|d| d.as_str().to_owned())),
            headers,
            new_tools: patch.new_tools,
        };
        let record = self.store.update_server(actor, name, &update, now).await?.ok_or(ServerError::NotFound)?;
        self.cache.evict(name);
        Ok(PatchedServer { record, tokens_invalidated })
    }

    /// Removes a server; tokens lose its scopes at once.
    pub async fn remove(&self, actor: &Actor, name: &str) -> Result<(), ServerError> {
        // Its people's upstream grants are revoked: nobody reaches them through Tessera again.
        if let Ok(record) = self.get(name).await {
            self.revoke_connections_to(&record).await;
        }
        let deleted = self.store.delete_server(actor, name).await?;
        self.cache.evict(name);
        if deleted { Ok(()) } else { Err(ServerError::NotFound) }
    }

    /// A server's tools with their class in force.
    pub async fn tools(&self, server: &ServerRecord) -> Result<Vec<ToolView>, ServerError> {
        let rows = self.store.server_tools(server.id).await?;
        Ok(rows
            .into_iter()
            .map(|record| {
                let overridden = record.access.as_deref().and_then(|a| ToolAccess::parse(a).ok());
                let access = ToolAccess::effective(overridden, record.read_only_hint);
                ToolView { record, access }
            })
            .collect())
    }

    /// Overrides (or with `None` clears the override of) one tool's class.
    pub async fn set_tool_access(
        &self,
        actor: &Actor,
        name: &str,
        tool: &ToolName,
        access: Option<ToolAccess>,
    ) -> Result<(), ServerError> {
        let server = self.get(name).await?;
        self.store.set_tool_access(actor, &server, tool.as_str(), access.map(ToolAccess::as_str)).await?;
        self.cache.evict(name);
        Ok(())
    }

    /// Records the tools an upstream's `tools/list` showed (for the admin's view and
    /// classes); overrides are kept. Tools with a definition are pinned on first sight and
    /// held when it changes (a `server.tool_changed` alert each); returns those newly held.
    pub async fn record_discovered(
        &self,
        server: &ServerRecord,
        tools: &[DiscoveredTool],
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldTool>, ServerError> {
        let held = self.store.record_discovered_tools(server, tools, now).await?;
        self.cache.evict(&server.name);
        for h in &held {
            tracing::warn!(server = %server.name, tool = %h.name, reason = h.reason.as_str(), "tool held until an admin approves it");
        }
        Ok(held)
    }

    /// Approves held tool `tool` of server `name` (every held tool with `None`): the served
    /// definition becomes the pin, and the tool is listed and callable again.
    pub async fn approve(
        &self,
        actor: &Actor,
        name: &str,
        tool: Option<&ToolName>,
    ) -> Result<Vec<ApprovedTool>, ServerError> {
        let server = self.get(name).await?;
        let tools = self.tools(&server).await?;
        let wanted: Vec<&str> = match tool {
            Some(tool) => {
                let found = tools.iter().find(|t| t.record.name == tool.as_str()).ok_or(ServerError::ToolNotFound)?;
                if found.record.hold.is_none() {
                    return Err(ServerError::NotHeld);
                }
                vec![tool.as_str()]
            }
            None => tools.iter().filter(|t| t.record.hold.is_some()).map(|t| t.record.name.as_str()).collect(),
        };
        let mut approved = Vec::new();
        for tool in wanted {
            // Approved meanwhile by someone else: nothing left to do for it.
            if let Some(done) = self.store.approve_tool(actor, &server, tool).await? {
                approved.push(done);
            }
        }
        self.cache.evict(name);
        if tool.is_some() && approved.is_empty() {
            return Err(ServerError::NotHeld);
        }
        Ok(approved)
    }

    /// Asks a (gateway) server for its tools with its own headers and records them. An
    /// unreachable upstream is not an error of the registry: the answer says why, and the
    /// gateway learns the tools on first use as before.
    pub async fn discover(&self, server: &ServerRecord, now: DateTime<Utc>) -> Result<Discovery, ServerError> {
        let Some(source) = self.tool_source.as_ref().filter(|_| !server.direct) else {
            return Ok(Discovery::Skipped);
        };
        let listed = if crate::is_stdio(server) {
            let Some(command) = self.stdio_command(server).await? else {
                return Ok(Discovery::Failed("the server has no command".to_owned()));
            };
            source.list_stdio_tools(&server.name, &command).await
        } else {
            let headers = self.open_headers(server).await?;
            source.list_tools(&server.url, &headers).await
        };
        match listed {
            Ok(tools) => {
                let held = self.record_discovered(server, &tools, now).await?;
                Ok(Discovery::Found { tools: tools.len(), held: held.len() })
            }
            Err(why) => Ok(Discovery::Failed(why)),
        }
    }

    /// What the gateway needs of server `name`, from this process's cache when it holds it
    /// (see the `server_cache` module), else read, opened and cached.
    pub async fn gateway_server(&self, name: &str) -> Result<std::sync::Arc<GatewayServer>, ServerError> {
        if let Some(found) = self.cache.get(name) {
            return Ok(found);
        }
        let epoch = self.cache.epoch();
        let record = self.get(name).await?;
        let tools = self.tools(&record).await?;
        let headers = match self.open_headers(&record).await {
            Ok(headers) => Some(headers),
            Err(e @ ServerError::Store(_)) => return Err(e),
            Err(e) => {
                tracing::error!(server = %record.name, error = %e, "cannot open the server's headers");
                None
            }
        };
        // Unopenable personal credentials fail the request: forwarding without them would
        // send a person's call upstream with no credential of theirs.
        let personal = self.open_personal(&record).await?;
        let cacheable = headers.is_some();
        let pins = ToolPins::of(&record, &tools);
        let entry = std::sync::Arc::new(GatewayServer { record, tools, headers, personal, pins });
        // Unopenable headers are not kept: a key put right takes effect on the next request.
        if cacheable {
            self.cache.put(epoch, &entry);
        }
        Ok(entry)
    }

    /// Applies a change-feed event (relayed by the Validator's listener) to the cache.
    pub fn apply_feed(&self, event: &tessera_store::TokenEvent) {
        self.cache.apply(event);
    }

    /// A server's headers, opened, for a call to it.
    pub async fn open_headers(&self, server: &ServerRecord) -> Result<Vec<UpstreamHeader>, ServerError> {
        let sealed = self.store.server_headers(server.id).await?;
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key()?;
        sealed
            .into_iter()
            .map(|h| {
                let value = key.open(&h.value, &context(server.id, &h.name))?;
                // Wiped once copied into the header (which wipes itself in turn).
                let value = zeroize::Zeroizing::new(String::from_utf8(value).map_err(|_| SealError::Open)?);
                Ok(UpstreamHeader::new(&h.name, &value)?)
            })
            .collect()
    }

    fn seal_all(&self, id: Uuid, headers: &[UpstreamHeader]) -> Result<Vec<SealedHeader>, ServerError> {
        if headers.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key()?;
        Ok(headers
            .iter()
            .map(|h| SealedHeader {
                name: h.name().to_owned(),
                value: key.seal(h.expose_value().as_bytes(), &context(id, h.name())),
            })
            .collect())
    }
}

/// The scope catalog of `store`'s registry (needs no key: only names).
pub async fn catalog(store: &Store) -> Result<Catalog, StoreError> {
    let names = store.server_names().await?;
    let mut catalog = Catalog::with_servers(names.iter().filter_map(|n| ServerName::parse(n).ok()));
    for (server, tool) in store.callable_tools().await? {
        if let Ok(server) = ServerName::parse(&server) {
            catalog = catalog.with_tools(server, tool);
        }
    }
    Ok(catalog)
}

fn stored(credential: &ClientCredential) -> NewCredential {
    NewCredential { client_id: credential.client_id.clone(), secret_sha256: hash_secret(&credential.secret) }
}

/// What a header value is sealed for: its server and its name, so it opens nowhere else.
fn context(server_id: Uuid, name: &str) -> Vec<u8> {
    format!("tessera-server-header:{server_id}/{name}").into_bytes()
}
