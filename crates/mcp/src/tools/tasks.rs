//! Task tools: `list_tasks`, `get_task` (`read:tasks`); `create_task`, `update_task`,
//! `complete_task`, `delete_task` (`write:tasks`).

use chrono::Utc;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_store::TaskUpdate;

use super::{ToolFailure, exists, optional_text, page_limit, parse_id, required_text, respond};
use crate::service::{TesseraMcp, caller};

const STATUSES: &[&str] = &["open", "in_progress", "done"];

fn status(value: Option<&str>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(s) if STATUSES.contains(&s) => Ok(Some(s.to_owned())),
        Some(s) => Err(format!(
            "`status` must be one of {}, got `{}`",
            STATUSES.join(", "),
            s.chars().take(32).collect::<String>()
        )),
    }
}

/// Arguments of `list_tasks`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListTasksArgs {
    /// Only tasks in this status.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["open", "in_progress", "done"]))]
    pub status: Option<String>,
    /// At most this many tasks (default 50), newest first.
    #[serde(default)]
    #[schemars(with = "u32", extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
}

/// Arguments naming one task.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct TaskIdArgs {
    /// The task's id (UUID).
    pub id: String,
}

/// Arguments of `create_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateTaskArgs {
    /// Short title (1..=200 characters).
    pub title: String,
    /// Optional longer description (at most 10000 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub description: Option<String>,
}

/// Arguments of `update_task`: give at least one of title, description, status.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateTaskArgs {
    /// The task's id (UUID).
    pub id: String,
    /// New title (1..=200 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub title: Option<String>,
    /// New description (at most 10000 characters).
    #[serde(default)]
    #[schemars(with = "String")]
    pub description: Option<String>,
    /// New status.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["open", "in_progress", "done"]))]
    pub status: Option<String>,
}

fn no_task(id: uuid::Uuid) -> impl FnOnce() -> String {
    move || format!("no task with id {id}")
}

/// The scope each tool below needs (besides `execute:mcp` for any call).
pub(crate) const TASK_SCOPES: &[(&str, &str)] = &[
    ("list_tasks", "read:tasks"),
    ("get_task", "read:tasks"),
    ("create_task", "write:tasks"),
    ("update_task", "write:tasks"),
    ("complete_task", "write:tasks"),
    ("delete_task", "write:tasks"),
];

#[tool_router(router = tasks_router, vis = "pub(crate)")]
impl TesseraMcp {
    /// The caller's tasks.
    #[tool(
        description = "List your tasks, newest first, optionally filtered by status.",
        annotations(read_only_hint = true)
    )]
    async fn list_tasks(
        &self,
        Parameters(args): Parameters<ListTasksArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let status = status(args.status.as_deref())?;
                let limit = page_limit(args.limit)?;
                let tasks = self.store.list_tasks(p.user_id, status.as_deref(), limit).await?;
                Ok::<_, ToolFailure>(json!({ "tasks": tasks }))
            }
            .await,
        )
    }

    /// One task.
    #[tool(description = "Get one of your tasks by id.", annotations(read_only_hint = true))]
    async fn get_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let id = parse_id("id", &args.id)?;
                let task = exists(self.store.get_task(p.user_id, id).await?, no_task(id))?;
                Ok(json!(task))
            }
            .await,
        )
    }

    /// A new task.
    #[tool(description = "Create a task (status open).")]
    async fn create_task(
        &self,
        Parameters(args): Parameters<CreateTaskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let title = required_text("title", &args.title, 200)?;
                let description = optional_text("description", args.description.as_deref(), 10_000)?;
                let task = self.store.create_task(p.user_id, &title, description.as_deref(), Utc::now()).await?;
                Ok(json!(task))
            }
            .await,
        )
    }

    /// Changes a task.
    #[tool(description = "Change a task's title, description or status (open, in_progress, done).")]
    async fn update_task(
        &self,
        Parameters(args): Parameters<UpdateTaskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let id = parse_id("id", &args.id)?;
                let title = args.title.as_deref().map(|t| required_text("title", t, 200)).transpose()?;
                let description = optional_text("description", args.description.as_deref(), 10_000)?;
                let status = status(args.status.as_deref())?;
                if title.is_none() && description.is_none() && status.is_none() {
                    return Err("nothing to change: give a title, description or status".to_owned().into());
                }
                let update = TaskUpdate { title, description: description.map(Some), status };
                let task = exists(self.store.update_task(p.user_id, id, &update, Utc::now()).await?, no_task(id))?;
                Ok(json!(task))
            }
            .await,
        )
    }

    /// Marks a task done.
    #[tool(description = "Mark a task as done.")]
    async fn complete_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let id = parse_id("id", &args.id)?;
                let update = TaskUpdate { status: Some("done".to_owned()), ..TaskUpdate::default() };
                let task = exists(self.store.update_task(p.user_id, id, &update, Utc::now()).await?, no_task(id))?;
                Ok(json!(task))
            }
            .await,
        )
    }

    /// Deletes a task.
    #[tool(description = "Delete a task.", annotations(destructive_hint = true))]
    async fn delete_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        respond(
            async {
                let id = parse_id("id", &args.id)?;
                let deleted = self.store.delete_task(p.user_id, id).await?;
                exists(deleted.then_some(()), no_task(id))?;
                Ok(json!({ "deleted": id }))
            }
            .await,
        )
    }
}
