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

use super::{ok_json, optional_text, page_limit, parse_id, required_text, store_error, tool_error};
use crate::service::{TesseraMcp, caller};

const STATUSES: &[&str] = &["active", "paused", "retired"];

fn metadata(value: Option<serde_json::Value>) -> Result<Option<serde_json::Value>, String> {
    match value {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) if serde_json::to_vec(&v).map_or(0, |b| b.len()) <= 16 * 1024 => {
            Ok(Some(v))
        }
        Some(serde_json::Value::Object(_)) => Err("`metadata` must be at most 16 KiB of JSON".to_owned()),
        Some(_) => Err("`metadata` must be a JSON object".to_owned()),
    }
}

/// Arguments of `list_agents`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListAgentsArgs {
    /// At most this many agents (1..=200, default 50), by name.
    pub limit: Option<u32>,
}

/// Arguments of `register_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct RegisterAgentArgs {
    /// Name, unique among your agents (1..=100 characters).
    pub name: String,
    /// Optional description (at most 1000 characters).
    pub description: Option<String>,
    /// Optional JSON object of facts about the agent.
    pub metadata: Option<serde_json::Value>,
}

/// Arguments of `update_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateAgentArgs {
    /// The agent's id (UUID).
    pub id: String,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status: active, paused or retired.
    pub status: Option<String>,
    /// New metadata object (replaces the old one).
    pub metadata: Option<serde_json::Value>,
}

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
        let limit = match page_limit(args.limit) {
            Ok(l) => l,
            Err(e) => return tool_error(e),
        };
        match self.store.list_agents(p.user_id, limit).await {
            Ok(agents) => ok_json(json!({ "agents": agents })),
            Err(e) => store_error(e),
        }
    }

    /// A new agent.
    #[tool(description = "Register an agent under a unique name.")]
    async fn register_agent(
        &self,
        Parameters(args): Parameters<RegisterAgentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let input = (|| {
            let name = required_text("name", &args.name, 100)?;
            let description = optional_text("description", args.description.as_deref(), 1000)?;
            let metadata = metadata(args.metadata)?.unwrap_or_else(|| json!({}));
            Ok::<_, String>((name, description, metadata))
        })();
        let (name, description, metadata) = match input {
            Ok(v) => v,
            Err(e) => return tool_error(e),
        };
        match self.store.register_agent(p.user_id, &name, description.as_deref(), &metadata, Utc::now()).await {
            Ok(agent) => ok_json(json!(agent)),
            Err(e) => store_error(e),
        }
    }

    /// Changes an agent.
    #[tool(description = "Change an agent's name, description, status (active, paused, retired) or metadata.")]
    async fn update_agent(
        &self,
        Parameters(args): Parameters<UpdateAgentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let input = (|| {
            let id = parse_id("id", &args.id)?;
            let name = args.name.as_deref().map(|n| required_text("name", n, 100)).transpose()?;
            let description = optional_text("description", args.description.as_deref(), 1000)?;
            let status = match args.status.as_deref() {
                None => None,
                Some(s) if STATUSES.contains(&s) => Some(s.to_owned()),
                Some(_) => return Err(format!("`status` must be one of {}", STATUSES.join(", "))),
            };
            let metadata = metadata(args.metadata)?;
            if name.is_none() && description.is_none() && status.is_none() && metadata.is_none() {
                return Err("nothing to change: give a name, description, status or metadata".to_owned());
            }
            Ok((id, AgentUpdate { name, description: description.map(Some), status, metadata }))
        })();
        let (id, update) = match input {
            Ok(v) => v,
            Err(e) => return tool_error(e),
        };
        match self.store.update_agent(p.user_id, id, &update, Utc::now()).await {
            Ok(Some(agent)) => ok_json(json!(agent)),
            Ok(None) => tool_error(format!("no agent with id {id}")),
            Err(e) => store_error(e),
        }
    }
}
