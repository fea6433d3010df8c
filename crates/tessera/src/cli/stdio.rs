//! `tessera server add NAME --command ...` and the stdio lines of `server show` (issue #26):
//! MCP servers Tessera runs as child processes. Environment values are never printed.

use chrono::Utc;
use tessera_core::catalog::ServerName;
use tessera_core::pins::NewToolPolicy;
use tessera_core::stdio::{CommandLine, DEFAULT_IDLE, EnvVar, parse_idle};
use tessera_core::values::Description;
use tessera_store::{Actor, ServerRecord};
use tessera_tokens::{ServerError, ServerService, StdioCommand, StdioServerInput};

use crate::config::Settings;
use crate::error::CliError;

/// The stdio options of `server add`.
pub(super) struct StdioAdd {
    pub(super) name: String,
    pub(super) command: String,
    pub(super) env: Vec<String>,
    pub(super) cwd: Option<String>,
    pub(super) per_user: bool,
    pub(super) idle_timeout: String,
    pub(super) description: Option<String>,
}

/// Registers a stdio server and lists its tools (one process, started and stopped).
pub(super) async fn add(
    servers: &ServerService,
    settings: &Settings,
    add: StdioAdd,
    new_tools: NewToolPolicy,
) -> Result<(), CliError> {
    let command = StdioCommand {
        line: CommandLine::parse(&add.command).map_err(ServerError::from)?,
        env: add.env.iter().map(|e| EnvVar::parse(e)).collect::<Result<Vec<_>, _>>().map_err(ServerError::from)?,
        cwd: add.cwd,
        per_user: add.per_user,
        idle: if add.per_user { parse_idle(&add.idle_timeout).map_err(ServerError::from)? } else { DEFAULT_IDLE },
    };
    let input = StdioServerInput {
        name: ServerName::parse(&add.name).map_err(ServerError::from)?,
        description: add.description.as_deref().map(Description::parse).transpose()?,
        new_tools,
        command,
    };
    let record = servers.add_stdio(&Actor::cli(), input, Utc::now()).await?;
    println!("registered stdio server {} at {}/mcp/{}", record.name, settings.public_url(), record.name);
    println!("scopes: read:{0} write:{0} call:{0}/TOOL", record.name);
    super::server::report_discovery(servers, &record).await;
    Ok(())
}

/// The command, working directory, per-user mode and environment *names* of a stdio server.
pub(super) async fn show(servers: &ServerService, server: &ServerRecord) -> Result<(), CliError> {
    if let Some(s) = servers.stdio_summary(server).await? {
        println!("command:     {}", s.command);
        println!("env:         {}", s.env.join(", "));
        if let Some(cwd) = &s.cwd {
            println!("cwd:         {cwd}");
        }
        if s.per_user {
            println!("processes:   one per user, stopped after {} s idle", s.idle_seconds);
        } else {
            println!("processes:   one, shared by every user");
        }
    }
    Ok(())
}
