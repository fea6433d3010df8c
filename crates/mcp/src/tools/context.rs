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

use super::{ok_json, page_limit, required_text, store_error, tool_error};
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
    pub prefix: Option<String>,
    /// At most this many entries (1..=200, default 50), by key.
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
        let key = match required_text("key", &args.key, 200) {
            Ok(k) => k,
            Err(e) => return tool_error(e),
        };
        match self.store.get_context(p.user_id, &key).await {
            Ok(Some(entry)) => ok_json(json!(entry)),
            Ok(None) => tool_error(format!("no context entry with key `{key}`")),
            Err(e) => store_error(e),
        }
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
        let limit = match page_limit(args.limit) {
            Ok(l) => l,
            Err(e) => return tool_error(e),
        };
        match self.store.list_context(p.user_id, args.prefix.as_deref(), limit).await {
            Ok(entries) => ok_json(json!({ "entries": entries })),
            Err(e) => store_error(e),
        }
    }

    /// Sets an entry.
    #[tool(description = "Set (create or replace) a context entry: a JSON value under a key.")]
    async fn set_context(
        &self,
        Parameters(args): Parameters<SetContextArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let key = match required_text("key", &args.key, 200) {
            Ok(k) => k,
            Err(e) => return tool_error(e),
        };
        if serde_json::to_vec(&args.value).map_or(0, |v| v.len()) > MAX_VALUE_BYTES {
            return tool_error("`value` must be at most 64 KiB of JSON");
        }
        match self.store.set_context(p.user_id, &key, &args.value, Utc::now()).await {
            Ok(entry) => ok_json(json!(entry)),
            Err(e) => store_error(e),
        }
    }
}
