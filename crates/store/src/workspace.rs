//! The MCP tools' data: tasks, context entries and agents, each row owned by one user.
//!
//! Every call takes the owner's id and filters by it in SQL, so one user's token can never
//! read or change another user's rows (another user's id reads as "not found").

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::conflict_on_unique;
use crate::{Store, StoreError};

/// A task.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Task {
    /// Task id (UUIDv7).
    pub id: Uuid,
    /// Short title.
    pub title: String,
    /// Longer text.
    pub description: Option<String>,
    /// `open`, `in_progress` or `done`.
    pub status: String,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Changes to a task; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskUpdate {
    /// New title.
    pub title: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New status.
    pub status: Option<String>,
}

/// A context entry: a JSON value under a key.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ContextEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A registered agent.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    /// Agent id (UUIDv7).
    pub id: Uuid,
    /// Name, unique per user.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// `active`, `paused` or `retired`.
    pub status: String,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New status.
    pub status: Option<String>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
}

const TASK_COLUMNS: &str = "id, title, description, status, created_at, updated_at, completed_at";
const AGENT_COLUMNS: &str = "id, name, description, status, metadata, created_at, updated_at";

impl Store {
    /// The user's tasks, newest first, optionally only those in `status`.
    pub async fn list_tasks(&self, user_id: Uuid, status: Option<&str>, limit: i64) -> Result<Vec<Task>, StoreError> {
        Ok(sqlx::query_as::<_, Task>(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(user_id)
        .bind(status)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.exec())
        .await?)
    }

    /// One of the user's tasks.
    pub async fn get_task(&self, user_id: Uuid, id: Uuid) -> Result<Option<Task>, StoreError> {
        Ok(sqlx::query_as::<_, Task>(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2"))
            .bind(user_id)
            .bind(id)
            .fetch_optional(self.exec())
            .await?)
    }

    /// Creates a task for the user.
    pub async fn create_task(
        &self,
        user_id: Uuid,
        title: &str,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Task, StoreError> {
        Ok(sqlx::query_as::<_, Task>(&format!(
            "INSERT INTO tasks (id, user_id, title, description, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $5) RETURNING {TASK_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(title)
        .bind(description)
        .bind(now)
        .fetch_one(self.exec())
        .await?)
    }

    /// Changes one of the user's tasks; `None` when it does not exist (for this user).
    pub async fn update_task(
        &self,
        user_id: Uuid,
        id: Uuid,
        update: &TaskUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        Ok(sqlx::query_as::<_, Task>(&format!(
            "UPDATE tasks SET
                title = COALESCE($3, title),
                description = CASE WHEN $4 THEN $5 ELSE description END,
                status = COALESCE($6, status),
                completed_at = CASE WHEN COALESCE($6, status) = 'done' THEN COALESCE(completed_at, $7) ELSE NULL END,
                updated_at = $7
             WHERE user_id = $1 AND id = $2 RETURNING {TASK_COLUMNS}"
        ))
        .bind(user_id)
        .bind(id)
        .bind(update.title.as_deref())
        .bind(update.description.is_some())
        .bind(update.description.clone().flatten())
        .bind(update.status.as_deref())
        .bind(now)
        .fetch_optional(self.exec())
        .await?)
    }

    /// Deletes one of the user's tasks; whether it existed.
    pub async fn delete_task(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tasks WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(self.exec())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One context entry of the user.
    pub async fn get_context(&self, user_id: Uuid, key: &str) -> Result<Option<ContextEntry>, StoreError> {
        Ok(sqlx::query_as::<_, ContextEntry>(
            "SELECT key, value, updated_at FROM context_entries WHERE user_id = $1 AND key = $2",
        )
        .bind(user_id)
        .bind(key)
        .fetch_optional(self.exec())
        .await?)
    }

    /// The user's context entries whose key starts with `prefix`, by key.
    pub async fn list_context(
        &self,
        user_id: Uuid,
        prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ContextEntry>, StoreError> {
        Ok(sqlx::query_as::<_, ContextEntry>(
            "SELECT key, value, updated_at FROM context_entries
             WHERE user_id = $1 AND ($2::text IS NULL OR starts_with(key, $2)) ORDER BY key LIMIT $3",
        )
        .bind(user_id)
        .bind(prefix)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.exec())
        .await?)
    }

    /// Sets (inserts or replaces) a context entry of the user.
    pub async fn set_context(
        &self,
        user_id: Uuid,
        key: &str,
        value: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<ContextEntry, StoreError> {
        Ok(sqlx::query_as::<_, ContextEntry>(
            "INSERT INTO context_entries (user_id, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
             RETURNING key, value, updated_at",
        )
        .bind(user_id)
        .bind(key)
        .bind(value)
        .bind(now)
        .fetch_one(self.exec())
        .await?)
    }

    /// The user's agents, by name.
    pub async fn list_agents(&self, user_id: Uuid, limit: i64) -> Result<Vec<Agent>, StoreError> {
        Ok(sqlx::query_as::<_, Agent>(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE user_id = $1 ORDER BY name LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.exec())
        .await?)
    }

    /// Registers an agent for the user; a taken name is [`StoreError::Conflict`].
    pub async fn register_agent(
        &self,
        user_id: Uuid,
        name: &str,
        description: Option<&str>,
        metadata: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Agent, StoreError> {
        sqlx::query_as::<_, Agent>(&format!(
            "INSERT INTO agents (id, user_id, name, description, status, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $6) RETURNING {AGENT_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(name)
        .bind(description)
        .bind(metadata)
        .bind(now)
        .fetch_one(self.exec())
        .await
        .map_err(conflict_on_unique("an agent with this name"))
    }

    /// Changes one of the user's agents; `None` when it does not exist (for this user).
    pub async fn update_agent(
        &self,
        user_id: Uuid,
        id: Uuid,
        update: &AgentUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Agent>, StoreError> {
        sqlx::query_as::<_, Agent>(&format!(
            "UPDATE agents SET
                name = COALESCE($3, name),
                description = CASE WHEN $4 THEN $5 ELSE description END,
                status = COALESCE($6, status),
                metadata = COALESCE($7, metadata),
                updated_at = $8
             WHERE user_id = $1 AND id = $2 RETURNING {AGENT_COLUMNS}"
        ))
        .bind(user_id)
        .bind(id)
        .bind(update.name.as_deref())
        .bind(update.description.is_some())
        .bind(update.description.clone().flatten())
        .bind(update.status.as_deref())
        .bind(update.metadata.as_ref())
        .bind(now)
        .fetch_optional(self.exec())
        .await
        .map_err(conflict_on_unique("an agent with this name"))
    }
}
