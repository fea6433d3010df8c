//! `tessera server add | edit | credentials | list | show | remove | tool | approve`: the registry of upstream MCP servers
//! served at `/mcp/NAME`. Header values are never printed.

use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::pins::{NewToolPolicy, line_diff, pretty};
use tessera_core::upstream::{ToolAccess, UpstreamHeader, UpstreamUrl};
use tessera_core::values::Description;
use tessera_store::Actor;
use tessera_tokens::{Discovery, PersonalHeader, PersonalOAuth, ServerError, ServerInput, ServerPatch, ServerService};

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// What `--user-auth` asked for.
enum Personal {
    Header(PersonalHeader),
    OAuth(PersonalOAuth),
}

/// Server commands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of `server add`'s many options costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ServerCommand {
    /// Register an upstream MCP server (Streamable HTTP) to serve at /mcp/NAME.
    Add {
        /// [a-z0-9-]{1,32}; not tasks, context, agents, tokens or mcp.
        name: String,
        /// The upstream's endpoint, e.g. http://127.0.0.1:3001/mcp.
        #[arg(long, required_unless_present = "command")]
        url: Option<String>,
        /// A stdio server instead: the program and its arguments, split like a shell would
        /// (quotes respected) but run without one, e.g. "npx -y @modelcontextprotocol/server-memory".
        #[arg(long, conflicts_with_all = ["url", "direct", "user_auth", "headers"])]
        command: Option<String>,
        /// With --command: an environment value for it, KEY=VALUE (repeatable); stored
        /// encrypted, never shown. `{user_dir}` expands to the per-user directory.
        #[arg(long = "env", requires = "command")]
        env: Vec<String>,
        /// With --command: its working directory (default: its own home directory).
        #[arg(long, requires = "command")]
        cwd: Option<String>,
        /// With --command: one process per Tessera user, each with its own home directory.
        #[arg(long, requires = "command")]
        per_user: bool,
        /// With --per-user: stop a user's idle process after this long (e.g. 10m, 2h).
        #[arg(long, requires = "per_user", default_value = "10m")]
        idle_timeout: String,
        /// A header sent upstream, "Name: value" (repeatable); stored encrypted, never shown.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// A server that checks Tessera tokens itself (introspection or JWKS): not served at
        /// /mcp/NAME; its tokens name URL in `aud`; prints its introspection credential once.
        #[arg(long, conflicts_with = "headers")]
        direct: bool,
        /// Each user brings their own credential (connected accounts): `header` (each types a
        /// value: --user-header) or `oauth` (each signs in at the upstream's authorization
        /// server, found from its 401 / RFC 9728 metadata). Users connect on the Connections page.
        #[arg(long, value_parser = ["header", "oauth"], conflicts_with = "direct")]
        user_auth: Option<String>,
        /// With --user-auth header: the header each user's own value goes in (e.g. X-Api-Key).
        #[arg(long, requires = "user_auth")]
        user_header: Option<String>,
        /// With --user-auth oauth: a client registered at the upstream's authorization server
        /// (default: Tessera registers itself there, RFC 7591, or uses its metadata document).
        #[arg(long, requires = "user_auth", conflicts_with = "user_header")]
        client_id: Option<String>,
        /// That client's secret (stored encrypted); better given in the environment.
        #[arg(long, env = "TESSERA_UPSTREAM_CLIENT_SECRET", hide_env_values = true, requires = "client_id")]
        client_secret: Option<String>,
        /// With --user-auth oauth: the scopes to ask for (default: what the upstream asks for).
        #[arg(long, requires = "user_auth", conflicts_with = "user_header")]
        scope: Option<String>,
        /// Put before each user's value, e.g. "Bearer " with --user-header Authorization.
        #[arg(long, requires = "user_header")]
        user_header_prefix: Option<String>,
        /// Tools listed after the first listing: allow (served at once) or hold (until approved).
        #[arg(long, value_enum, default_value_t = NewToolsArg::Allow, hide_possible_values = true)]
        new_tools: NewToolsArg,
    },
    /// Change a server's URL, description or headers (absent options stay as they are).
    Edit {
        /// Server name.
        name: String,
        /// New endpoint. A direct server's URL is its tokens' audience: moving it needs
        /// --invalidate-tokens.
        #[arg(long)]
        url: Option<String>,
        /// New description ("" clears it).
        #[arg(long)]
        description: Option<String>,
        /// Replaces every header sent upstream, "Name: value" (repeatable); not for a direct server.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Removes every header sent upstream.
        #[arg(long, conflicts_with = "headers")]
        clear_headers: bool,
        /// Accept that tokens naming a direct server's old URL stop working for it.
        #[arg(long)]
        invalidate_tokens: bool,
        /// New policy for tools first listed from now on: allow or hold.
        #[arg(long, value_enum, hide_possible_values = true)]
        new_tools: Option<NewToolsArg>,
    },
    /// Issue a new introspection credential for a direct server (printed once).
    Credentials {
        /// Server name.
        name: String,
        /// Required: makes a new pair (the command never shows the current secret).
        #[arg(long, required = true)]
        rotate: bool,
        /// Seconds the old pair keeps working (at most 30 days).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=2_592_000))]
        grace: u32,
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
    /// Approve held tools (a changed definition, or a new tool under --new-tools hold): print
    /// each diff, pin the served definition, and serve the tool again.
    Approve {
        /// Server name.
        name: String,
        /// One tool (default: every held tool of the server).
        tool: Option<String>,
    },
}

