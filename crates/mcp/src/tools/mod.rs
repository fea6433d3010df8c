//! The tools. Each `impl` block is one router (merged once in [`TesseraMcp::new`]); each
//! router's tools declare their scopes in the table just above it (`*_SCOPES`), which
//! [`crate::service::tool_scope`] reads; the guard checks it before a call reaches rmcp.
//!
//! Results are structured JSON; bad input and missing rows are tool errors (`isError`)
//! with a sentence the model can act on, never protocol errors.

mod agents;
mod context;
mod tasks;

pub(crate) use agents::AGENT_SCOPES;
pub(crate) use context::CONTEXT_SCOPES;
pub(crate) use tasks::TASK_SCOPES;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::scope::ACCESS;
use tessera_store::StoreError;

use crate::service::{TesseraMcp, caller};

/// Why a tool could not do what it was asked.
#[derive(Debug)]
pub(crate) enum ToolFailure {
    /// Something the caller can fix: bad input, an unknown id. The text is shown as is.
    Input(String),
    /// The database failed; the detail goes to the log, not to the client.
    Store(StoreError),
}

impl From<String> for ToolFailure {
    fn from(message: String) -> Self {
        Self::Input(message)
    }
}

impl From<StoreError> for ToolFailure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A row that must exist, or an input failure saying which one was not found.
pub(crate) fn exists<T>(row: Option<T>, missing: impl FnOnce() -> String) -> Result<T, ToolFailure> {
    row.ok_or_else(|| ToolFailure::Input(missing()))
}

/// The one place a tool's outcome becomes an MCP result: structured JSON on success (also
/// sent as text for old clients), a tool error (`isError`) the model can act on otherwise.
pub(crate) fn respond(outcome: Result<serde_json::Value, ToolFailure>) -> Result<CallToolResult, ErrorData> {
    let message = match outcome {
        Ok(value) => return Ok(CallToolResult::structured(value)),
        Err(ToolFailure::Input(message)) => message,
        Err(ToolFailure::Store(StoreError::Conflict(what))) => format!("{what} already exists"),
        Err(ToolFailure::Store(StoreError::NotFound(what))) => format!("{what} not found"),
        Err(ToolFailure::Store(e)) if e.is_unavailable() => {
            "the database is unavailable right now; retry shortly".to_owned()
        }
        Err(ToolFailure::Store(e)) => {
            tracing::error!(error = %e, "tool failed on the database");
            "the tool failed on the server; the error was logged".to_owned()
        }
    };
    Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
}

/// PostgreSQL's `text` cannot hold U+0000: refuse it as bad input naming the field, rather
/// than letting the insert fail as a server error.
pub(crate) fn no_nul(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("`{field}` must not contain NUL characters"));
    }
    Ok(())
}

/// The same for a JSON value stored as `jsonb` (which refuses `\u0000` in any string or key).
pub(crate) fn json_without_nul(field: &str, value: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    // Iterative: a deeply nested value must not exhaust the stack.
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        match v {
            Value::String(s) => no_nul(field, s)?,
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => {
                for (key, item) in map {
                    no_nul(field, key)?;
                    pending.push(item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

/// Text that must be 1..=max characters after trimming.
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> Result<String, String> {
    no_nul(field, value)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("`{field}` must not be empty"));
    }
    if value.chars().count() > max {
        return Err(format!("`{field}` must be at most {max} characters"));
    }
    Ok(value.to_owned())
}

/// Optional text of at most `max` characters.
pub(crate) fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(format!("`{field}` must be at most {max} characters")),
        Some(v) => no_nul(field, v).map(|()| Some(v.to_owned())),
    }
}

/// A UUID argument.
pub(crate) fn parse_id(field: &str, value: &str) -> Result<uuid::Uuid, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{field}` must be a UUID, got `{}`", value.chars().take(64).collect::<String>()))
}

/// Page size: 1..=200, default 50.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<i64, String> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(i64::from(n)),
        Some(n) => Err(format!("`limit` must be between 1 and 200, got {n}")),
    }
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// The scope each tool below needs (besides `execute:mcp` for any call).
pub(crate) const BASIC_SCOPES: &[(&str, &str)] = &[("whoami", ACCESS), ("echo", ACCESS)];

#[tool_router(router = basic_router, vis = "pub(crate)")]
impl TesseraMcp {
    /// Who the token acts for and what it may do.
    #[tool(
        description = "Describe the calling token: its owner (sub), token id, name, effective scopes and expiry.",
        annotations(read_only_hint = true)
    )]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(Ok(json!({
            "sub": p.user_id,
            "token_id": p.token_id,
            "name": p.name,
            "scopes": p.effective.to_vec(),
            "expires_at": p.expires_at,
        })))
    }

    /// Connectivity check.
    #[tool(description = "Return the given text unchanged (connectivity check).", annotations(read_only_hint = true))]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        if args.text.chars().count() > 10_000 {
            return respond(Err("`text` must be at most 10000 characters".to_owned().into()));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
    }
}
