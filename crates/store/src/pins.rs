//! Pinned tool definitions (issue #26): what a listing does to a server's pins (the rule is
//! `tessera_core::pins::change`), the `server.tool_changed` alert it writes, and an admin's
//! approval, which pins the served definition.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use tessera_core::alerts::AlertKind;
use tessera_core::pins::{HoldReason, NewToolPolicy, Pin, PinChange, PinDigest, PinView, change};
use uuid::Uuid;

use crate::events::notify_server;
use crate::servers::{DiscoveredTool, ServerRecord};
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// A tool a listing just held (an alert was written for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTool {
    /// Tool name.
    pub name: String,
    /// Why.
    pub reason: HoldReason,
}

/// What an approval changed.
#[derive(Debug, Clone)]
pub struct ApprovedTool {
    /// Tool name.
    pub name: String,
    /// Why it was held.
    pub reason: HoldReason,
    /// The definition pinned before.
    pub was: serde_json::Value,
    /// The definition pinned now.
    pub now: serde_json::Value,
}

/// Locks server `id`'s row for this transaction and reads its policy; `None`: it is gone.
pub(crate) async fn lock_server(conn: &mut PgConnection, id: Uuid) -> Result<Option<NewToolPolicy>, StoreError> {
    let policy: Option<String> = sqlx::query_scalar("SELECT new_tools FROM servers WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(policy.map(|p| NewToolPolicy::parse(&p).unwrap_or(NewToolPolicy::Hold)))
}

/// A stored pin: tool name, pinned digest, hold, served digest.
type PinRow = (String, Vec<u8>, Option<String>, Option<Vec<u8>>);

/// A server's pins as stored, read under its row lock.
pub(crate) struct Pins {
    pins: HashMap<String, Pin>,
    /// Whether any pin existed before this listing: the first listing pins without holding.
    any: bool,
    policy: NewToolPolicy,
}

impl Pins {
    pub(crate) async fn read(
        conn: &mut PgConnection,
        server_id: Uuid,
        policy: NewToolPolicy,
    ) -> Result<Self, StoreError> {
        let rows: Vec<PinRow> = sqlx::query_as(
            "SELECT name, pinned_sha256, hold, served_sha256 FROM server_tools
             WHERE server_id = $1 AND pinned_sha256 IS NOT NULL",
        )
        .bind(server_id)
        .fetch_all(&mut *conn)
        .await?;
        let pins: HashMap<String, Pin> = rows
            .into_iter()
            .filter_map(|(name, pinned, hold, served)| {
                let pin = pin_of(&pinned, hold.as_deref(), served.as_deref())?;
                Some((name, pin))
            })
            .collect();
        Ok(Self { any: !pins.is_empty(), pins, policy })
    }

    /// Pins or holds each tool that has a definition; writes one alert per newly held tool.
    pub(crate) async fn apply(
        &mut self,
        conn: &mut PgConnection,
        server: &ServerRecord,
        tools: &[DiscoveredTool],
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldTool>, StoreError> {
        let mut held = Vec::new();
        for tool in tools {
            let Some(served) = &tool.definition else { continue };
            let view = PinView { pin: self.pins.get(&tool.name), any_pins: self.any, policy: self.policy };
            let reason = match change(&view, &served.sha256) {
                PinChange::Keep => continue,
                PinChange::Pin { hold } => {
                    sqlx::query(
                        "UPDATE server_tools SET pinned_sha256 = $3, pinned_definition = $4, hold = $5,
                            served_sha256 = NULL, served_definition = NULL,
                            held_at = CASE WHEN $5 IS NULL THEN NULL ELSE $6 END
                         WHERE server_id = $1 AND name = $2",
                    )
                    .bind(server.id)
                    .bind(&tool.name)
                    .bind(served.sha256.as_slice())
                    .bind(&served.json)
                    .bind(hold.map(HoldReason::as_str))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    let pin = Pin { pinned: served.sha256, hold, served: None };
                    self.pins.insert(tool.name.clone(), pin);
                    match hold {
                        Some(reason) => reason,
                        None => continue,
                    }
                }
                PinChange::Hold => {
                    sqlx::query(
                        "UPDATE server_tools SET hold = 'changed', served_sha256 = $3, served_definition = $4,
                            held_at = $5
                         WHERE server_id = $1 AND name = $2",
                    )
                    .bind(server.id)
                    .bind(&tool.name)
                    .bind(served.sha256.as_slice())
                    .bind(&served.json)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    if let Some(pin) = self.pins.get_mut(&tool.name) {
                        pin.hold = Some(HoldReason::Changed);
                        pin.served = Some(served.sha256);
                    }
                    HoldReason::Changed
                }
            };
            server_alert(conn, server, &tool.name, reason, now).await?;
            held.push(HeldTool { name: tool.name.clone(), reason });
        }
        Ok(held)
    }
}

/// A stored pin, if its columns make one.
fn pin_of(pinned: &[u8], hold: Option<&str>, served: Option<&[u8]>) -> Option<Pin> {
    let pinned: PinDigest = pinned.try_into().ok()?;
    let served = served.and_then(|s| PinDigest::try_from(s).ok());
    // An unknown hold reason is still a hold: the safe reading.
    let hold = hold.map(|h| HoldReason::parse(h).unwrap_or(HoldReason::Changed));
    Some(Pin { pinned, hold, served })
}

/// Writes a `server.tool_changed` event and fans it out to admins' `all_users` webhooks
/// subscribed to it. The caller holds the server's row lock, so a change is written once.
async fn server_alert(
    conn: &mut PgConnection,
    server: &ServerRecord,
    tool: &str,
    reason: HoldReason,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let details = json!({"server": server.name, "tool": tool, "reason": reason.as_str()});
    sqlx::query(
        "WITH e AS (
             INSERT INTO alert_events (at, kind, token_id, user_id, dedupe, details)
             VALUES ($1, $2, NULL, NULL, $3, $4)
             RETURNING id, kind
         )
         INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, updated_at)
         SELECT w.id, e.id, $1, $1 FROM e JOIN webhooks w ON w.deleted_at IS NULL AND e.kind = ANY (w.events)
             AND w.all_users AND EXISTS (SELECT 1 FROM users a WHERE a.id = w.user_id AND a.is_admin)",
    )
    .bind(now)
    .bind(AlertKind::ServerToolChanged.as_str())
    .bind(Uuid::now_v7().to_string())
    .bind(&details)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Approves held tool `tool` of `server`: its served definition (if it changed) becomes
    /// the pin and the hold ends. `None` if the tool is not held.
    pub async fn approve_tool(
        &self,
        actor: &Actor,
        server: &ServerRecord,
        tool: &str,
    ) -> Result<Option<ApprovedTool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(serde_json::Value, Option<serde_json::Value>, String)> = sqlx::query_as(
            "SELECT pinned_definition, served_definition, hold FROM server_tools
             WHERE server_id = $1 AND name = $2 AND hold IS NOT NULL AND pinned_definition IS NOT NULL FOR UPDATE",
        )
        .bind(server.id)
        .bind(tool)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((was, served, hold)) = found else { return Ok(None) };
        sqlx::query(
            "UPDATE server_tools SET pinned_sha256 = COALESCE(served_sha256, pinned_sha256),
                pinned_definition = COALESCE(served_definition, pinned_definition),
                served_sha256 = NULL, served_definition = NULL, hold = NULL, held_at = NULL
             WHERE server_id = $1 AND name = $2",
        )
        .bind(server.id)
        .bind(tool)
        .execute(&mut *tx)
        .await?;
        let details = json!({"server": server.name, "tool": tool, "hold": hold});
        audit::append(&mut tx, actor, AuditAction::ServerToolApprove, None, details).await?;
        notify_server(&mut tx, &server.name).await?;
        tx.commit().await?;
        let reason = HoldReason::parse(&hold).unwrap_or(HoldReason::Changed);
        let now = served.unwrap_or_else(|| was.clone());
        Ok(Some(ApprovedTool { name: tool.to_owned(), reason, was, now }))
    }
}
