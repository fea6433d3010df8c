//! Context tools: `get_context`, `list_context` (`read:context`); `set_context`
//! (`write:context`).

use chrono::Utc;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{ToolFailure, exists, json_without_nul, no_nul, page_limit, required_text, respond};
use crate::service::{TesseraMcp, caller};

/// Largest stored value, serialised.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Arguments naming one entry.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ContextKeyArgs {
    /// The entry's key (1..=200 characters).
    pub key: String,
}

/// Arguments of `list_context`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListContextArgs {
    /// Only keys starting with this prefix.
    #[serde(default)]
    #[schemars(with = "String")]
    pub prefix: Option<String>,
    /// At most this many entries (default 50), by key.
    #[serde(default)]
    #[schemars(with = "u32", extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
}

/// Arguments of `set_context`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct SetContextArgs {
    /// The entry's key (1..=200 characters).
    pub key: String,
    /// Any JSON value (at most 64 KiB serialised).
    pub value: serde_json::Value,
}

/// The scope each tool below needs (besides `execute:mcp` for any call).
pub(crate) const CONTEXT_SCOPES: &[(&str, &str)] =
    &[("get_context", "read:context"), ("list_context", "read:context"), ("set_context", "write:context")];

#[tool_router(router = context_router, vis = "pub(crate)")]
impl TesseraMcp {
    /// One entry.
    #[tool(description = "Get one of your context entries by key.", annotations(read_only_hint = true))]
    async fn get_context(
        &self,
        Parameters(args): Parameters<ContextKeyArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let key = required_text("key", &args.key, 200)?;
                let entry = self.store.get_context(p.user_id, &key).await?;
                let entry = exists(entry, || format!("no context entry with key `{key}`"))?;
                Ok::<_, ToolFailure>(json!(entry))
            }
            .await,
        )
    }

    /// Entries by key.
    #[tool(
        description = "List your context entries, by key, optionally only those with a key prefix.",
        annotations(read_only_hint = true)
    )]
    async fn list_context(
        &self,
        Parameters(args): Parameters<ListContextArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let limit = page_limit(args.limit)?;
                if let Some(prefix) = &args.prefix {
                    no_nul("prefix", prefix)?;
                }
                let entries = self.store.list_context(p.user_id, args.prefix.as_deref(), limit).await?;
                Ok::<_, ToolFailure>(json!({ "entries": entries }))
            }
            .await,
        )
    }

    /// Sets an entry.
    #[tool(description = "Set (create or replace) a context entry: a JSON value under a key.")]
    async fn set_context(
        &self,
        Parameters(args): Parameters<SetContextArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let key = required_text("key", &args.key, 200)?;
                if serde_json::to_vec(&args.value).map_or(0, |v| v.len()) > MAX_VALUE_BYTES {
                    return Err("`value` must be at most 64 KiB of JSON".to_owned().into());
                }
                json_without_nul("value", &args.value)?;
                let entry = self.store.set_context(p.user_id, &key, &args.value, Utc::now()).await?;
                Ok(json!(entry))
            }
            .await,
        )
    }
}
