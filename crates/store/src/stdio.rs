//! stdio servers' commands (issue #26): the program, its arguments, working directory,
//! per-user mode and idle timeout, and the sealed declared environment.

use serde_json::json;
use tessera_core::sealed::Sealed;
use uuid::Uuid;

use crate::events::notify_server;
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// A stdio server's command, as stored; `env` values sealed for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommand {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory (else its own home directory).
    pub cwd: Option<String>,
    /// One process per Tessera user.
    pub per_user: bool,
    /// Seconds an idle per-user process lives.
    pub idle_seconds: i32,
    /// Declared environment: name and sealed value, by name.
    pub env: Vec<(String, Sealed)>,
}

/// program, args, cwd, per_user, idle_seconds.
type CommandRow = (String, Vec<String>, Option<String>, bool, i32);

impl Store {
    /// Gives server `server_id` (named `name`) its command, replacing any; announces the
    /// server on the change feed.
    pub async fn set_server_command(
        &self,
        actor: &Actor,
        server_id: Uuid,
        name: &str,
        command: &StoredCommand,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO server_commands (server_id, program, args, cwd, per_user, idle_seconds)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (server_id) DO UPDATE SET program = $2, args = $3, cwd = $4, per_user = $5, idle_seconds = $6",
        )
        .bind(server_id)
        .bind(&command.program)
        .bind(&command.args)
        .bind(command.cwd.as_deref())
        .bind(command.per_user)
        .bind(command.idle_seconds)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM server_env WHERE server_id = $1").bind(server_id).execute(&mut *tx).await?;
        for (env, sealed) in &command.env {
            sqlx::query("INSERT INTO server_env (server_id, name, nonce, ciphertext) VALUES ($1, $2, $3, $4)")
                .bind(server_id)
                .bind(env)
                .bind(&sealed.nonce)
                .bind(&sealed.ciphertext)
                .execute(&mut *tx)
                .await?;
        }
        // The audit names the program and the variables, never a value.
        let details = json!({"server": name, "program": command.program, "per_user": command.per_user,
            "env": command.env.iter().map(|(n, _)| n).collect::<Vec<_>>()});
        audit::append(&mut tx, actor, AuditAction::ServerUpdate, None, details).await?;
        notify_server(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Server `server_id`'s command; `None` for a server that is not a stdio server.
    pub async fn server_command(&self, server_id: Uuid) -> Result<Option<StoredCommand>, StoreError> {
        let row: Option<CommandRow> = sqlx::query_as(
            "SELECT program, args, cwd, per_user, idle_seconds FROM server_commands WHERE server_id = $1",
        )
        .bind(server_id)
        .fetch_optional(self.exec())
        .await?;
        let Some((program, args, cwd, per_user, idle_seconds)) = row else { return Ok(None) };
        let env: Vec<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT name, nonce, ciphertext FROM server_env WHERE server_id = $1 ORDER BY name")
                .bind(server_id)
                .fetch_all(self.exec())
                .await?;
        let env = env.into_iter().map(|(name, nonce, ciphertext)| (name, Sealed { nonce, ciphertext })).collect();
        Ok(Some(StoredCommand { program, args, cwd, per_user, idle_seconds, env }))
    }
}
