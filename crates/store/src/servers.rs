//! The registry of upstream MCP servers: rows, sealed credential headers (the store keeps
//! them as it gets them: it never sees a plaintext value), tools and their class overrides.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use tessera_core::pins::{NewToolPolicy, PinDigest};
use tessera_core::sealed::Sealed;
use uuid::Uuid;

use crate::error::conflict_on_unique;
use crate::events::{notify, notify_server};
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// One registered server, with the names (never the values) of its headers.
#[derive(Debug, Clone)]
pub struct ServerRecord {
    /// Row id (also the sealing context of its headers).
    pub id: Uuid,
    /// Its name, the `S` of `/mcp/S` and of its scopes.
    pub name: String,
    /// The upstream's Streamable HTTP endpoint.
    pub url: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Names of the headers sent upstream, lower-case, sorted.
    pub header_names: Vec<String>,
    /// Checks tokens itself (issue #15): its resource is `url`, the gateway does not serve it.
    pub direct: bool,
    /// What happens to a tool first listed after the first listing (issue #26).
    pub new_tools: NewToolPolicy,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A header as stored: its lower-case name and its sealed value.
#[derive(Debug, Clone)]
pub struct SealedHeader {
    /// Lower-case header name.
    pub name: String,
    /// Sealed value.
    pub value: Sealed,
}

/// A server to register; `headers` are already sealed for `id`.
#[derive(Debug, Clone)]
pub struct NewServer {
    /// Chosen by the caller, who sealed the headers for it.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Upstream URL.
    pub url: String,
    /// Description.
    pub description: Option<String>,
    /// Sealed headers.
    pub headers: Vec<SealedHeader>,
    /// A direct server, with its first introspection credential.
    pub direct: Option<NewCredential>,
    /// Its policy for new tools.
    pub new_tools: NewToolPolicy,
}

/// An introspection credential of a direct server: the secret only as its SHA-256.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Public client id.
    pub client_id: String,
    /// SHA-256 of the secret.
    pub secret_sha256: [u8; 32],
}

/// A stored credential and the server it authenticates.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    /// SHA-256 of the secret.
    pub secret_sha256: Vec<u8>,
    /// When it stops working (`None`: the current pair).
    pub expires_at: Option<DateTime<Utc>>,
    /// Its server.
    pub server: ServerRecord,
}

/// A change to a server; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ServerUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Replaces every header.
    pub headers: Option<Vec<SealedHeader>>,
    /// New policy for new tools.
    pub new_tools: Option<NewToolPolicy>,
}

/// A tool of a server as last discovered, with the admin's override.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToolRecord {
    /// Tool name.
    pub name: String,
    /// Its description upstream.
    pub description: Option<String>,
    /// The upstream's `readOnlyHint`, if it gave one.
    pub read_only_hint: Option<bool>,
    /// `read`, `write` or `hidden`, if the admin chose one.
    pub access: Option<String>,
    /// When discovery last saw it (`None`: only an override exists).
    pub discovered_at: Option<DateTime<Utc>>,
    /// The pinned definition's digest (`None`: never listed since pins exist).
    pub pinned_sha256: Option<Vec<u8>>,
    /// The pinned definition (canonical JSON).
    pub pinned_definition: Option<serde_json::Value>,
    /// `changed` or `new` while held, else `None`.
    pub hold: Option<String>,
    /// The held served definition, when it differs from the pin.
    pub served_definition: Option<serde_json::Value>,
    /// Its digest.
    pub served_sha256: Option<Vec<u8>>,
    /// Since when it is held.
    pub held_at: Option<DateTime<Utc>>,
}

/// A discovered tool.
#[derive(Debug, Clone)]
pub struct DiscoveredTool {
    /// Tool name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its `readOnlyHint`.
    pub read_only_hint: Option<bool>,
    /// Its served definition, to pin or compare with the pin (`None`: leave the pin alone).
    pub definition: Option<ServedDefinition>,
}

/// A tool's definition as served: canonical JSON and its digest (`tessera_core::pins`).
#[derive(Debug, Clone)]
pub struct ServedDefinition {
    /// SHA-256 of `json`.
    pub sha256: PinDigest,
    /// The pinned fields, keys sorted.
    pub json: serde_json::Value,
}

