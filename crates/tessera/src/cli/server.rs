//! `tessera server add | list | show | remove | tool`: the registry of upstream MCP servers
//! served at `/mcp/NAME`. Header values are never printed.

use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::upstream::{ToolAccess, UpstreamHeader, UpstreamUrl};
use tessera_core::values::Description;
use tessera_store::Actor;
use tessera_tokens::{ServerError, ServerInput, ServerService};

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Server commands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register an upstream MCP server (Streamable HTTP) to serve at /mcp/NAME.
    Add {
        /// [a-z0-9-]{1,32}; not tasks, context, agents, tokens or mcp.
        name: String,
        /// The upstream's endpoint, e.g. http://127.0.0.1:3001/mcp.
        #[arg(long)]
        url: String,
        /// A header sent upstream, "Name: value" (repeatable); stored encrypted, never shown.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the registered servers.
    List,
    /// Show one server and its tools with their access class.
    Show {
        /// Server name.
        name: String,
    },
    /// Remove a server; tokens lose its scopes at once.
    Remove {
        /// Server name.
        name: String,
    },
    /// Override a tool's access class (read: read:NAME may call it; write: needs write:NAME;
    /// hidden: never listed or callable).
    Tool {
        /// Server name.
        name: String,
        /// Tool name.
        tool: String,
        /// The class.
        #[arg(long, value_enum)]
        access: AccessArg,
    },
}

/// A tool class on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccessArg {
    /// Callable with read:NAME.
    Read,
    /// Needs write:NAME (or call:NAME/TOOL).
    Write,
    /// Never listed, never callable.
    Hidden,
}

/// Runs a server command.
pub async fn run(cmd: ServerCommand, db: &Database, settings: &Settings) -> Result<(), CliError> {
    let servers = ServerService::new(db.store.clone(), crate::secret_key::load(settings)?);
    let actor = Actor::cli();
    match cmd {
        ServerCommand::Add { name, url, headers, description } => {
            let input = ServerInput {
                name: ServerName::parse(&name).map_err(ServerError::from)?,
                url: UpstreamUrl::parse(&url).map_err(ServerError::from)?,
                description: description.as_deref().map(Description::parse).transpose()?,
                headers: headers
                    .iter()
                    .map(|h| UpstreamHeader::parse(h))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ServerError::from)?,
            };
            let record = servers.add(&actor, input, Utc::now()).await?;
            println!("registered {} at {}/mcp/{}", record.name, settings.public_url(), record.name);
            println!("scopes: read:{0} write:{0} call:{0}/TOOL", record.name);
        }
        ServerCommand::List => {
            println!("{:<32}  {:<48}  HEADERS", "NAME", "URL");
            for s in servers.list().await? {
                println!("{:<32}  {:<48}  {}", s.name, s.url, s.header_names.join(","));
            }
        }
        ServerCommand::Show { name } => {
            let s = servers.get(&name).await.map_err(no_server(&name))?;
            println!("name:        {}", s.name);
            println!("url:         {}", s.url);
            println!("served at:   {}/mcp/{}", settings.public_url(), s.name);
            println!("description: {}", s.description.as_deref().unwrap_or(""));
            println!("headers:     {}", s.header_names.join(", "));
            println!("scopes:      read:{0} write:{0} call:{0}/TOOL", s.name);
            println!("tools:");
            for t in servers.tools(&s).await? {
                let overridden = if t.record.access.is_some() { " (override)" } else { "" };
                println!("  {:<40}  {}{overridden}", t.record.name, t.access.as_str());
            }
        }
        ServerCommand::Remove { name } => {
            servers.remove(&actor, &name).await.map_err(no_server(&name))?;
            println!("removed {name}");
        }
        ServerCommand::Tool { name, tool, access } => {
            let tool = ToolName::parse(&tool).map_err(ServerError::from)?;
            let access = match access {
                AccessArg::Read => ToolAccess::Read,
                AccessArg::Write => ToolAccess::Write,
                AccessArg::Hidden => ToolAccess::Hidden,
            };
            servers.set_tool_access(&actor, &name, &tool, Some(access)).await.map_err(no_server(&name))?;
            println!("{name}/{tool} is now {}", access.as_str());
        }
    }
    Ok(())
}

fn no_server(name: &str) -> impl Fn(ServerError) -> CliError + '_ {
    move |e| match e {
        ServerError::NotFound => CliError::Usage(format!("no server {name}")),
        other => CliError::Registry(other),
    }
}
