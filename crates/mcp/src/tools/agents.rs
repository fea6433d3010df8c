//! Agent tools: `list_agents` (`read:agents`); `register_agent`, `update_agent`
//! (`write:agents`).

use chrono::Utc;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_store::AgentUpdate;

use super::{ToolFailure, exists, optional_text, page_limit, parse_id, required_text, respond};
use crate::service::{TesseraMcp, caller};

const STATUSES: &[&str] = &["active", "paused", "retired"];

fn metadata(value: Option<serde_json::Value>) -> Result<Option<serde_json::Value>, String> {
    match value {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) if serde_json::to_vec(&v).map_or(0, |b| b.len()) <= 16 * 1024 => {
            super::json_without_nul("metadata", &v).map(|()| Some(v))
        }
        Some(serde_json::Value::Object(_)) => Err("`metadata` must be at most 16 KiB of JSON".to_owned()),
        Some(_) => Err("`metadata` must be a JSON object".to_owned()),
    }
}

/// Arguments of `list_agents`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListAgentsArgs {
    /// At most this many agents (default 50), by name.
    #[serde(default)]
    #[schemars(with = "u32", extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
}

/// Arguments of `register_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct RegisterAgentArgs {
    /// Name, unique among your agents (1..=100 characters).
    pub name: String,
    /// Optional description (at most 1000 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub description: Option<String>,
    /// Optional JSON object of facts about the agent.
    pub metadata: Option<serde_json::Value>,
}

/// Arguments of `update_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateAgentArgs {
    /// The agent's id (UUID).
    pub id: String,
    /// New name (1..=100 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub name: Option<String>,
    /// New description (at most 1000 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub description: Option<String>,
    /// New status.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["active", "paused", "retired"]))]
    pub status: Option<String>,
    /// New metadata object (replaces the old one).
    pub metadata: Option<serde_json::Value>,
}

/// The scope each tool below needs (besides `execute:mcp` for any call).
pub(crate) const AGENT_SCOPES: &[(&str, &str)] =
    &[("list_agents", "read:agents"), ("register_agent", "write:agents"), ("update_agent", "write:agents")];

#[tool_router(router = agents_router, vis = "pub(crate)")]
impl TesseraMcp {
    /// The caller's agents.
    #[tool(description = "List your registered agents, by name.", annotations(read_only_hint = true))]
    async fn list_agents(
        &self,
        Parameters(args): Parameters<ListAgentsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let limit = page_limit(args.limit)?;
                let agents = self.store.list_agents(p.user_id, limit).await?;
                Ok::<_, ToolFailure>(json!({ "agents": agents }))
            }
            .await,
        )
    }

    /// A new agent.
    #[tool(description = "Register an agent under a unique name.")]
    async fn register_agent(
        &self,
        Parameters(args): Parameters<RegisterAgentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let name = required_text("name", &args.name, 100)?;
                let description = optional_text("description", args.description.as_deref(), 1000)?;
                let metadata = metadata(args.metadata)?.unwrap_or_else(|| json!({}));
                let agent =
                    self.store.register_agent(p.user_id, &name, description.as_deref(), &metadata, Utc::now()).await?;
                Ok::<_, ToolFailure>(json!(agent))
            }
            .await,
        )
    }

    /// Changes an agent.
    #[tool(description = "Change an agent's name, description, status (active, paused, retired) or metadata.")]
    async fn update_agent(
        &self,
        Parameters(args): Parameters<UpdateAgentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let id = parse_id("id", &args.id)?;
                let name = args.name.as_deref().map(|n| required_text("name", n, 100)).transpose()?;
                let description = optional_text("description", args.description.as_deref(), 1000)?;
                let status = match args.status.as_deref() {
                    None => None,
                    Some(s) if STATUSES.contains(&s) => Some(s.to_owned()),
                    Some(_) => return Err(format!("`status` must be one of {}", STATUSES.join(", ")).into()),
                };
                let metadata = metadata(args.metadata)?;
                if name.is_none() && description.is_none() && status.is_none() && metadata.is_none() {
                    return Err("nothing to change: give a name, description, status or metadata".to_owned().into());
                }
                let update = AgentUpdate { name, description: description.map(Some), status, metadata };
                let agent = self.store.update_agent(p.user_id, id, &update, Utc::now()).await?;
                Ok::<_, ToolFailure>(json!(exists(agent, || format!("no agent with id {id}"))?))
            }
            .await,
        )
    }
}