impl ServedDefinition {
    /// The definition of a tool as an upstream served it.
    pub fn of(tool: &serde_json::Value) -> Self {
        let json = tessera_core::pins::definition(tool);
        Self { sha256: tessera_core::pins::digest(&json), json }
    }
}

#[derive(sqlx::FromRow)]
struct ServerRow {
    id: Uuid,
    name: String,
    url: String,
    description: Option<String>,
    header_names: Vec<String>,
    direct: bool,
    new_tools: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ServerRow> for ServerRecord {
    fn from(r: ServerRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            url: r.url,
            description: r.description,
            header_names: r.header_names,
            direct: r.direct,
            // The column's CHECK allows only the two; anything else would be held, the safe side.
            new_tools: NewToolPolicy::parse(&r.new_tools).unwrap_or(NewToolPolicy::Hold),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT_SERVER: &str =
    "SELECT s.id, s.name, s.url, s.description, s.direct, s.new_tools, s.created_at, s.updated_at,
    ARRAY(SELECT h.name FROM server_headers h WHERE h.server_id = s.id ORDER BY h.name) AS header_names
    FROM servers s";

impl Store {
    /// Registers a server; a taken name is [`StoreError::Conflict`].
    pub async fn insert_server(
        &self,
        actor: &Actor,
        server: &NewServer,
        now: DateTime<Utc>,
    ) -> Result<ServerRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO servers (id, name, url, description, direct, created_at, updated_at, new_tools)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(server.id)
        .bind(&server.name)
        .bind(&server.url)
        .bind(server.description.as_deref())
        .bind(server.direct.is_some())
        .bind(now)
        .bind(server.new_tools.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("server"))?;
        put_headers(&mut tx, server.id, &server.headers).await?;
        if let Some(credential) = &server.direct {
            put_credential(&mut tx, server.id, credential, now).await?;
        }
        let details = json!({"server": server.name, "url": server.url, "direct": server.direct.is_some(),
            "new_tools": server.new_tools.as_str(),
            "headers": server.headers.iter().map(|h| &h.name).collect::<Vec<_>>()});
        audit::append(&mut tx, actor, AuditAction::ServerCreate, None, details).await?;
        notify_server(&mut tx, &server.name).await?;
        let record = fetch_server(&mut tx, &server.name).await?.ok_or(StoreError::NotFound("server"))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Every registered server, by name.
    pub async fn list_servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        let rows =
            sqlx::query_as::<_, ServerRow>(&format!("{SELECT_SERVER} ORDER BY s.name")).fetch_all(self.exec()).await?;
        Ok(rows.into_iter().map(ServerRecord::from).collect())
    }

    /// The names of the registered servers (the scope catalog's data).
    pub async fn server_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM servers ORDER BY name").fetch_all(self.exec()).await?)
    }

    /// One server by name.
    pub async fn get_server(&self, name: &str) -> Result<Option<ServerRecord>, StoreError> {
        let mut conn = self.pool.begin().await?;
        fetch_server(&mut conn, name).await
    }

    /// A server's sealed headers (for the gateway, which opens them to call upstream).
    pub async fn server_headers(&self, id: Uuid) -> Result<Vec<SealedHeader>, StoreError> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT name, nonce, ciphertext FROM server_headers WHERE server_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(self.exec())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, nonce, ciphertext)| SealedHeader { name, value: Sealed { nonce, ciphertext } })
            .collect())
    }

    /// Changes a server; `None` if there is no such server.
    pub async fn update_server(
        &self,
        actor: &Actor,
        name: &str,
        update: &ServerUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<ServerRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE servers SET url = COALESCE($2, url),
                description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5,
                new_tools = COALESCE($6, new_tools)
             WHERE name = $1 RETURNING id",
        )
        .bind(name)
        .bind(update.url.as_deref())
        .bind(update.description.is_some())
        .bind(update.description.clone().flatten())
        .bind(now)
        .bind(update.new_tools.map(NewToolPolicy::as_str))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { return Ok(None) };
        if let Some(headers) = &update.headers {
            sqlx::query("DELETE FROM server_headers WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            put_headers(&mut tx, id, headers).await?;
        }
        let details = json!({"server": name, "url": update.url, "description_changed": update.description.is_some(),
            "new_tools": update.new_tools.map(NewToolPolicy::as_str),
            "headers": update.headers.as_ref().map(|h| h.iter().map(|h| &h.name).collect::<Vec<_>>())});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        notify_server(&mut tx, name).await?;
        let record = fetch_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// How many tokens in force (not expired, not revoked) hold one of server `name`'s scopes.
    pub async fn count_active_server_tokens(&self, name: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let exact = vec![format!("read:{name}"), format!("write:{name}")];
        let call_prefix = format!("call:{name}/");
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tokens t LEFT JOIN revocations r ON r.token_id = t.id
             WHERE t.expires_at > $3 AND (r.effective_at IS NULL OR r.effective_at > $3)
               AND (t.scopes && $1 OR EXISTS (SELECT 1 FROM unnest(t.scopes) s WHERE starts_with(s, $2)))",
        )
        .bind(&exact)
        .bind(&call_prefix)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Removes a server, its headers and tools, and takes its scopes out of every token's row
    /// (announcing each change), so a later server of the same name inherits no grant.
    /// Returns whether it existed.
    pub async fn delete_server(&self, actor: &Actor, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM servers WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let exact = vec![format!("read:{name}"), format!("write:{name}")];
        let call_prefix = format!("call:{name}/");
        let narrowed: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE tokens SET scopes = ARRAY(SELECT s FROM unnest(scopes) s
                 WHERE NOT (s = ANY($1) OR starts_with(s, $2)))
             WHERE scopes && $1 OR EXISTS (SELECT 1 FROM unnest(scopes) s WHERE starts_with(s, $2))
             RETURNING id",
        )
        .bind(&exact)
        .bind(&call_prefix)
        .fetch_all(&mut *tx)
        .await?;
        for id in &narrowed {
            notify(&mut tx, *id).await?;
        }
        notify_server(&mut tx, name).await?;
        audit::append(
            &mut tx,
            actor,
            AuditAction::ServerRemove,
            None,
            json!({"server": name, "narrowed_tokens": narrowed}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The tools a `call:` scope may name (discovered or overridden, not hidden) of every
    /// server whose tool list is known (an upstream listing was seen), as (server name, tool
    /// name); such a server whose tools are all hidden appears once with `None`.
    pub async fn callable_tools(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        Ok(sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT s.name, CASE WHEN t.access IS DISTINCT FROM 'hidden' THEN t.name END
             FROM server_tools t JOIN servers s ON s.id = t.server_id
             WHERE EXISTS (SELECT 1 FROM server_tools d WHERE d.server_id = t.server_id AND d.discovered_at IS NOT NULL)
             ORDER BY 1, 2",
        )
        .fetch_all(self.exec())
        .await?)
    }

    /// A server's tools (discovered or overridden), by name.
    pub async fn server_tools(&self, server_id: Uuid) -> Result<Vec<ToolRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ToolRecord>(
            "SELECT name, description, read_only_hint, access, discovered_at, pinned_sha256, pinned_definition,
                    hold, served_definition, served_sha256, held_at
             FROM server_tools WHERE server_id = $1 ORDER BY name",
        )
        .bind(server_id)
        .fetch_all(self.exec())
        .await?)
    }

    /// Sets (or with `None` clears) the admin's class of one tool, which need not have been
    /// discovered yet.
    pub async fn set_tool_access(
        &self,
        actor: &Actor,
        server: &ServerRecord,
        tool: &str,
        access: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO server_tools (server_id, name, access) VALUES ($1, $2, $3)
             ON CONFLICT (server_id, name) DO UPDATE SET access = EXCLUDED.access",
        )
        .bind(server.id)
        .bind(tool)
        .bind(access)
        .execute(&mut *tx)
        .await?;
        let details = json!({"server": server.name, "tool": tool, "access": access});
        audit::append(&mut tx, actor, AuditAction::ServerToolAccess, None, details).await?;
        notify_server(&mut tx, &server.name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A direct server's credential by client id, if it exists and has not expired at `now`.
    pub async fn server_credential(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let mut conn = self.pool.begin().await?;
        let found: Option<(String, Vec<u8>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT s.name, c.secret_sha256, c.expires_at FROM server_credentials c JOIN servers s ON s.id = c.server_id
             WHERE c.client_id = $1 AND s.direct AND (c.expires_at IS NULL OR c.expires_at > $2)",
        )
        .bind(client_id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((name, secret_sha256, expires_at)) = found else { return Ok(None) };
        let server = fetch_server(&mut conn, &name).await?.ok_or(StoreError::NotFound("server"))?;
        Ok(Some(CredentialRecord { secret_sha256, expires_at, server }))
    }

    /// Replaces a direct server's current credential by `credential`; the old ones stop
    /// working at `old_until`. `false` if there is no such direct server.
    pub async fn rotate_server_credential(
        &self,
        actor: &Actor,
        name: &str,
        credential: &NewCredential,
        old_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM servers WHERE name = $1 AND direct FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else { return Ok(false) };
        sqlx::query(
            "UPDATE server_credentials SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE server_id = $1",
        )
        .bind(id)
        .bind(old_until)
        .execute(&mut *tx)
        .await?;
        // Pairs past their grace are of no use to anyone: drop them.
        sqlx::query("DELETE FROM server_credentials WHERE server_id = $1 AND expires_at <= $2")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        put_credential(&mut tx, id, credential, now).await?;
        let details = json!({"server": name, "credentials_rotated": true, "old_valid_until": old_until});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records what a `tools/list` from the upstream showed; overrides are kept. Tools with
    /// a definition are pinned or held (`crate::pins`); returns the tools newly held, for
    /// which a `server.tool_changed` alert was written in the same transaction.
    pub async fn record_discovered_tools(
        &self,
        server: &ServerRecord,
        tools: &[DiscoveredTool],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::HeldTool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One listing at a time per server (any replica): a change is held, and alerted, once.
        let Some(policy) = crate::pins::lock_server(&mut tx, server.id).await? else { return Ok(Vec::new()) };
        let mut pins = crate::pins::Pins::read(&mut tx, server.id, policy).await?;
        for tool in tools {
            sqlx::query(
                "INSERT INTO server_tools (server_id, name, description, read_only_hint, discovered_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (server_id, name) DO UPDATE SET description = EXCLUDED.description,
                    read_only_hint = EXCLUDED.read_only_hint, discovered_at = EXCLUDED.discovered_at",
            )
            .bind(server.id)
            .bind(&tool.name)
            .bind(tool.description.as_deref())
            .bind(tool.read_only_hint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let held = pins.apply(&mut tx, server, tools, now).await?;
        notify_server(&mut tx, &server.name).await?;
        tx.commit().await?;
        Ok(held)
    }
}

async fn put_credential(
    conn: &mut PgConnection,
    server_id: Uuid,
    credential: &NewCredential,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO server_credentials (client_id, server_id, secret_sha256, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&credential.client_id)
    .bind(server_id)
    .bind(credential.secret_sha256.as_slice())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique("credential"))?;
    Ok(())
}

async fn put_headers(conn: &mut PgConnection, server_id: Uuid, headers: &[SealedHeader]) -> Result<(), StoreError> {
    for h in headers {
        sqlx::query("INSERT INTO server_headers (server_id, name, nonce, ciphertext) VALUES ($1, $2, $3, $4)")
            .bind(server_id)
            .bind(&h.name)
            .bind(&h.value.nonce)
            .bind(&h.value.ciphertext)
            .execute(&mut *conn)
            .await
            .map_err(conflict_on_unique("header"))?;
    }
    Ok(())
}

async fn fetch_server(conn: &mut PgConnection, name: &str) -> Result<Option<ServerRecord>, StoreError> {
    let row = sqlx::query_as::<_, ServerRow>(&format!("{SELECT_SERVER} WHERE s.name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(ServerRecord::from))
}
