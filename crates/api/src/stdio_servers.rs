//! stdio servers on `POST /api/v2/servers` (issue #26): a `command` object instead of a URL.
//! Environment values go in and never come out: answers name the variables only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::catalog::ServerName;
use tessera_core::pins::NewToolPolicy;
use tessera_core::stdio::{CommandLine, DEFAULT_IDLE, EnvVar, check_idle};
use tessera_core::values::Description;
use tessera_store::{Actor, ServerRecord};
use tessera_tokens::{ServerError, ServerService, StdioCommand, StdioServerInput, StdioSummary};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A stdio server's command (`POST /servers` with `command` instead of `url`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StdioCommandRequest {
    /// The program and its arguments, split like a shell would (quotes respected) but run
    /// without one, e.g. `npx -y @modelcontextprotocol/server-memory`.
    pub line: String,
    /// Environment values, name → value; stored encrypted, never returned. `{user_dir}`
    /// expands to the per-user directory. `PATH` and `HOME` are Tessera's to set.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (absolute; default: the process's own home directory).
    #[serde(default)]
    pub cwd: Option<String>,
    /// One process per Tessera user, each with its own home directory.
    #[serde(default)]
    pub per_user: bool,
    /// With `per_user`: seconds an idle process lives (60 to 86400; default 600).
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
}

/// What is shown of a stdio server's command: never an environment value.
#[derive(Debug, Serialize, ToSchema)]
pub struct StdioCommandView {
    /// The command line, quoted back.
    pub line: String,
    /// Names of its environment values (values are write-only).
    pub env: Vec<String>,
    /// Working directory, if set.
    pub cwd: Option<String>,
    /// One process per user.
    pub per_user: bool,
    /// Seconds an idle per-user process lives.
    pub idle_timeout_seconds: u32,
}

impl From<StdioSummary> for StdioCommandView {
    fn from(s: StdioSummary) -> Self {
        Self { line: s.command, env: s.env, cwd: s.cwd, per_user: s.per_user, idle_timeout_seconds: s.idle_seconds }
    }
}

/// Registers stdio server `name` with `command`.
pub(crate) async fn add(
    servers: &ServerService,
    actor: &Actor,
    name: &str,
    description: Option<&str>,
    new_tools: NewToolPolicy,
    command: &StdioCommandRequest,
    now: DateTime<Utc>,
) -> Result<ServerRecord, ApiError> {
    let idle = match command.idle_timeout_seconds {
        Some(s) => check_idle(std::time::Duration::from_secs(u64::from(s))).map_err(ServerError::from)?,
        None => DEFAULT_IDLE,
    };
    let input = StdioServerInput {
        name: ServerName::parse(name).map_err(ServerError::from)?,
        description: description.map(Description::parse).transpose()?,
        new_tools,
        command: StdioCommand {
            line: CommandLine::parse(&command.line).map_err(ServerError::from)?,
            env: command
                .env
                .iter()
                .map(|(k, v)| EnvVar::new(k, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServerError::from)?,
            cwd: command.cwd.clone(),
            per_user: command.per_user,
            idle,
        },
    };
    Ok(servers.add_stdio(actor, input, now).await?)
}

/// The command view of `server`, if it is a stdio server.
pub(crate) async fn view(servers: &ServerService, server: &ServerRecord) -> Result<Option<StdioCommandView>, ApiError> {
    if !tessera_tokens::is_stdio(server) {
        return Ok(None);
    }
    Ok(servers.stdio_summary(server).await?.map(Into::into))
}