/// A new-tool policy on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NewToolsArg {
    /// Pinned and served at once.
    Allow,
    /// Pinned, hidden and refused until approved.
    Hold,
}

impl From<NewToolsArg> for NewToolPolicy {
    fn from(a: NewToolsArg) -> Self {
        match a {
            NewToolsArg::Allow => Self::Allow,
            NewToolsArg::Hold => Self::Hold,
        }
    }
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
    let mut stdio = settings.stdio_config();
    stdio.timeout = settings.discovery_timeout();
    let servers = ServerService::new(db.store.clone(), crate::secret_key::load(settings)?)
        .with_tool_source(tessera_gateway::HttpToolSource::with_stdio(settings.discovery_timeout(), stdio));
    let actor = Actor::cli();
    match cmd {
        ServerCommand::Add {
            name,
            command: Some(command),
            env,
            cwd,
            per_user,
            idle_timeout,
            description,
            new_tools,
            ..
        } => {
            let stdio = super::stdio::StdioAdd { name, command, env, cwd, per_user, idle_timeout, description };
            super::stdio::add(&servers, settings, stdio, new_tools.into()).await?;
        }
        ServerCommand::Add {
            name,
            url,
            headers,
            description,
            direct,
            user_auth,
            user_header,
            user_header_prefix,
            client_id,
            client_secret,
            scope,
            new_tools,
            ..
        } => {
            let url = url.unwrap_or_default();
            let personal = match (user_auth.as_deref(), user_header.as_deref()) {
                (Some("header"), Some(h)) => Some(Personal::Header(
                    PersonalHeader::new(h, user_header_prefix.as_deref().unwrap_or("")).map_err(ServerError::from)?,
                )),
                (Some("header"), None) => {
                    return Err(CliError::Usage("--user-auth header needs --user-header NAME".to_owned()));
                }
                (Some("oauth"), Some(_)) => {
                    return Err(CliError::Usage(
                        "--user-header is for --user-auth header; an oauth server's token always goes in Authorization"
                            .to_owned(),
                    ));
                }
                (Some("oauth"), None) => Some(Personal::OAuth(PersonalOAuth {
                    scope,
                    client_id,
                    client_secret: client_secret.map(zeroize::Zeroizing::new),
                })),
                _ if client_id.is_some() || scope.is_some() => {
                    return Err(CliError::Usage("--client-id and --scope go with --user-auth oauth".to_owned()));
                }
                _ => None,
            };
            let input = ServerInput {
                name: ServerName::parse(&name).map_err(ServerError::from)?,
                url: UpstreamUrl::parse(&url).map_err(ServerError::from)?,
                description: description.as_deref().map(Description::parse).transpose()?,
                headers: headers
                    .iter()
                    .map(|h| UpstreamHeader::parse(h))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ServerError::from)?,
                new_tools: new_tools.into(),
            };
            if direct {
                let (record, credential) = servers.add_direct(&actor, input, Utc::now()).await?;
                println!("registered direct server {} (resource {})", record.name, record.url);
                println!("scopes: read:{0} write:{0} call:{0}/TOOL", record.name);
                print_credential(settings, &credential);
            } else {
                let record = servers.add(&actor, input, Utc::now()).await?;
                println!("registered {} at {}/mcp/{}", record.name, settings.public_url(), record.name);
                println!("scopes: read:{0} write:{0} call:{0}/TOOL", record.name);
                let connect = tessera_gateway::connect_url(&settings.gateway_config(), &record.name, None);
                match &personal {
                    Some(Personal::Header(p)) => {
                        servers.set_personal_header(&actor, &record.name, Some(p)).await?;
                        println!("each user connects their own {} at {connect}", p.header);
                        println!("tools are listed at the first connected call");
                    }
                    Some(Personal::OAuth(o)) => {
                        servers.set_personal_oauth(&actor, &record.name, o).await?;
                        println!("each user connects their own account at the upstream's sign-in, from {connect}");
                        println!("tools are listed at the first connected call");
                    }
                    None => report_discovery(&servers, &record).await,
                }
            }
        }
        ServerCommand::Edit { name, url, description, headers, clear_headers, invalidate_tokens, new_tools } => {
            let headers = if clear_headers {
                Some(Vec::new())
            } else if headers.is_empty() {
                None
            } else {
                Some(
                    headers
                        .iter()
                        .map(|h| UpstreamHeader::parse(h))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(ServerError::from)?,
                )
            };
            let patch = ServerPatch {
                url: url.as_deref().map(UpstreamUrl::parse).transpose().map_err(ServerError::from)?,
                description: description
                    .map(|d| if d.is_empty() { Ok(None) } else { Description::parse(&d).map(Some) })
                    .transpose()?,
                headers,
                new_tools: new_tools.map(Into::into),
                invalidate_tokens,
            };
            let patched = servers.patch(&actor, &name, patch, Utc::now()).await.map_err(no_server(&name))?;
            println!("updated {} ({})", patched.record.name, patched.record.url);
            if let Some(n) = patched.tokens_invalidated {
                println!(
                    "{n} token(s) in force name the old URL and no longer work for it; their holders need new ones"
                );
            }
        }
        ServerCommand::Credentials { name, rotate: _, grace } => {
            let grace = chrono::Duration::seconds(i64::from(grace));
            let credential =
                servers.rotate_credentials(&actor, &name, grace, Utc::now()).await.map_err(|e| match e {
                    ServerError::NotFound => CliError::Usage(format!("no direct server {name}")),
                    other => CliError::Registry(other),
                })?;
            print_credential(settings, &credential);
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
            if s.direct {
                println!("direct:      checks tokens itself; resource {}", s.url);
            } else {
                println!("served at:   {}/mcp/{}", settings.public_url(), s.name);
            }
            println!("description: {}", s.description.as_deref().unwrap_or(""));
            println!("headers:     {}", s.header_names.join(", "));
            super::stdio::show(&servers, &s).await?;
            if let Some(auth) = servers.personal_header(&s).await? {
                let connected = servers.connections(None).await?.iter().filter(|c| c.server == s.name).count();
                match &auth.oauth {
                    Some(oauth) => {
                        let issuer =
                            oauth.authorization_server.as_ref().and_then(|a| a.get("issuer")).and_then(|i| i.as_str());
                        println!(
                            "user auth:   each user's own account through OAuth at {} ({connected} connected)",
                            issuer.unwrap_or("(found at the first connect)")
                        );
                    }
                    None => println!("user auth:   each user's own {} ({connected} connected)", auth.header),
                }
            }
            println!("scopes:      read:{0} write:{0} call:{0}/TOOL", s.name);
            println!("pinning:     definitions pinned; new tools {}", s.new_tools.as_str());
            println!("tools:");
            for t in servers.tools(&s).await? {
                let overridden = if t.record.access.is_some() { " (override)" } else { "" };
                let held = t.record.hold.as_deref().map(|h| format!(" (held: {h})")).unwrap_or_default();
                println!("  {:<40}  {}{overridden}{held}", t.record.name, t.access.as_str());
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
        ServerCommand::Approve { name, tool } => {
            let tool = tool.as_deref().map(ToolName::parse).transpose().map_err(ServerError::from)?;
            let approved = servers.approve(&actor, &name, tool.as_ref()).await.map_err(|e| match e {
                ServerError::NotFound => CliError::Usage(format!("no server {name}")),
                ServerError::ToolNotFound => CliError::Usage(format!("{name} has no such tool")),
                ServerError::NotHeld => CliError::Usage(format!("that tool of {name} is not held")),
                other => CliError::Registry(other),
            })?;
            if approved.is_empty() {
                println!("{name} has no held tools");
            }
            for a in approved {
                println!("approved {name}/{} ({}); pinned definition, - before, + now:", a.name, a.reason.as_str());
                print!("{}", line_diff(&pretty(&a.was), &pretty(&a.now)));
            }
        }
    }
    Ok(())
}

/// Lists a new server's tools at once, so `server show` and the token form know them. The
/// server is registered whatever happens here; a failure is a warning on stderr.
pub(super) async fn report_discovery(servers: &ServerService, record: &tessera_store::ServerRecord) {
    match servers.discover(record, Utc::now()).await {
        Ok(Discovery::Found { tools, held: 0 }) => {
            println!("tools: {tools} discovered and pinned (tessera server show {} lists them)", record.name);
        }
        Ok(Discovery::Found { tools, held }) => {
            println!("tools: {tools} discovered, {held} held until approved (tessera server approve {})", record.name)
        }
        Ok(Discovery::Failed(why)) => eprintln!(
            "warning: could not list {}'s tools ({why}); it is registered, and its tools are learnt when a client first lists them",
            record.name
        ),
        Ok(Discovery::Skipped) => {}
        Err(e) => eprintln!("warning: could not record {}'s tools: {e}", record.name),
    }
}

/// The one place a direct server's secret is shown (on stdout, never in a log).
fn print_credential(settings: &Settings, credential: &tessera_core::client_secret::ClientCredential) {
    println!("introspection endpoint: {}/oauth/introspect", settings.public_url());
    println!("client id:     {}", credential.client_id);
    println!("client secret: {}", credential.secret);
    println!("(the secret is shown only now; Tessera keeps only its hash)");
}

fn no_server(name: &str) -> impl Fn(ServerError) -> CliError + '_ {
    move |e| match e {
        ServerError::NotFound => CliError::Usage(format!("no server {name}")),
        other => CliError::Registry(other),
    }
}
