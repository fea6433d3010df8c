//! stdio servers in the registry (issue #26): a `servers` row whose URL is `stdio:NAME`
//! (never dialled) and its command, with the declared environment sealed like upstream
//! headers and opened only to start the child.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tessera_core::catalog::ServerName;
use tessera_core::pins::NewToolPolicy;
use tessera_core::sealed::SealError;
use tessera_core::stdio::{CommandLine, EnvVar, InvalidCommand, check_cwd, check_env, check_idle};
use tessera_core::values::Description;
use tessera_store::{Actor, NewServer, ServerRecord, StoredCommand};
use uuid::Uuid;

use crate::servers::{ServerError, ServerService};

/// The URL scheme that marks a stdio server's row.
pub const STDIO_SCHEME: &str = "stdio:";

/// Whether `server` is a stdio server (run by Tessera, reached through its bridge).
pub fn is_stdio(server: &ServerRecord) -> bool {
    server.url.starts_with(STDIO_SCHEME)
}

/// A stdio server's command with its environment opened. `Debug` hides the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioCommand {
    /// The program and arguments (`{user_dir}` not yet expanded).
    pub line: CommandLine,
    /// Declared environment.
    pub env: Vec<EnvVar>,
    /// Working directory; `None`: the process's home directory.
    pub cwd: Option<String>,
    /// One process per Tessera user.
    pub per_user: bool,
    /// How long an idle per-user process lives.
    pub idle: Duration,
}

/// A stdio server to register; every field already parsed.
#[derive(Debug, Clone)]
pub struct StdioServerInput {
    /// Its name.
    pub name: ServerName,
    /// Its description.
    pub description: Option<Description>,
    /// What happens to tools first listed after the first listing.
    pub new_tools: NewToolPolicy,
    /// What runs.
    pub command: StdioCommand,
}

impl ServerService {
    /// Registers a stdio server.
    pub async fn add_stdio(
        &self,
        actor: &Actor,
        input: StdioServerInput,
        now: DateTime<Utc>,
    ) -> Result<ServerRecord, ServerError> {
        let command = &input.command;
        check_env(&command.env)?;
        if let Some(cwd) = &command.cwd {
            check_cwd(cwd)?;
        }
        check_idle(command.idle)?;
        let id = Uuid::now_v7();
        let name = input.name.as_str().to_owned();
        let stored = self.seal_command(id, command)?;
        let server = NewServer {
            id,
            url: format!("{STDIO_SCHEME}{name}"),
            name,
            description: input.description.map(|d| d.as_str().to_owned()),
            headers: Vec::new(),
            direct: None,
            new_tools: input.new_tools,
        };
        let record = self.store().insert_server(actor, &server, now).await?;
        if let Err(e) = self.store().set_server_command(actor, record.id, &record.name, &stored).await {
            // A stdio row without its command could never be served: take it back.
            let _ = self.store().delete_server(actor, &record.name).await;
            return Err(e.into());
        }
        self.forget(&record.name);
        Ok(record)
    }

    /// Server `server`'s command with its environment opened; `None` if it is not a stdio
    /// server.
    pub async fn stdio_command(&self, server: &ServerRecord) -> Result<Option<StdioCommand>, ServerError> {
        let Some(stored) = self.store().server_command(server.id).await? else { return Ok(None) };
        let env = if stored.env.is_empty() {
            Vec::new()
        } else {
            let key = self.sealing_key()?;
            stored
                .env
                .iter()
                .map(|(name, sealed)| {
                    let value = zeroize::Zeroizing::new(key.open(sealed, &context(server.id, name))?);
                    let value = std::str::from_utf8(&value).map_err(|_| SealError::Open)?;
                    Ok(EnvVar::new(name, value)?)
                })
                .collect::<Result<_, ServerError>>()?
        };
        Ok(Some(StdioCommand {
            line: CommandLine::from_parts(stored.program, stored.args),
            env,
            cwd: stored.cwd,
            per_user: stored.per_user,
            idle: Duration::from_secs(u64::try_from(stored.idle_seconds).unwrap_or(600)),
        }))
    }

    /// The names of a stdio server's declared environment values (never the values).
    pub async fn stdio_summary(&self, server: &ServerRecord) -> Result<Option<StdioSummary>, ServerError> {
        let Some(stored) = self.store().server_command(server.id).await? else { return Ok(None) };
        Ok(Some(StdioSummary {
            command: CommandLine::from_parts(stored.program, stored.args).display(),
            env: stored.env.into_iter().map(|(n, _)| n).collect(),
            cwd: stored.cwd,
            per_user: stored.per_user,
            idle_seconds: u32::try_from(stored.idle_seconds).unwrap_or(600),
        }))
    }

    fn seal_command(&self, id: Uuid, command: &StdioCommand) -> Result<StoredCommand, ServerError> {
        let env = if command.env.is_empty() {
            Vec::new()
        } else {
            let key = self.sealing_key()?;
            command
                .env
                .iter()
                .map(|v| (v.name().to_owned(), key.seal(v.expose_value().as_bytes(), &context(id, v.name()))))
                .collect()
        };
        Ok(StoredCommand {
            program: command.line.program().to_owned(),
            args: command.line.args().to_vec(),
            cwd: command.cwd.clone(),
            per_user: command.per_user,
            idle_seconds: i32::try_from(command.idle.as_secs()).map_err(|_| InvalidCommand::Idle)?,
            env,
        })
    }
}

/// What may be shown of a stdio server: its command and the *names* of its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioSummary {
    /// The command line, quoted back.
    pub command: String,
    /// Declared environment names.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// One process per user.
    pub per_user: bool,
    /// Idle timeout of per-user processes, in seconds.
    pub idle_seconds: u32,
}

/// What an environment value is sealed for: its server and its name, so it opens nowhere
/// else (and never as one of the server's headers).
fn context(server_id: Uuid, name: &str) -> Vec<u8> {
    format!("tessera-server-env:{server_id}/{name}").into_bytes()
}
