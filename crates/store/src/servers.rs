//! The registry of upstream MCP servers: rows, sealed credential headers (the store keeps
//! them as it gets them: it never sees a plaintext value), tools and their class overrides.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use tessera_core::sealed::Sealed;
use uuid::Uuid;

use crate::error::conflict_on_unique;
use crate::events::notify;
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
}

#[derive(sqlx::FromRow)]
struct ServerRow {
    id: Uuid,
    name: String,
    url: String,
    description: Option<String>,
    header_names: Vec<String>,
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
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT_SERVER: &str = "SELECT s.id, s.name, s.url, s.description, s.created_at, s.updated_at,
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
            "INSERT INTO servers (id, name, url, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(server.id)
        .bind(&server.name)
        .bind(&server.url)
        .bind(server.description.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("server"))?;
        put_headers(&mut tx, server.id, &server.headers).await?;
        let details = json!({"server": server.name, "url": server.url,
            "headers": server.headers.iter().map(|h| &h.name).collect::<Vec<_>>()});
        audit::append(&mut tx, actor, AuditAction::ServerCreate, None, details).await?;
        let record = fetch_server(&mut tx, &server.name).await?.ok_or(StoreError::NotFound("server"))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Every registered server, by name.
    pub async fn list_servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        let rows =
            sqlx::query_as::<_, ServerRow>(&format!("{SELECT_SERVER} ORDER BY s.name")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(ServerRecord::from).collect())
    }

    /// The names of the registered servers (the scope catalog's data).
    pub async fn server_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM servers ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// One server by name.
    pub async fn get_server(&self, name: &str) -> Result<Option<ServerRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_server(&mut conn, name).await
    }

    /// A server's sealed headers (for the gateway, which opens them to call upstream).
    pub async fn server_headers(&self, id: Uuid) -> Result<Vec<SealedHeader>, StoreError> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT name, nonce, ciphertext FROM server_headers WHERE server_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(&self.pool)
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
                description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5
             WHERE name = $1 RETURNING id",
        )
        .bind(name)
        .bind(update.url.as_deref())
        .bind(update.description.is_some())
        .bind(update.description.clone().flatten())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { return Ok(None) };
        if let Some(headers) = &update.headers {
            sqlx::query("DELETE FROM server_headers WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            put_headers(&mut tx, id, headers).await?;
        }
        let details = json!({"server": name, "url": update.url, "description_changed": update.description.is_some(),
            "headers": update.headers.as_ref().map(|h| h.iter().map(|h| &h.name).collect::<Vec<_>>())});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        let record = fetch_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(record)
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

    /// A server's tools (discovered or overridden), by name.
    pub async fn server_tools(&self, server_id: Uuid) -> Result<Vec<ToolRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ToolRecord>(
            "SELECT name, description, read_only_hint, access, discovered_at FROM server_tools
             WHERE server_id = $1 ORDER BY name",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
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
        tx.commit().await?;
        Ok(())
    }

    /// Records what a `tools/list` from the upstream showed; overrides are kept.
    pub async fn record_discovered_tools(
        &self,
        server_id: Uuid,
        tools: &[DiscoveredTool],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for tool in tools {
            sqlx::query(
                "INSERT INTO server_tools (server_id, name, description, read_only_hint, discovered_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (server_id, name) DO UPDATE SET description = EXCLUDED.description,
                    read_only_hint = EXCLUDED.read_only_hint, discovered_at = EXCLUDED.discovered_at",
            )
            .bind(server_id)
            .bind(&tool.name)
            .bind(tool.description.as_deref())
            .bind(tool.read_only_hint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
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
