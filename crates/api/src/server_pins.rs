//! Pinned tool definitions of gateway servers (issue #26): the new-tool policy, the held
//! tools a server's page shows (pinned and served definition, their diff), and approval.

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::catalog::ToolName;
use tessera_core::pins::{HoldReason, NewToolPolicy, line_diff, pretty};
use tessera_store::ApprovedTool;
use tessera_tokens::ToolView;
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::{Access, authenticate};
use crate::error::{ApiError, ErrorBody};

/// What a server does with a tool first listed after its first listing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NewTools {
    /// Pinned and served at once (the default).
    Allow,
    /// Pinned but held (hidden, calls refused with `tool_changed`) until an admin approves it.
    Hold,
}

impl From<NewToolPolicy> for NewTools {
    fn from(p: NewToolPolicy) -> Self {
        match p {
            NewToolPolicy::Allow => Self::Allow,
            NewToolPolicy::Hold => Self::Hold,
        }
    }
}

impl From<NewTools> for NewToolPolicy {
    fn from(p: NewTools) -> Self {
        match p {
            NewTools::Allow => Self::Allow,
            NewTools::Hold => Self::Hold,
        }
    }
}

/// Why a tool is held.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HeldReason {
    /// The upstream serves another definition than the pinned one.
    Changed,
    /// A new tool on a server whose policy is `hold`.
    New,
}

impl From<HoldReason> for HeldReason {
    fn from(r: HoldReason) -> Self {
        match r {
            HoldReason::Changed => Self::Changed,
            HoldReason::New => Self::New,
        }
    }
}

/// A held tool: hidden from `tools/list` and refused (`tool_changed`) until approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldToolView {
    /// Tool name.
    pub name: String,
    /// Why it is held.
    pub reason: HeldReason,
    /// The pinned definition (name, title, description, inputSchema, outputSchema, annotations).
    #[schema(value_type = Object)]
    pub pinned: serde_json::Value,
    /// The definition the upstream serves now (the pinned one for a new tool).
    #[schema(value_type = Object)]
    pub served: serde_json::Value,
    /// A line diff of the two, pretty-printed with sorted keys (`- ` pinned, `+ ` served).
    pub diff: String,
    /// Since when.
    pub held_at: Option<DateTime<Utc>>,
}

/// What an approval changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedToolView {
    /// Tool name.
    pub name: String,
    /// Why it was held.
    pub reason: HeldReason,
    /// The definition pinned now (listed and callable again).
    #[schema(value_type = Object)]
    pub pinned: serde_json::Value,
    /// A line diff from the definition pinned before to this one.
    pub diff: String,
}

/// The held tools among `tools`, by name.
pub(crate) fn held(tools: &[ToolView]) -> Vec<HeldToolView> {
    tools
        .iter()
        .filter_map(|t| {
            let reason = HoldReason::parse(t.record.hold.as_deref()?).unwrap_or(HoldReason::Changed);
            let pinned = t.record.pinned_definition.clone()?;
            let served = t.record.served_definition.clone().unwrap_or_else(|| pinned.clone());
            let diff = line_diff(&pretty(&pinned), &pretty(&served));
            Some(HeldToolView {
                name: t.record.name.clone(),
                reason: reason.into(),
                pinned,
                served,
                diff,
                held_at: t.record.held_at,
            })
        })
        .collect()
}

/// The answer for one approval.
pub fn approved_view(a: ApprovedTool) -> ApprovedToolView {
    let diff = line_diff(&pretty(&a.was), &pretty(&a.now));
    ApprovedToolView { name: a.name, reason: a.reason.into(), pinned: a.now, diff }
}

/// Approve a held tool: the definition the upstream serves becomes its pin, and it is listed
/// and callable again.
#[utoipa::path(
    post, path = "/api/v2/servers/{name}/tools/{tool}/approve", tag = "servers",
    params(("name" = String, Path, description = "Server name"), ("tool" = String, Path, description = "Tool name")),
    responses(
        (status = 200, description = "Approved: the new pin and its diff from the old", body = ApprovedToolView),
        (status = 400, description = "Invalid tool name", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server or tool", body = ErrorBody),
        (status = 409, description = "The tool is not held (`tool_not_held`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn approve(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ApprovedToolView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    let (name, tool) = path.into_inner();
    let tool = ToolName::parse(&tool).map_err(tessera_tokens::ServerError::from)?;
    let approved = state.servers.approve(&caller.actor(), &name, Some(&tool)).await?;
    let one = approved.into_iter().next().ok_or(tessera_tokens::ServerError::NotHeld)?;
    Ok(web::Json(approved_view(one)))
}
