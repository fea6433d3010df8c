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

use super::{ok_json, optional_text, page_limit, parse_id, required_text, store_error, tool_error};
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
    /// Only tasks in this status: open, in_progress or done.
    pub status: Option<String>,
    /// At most this many tasks (1..=200, default 50), newest first.
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
    pub description: Option<String>,
}

/// Arguments of `update_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateTaskArgs {
    /// The task's id (UUID).
    pub id: String,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status: open, in_progress or done.
    pub status: Option<String>,
}

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
        let (status, limit) = match (status(args.status.as_deref()), page_limit(args.limit)) {
            (Ok(s), Ok(l)) => (s, l),
            (Err(e), _) | (_, Err(e)) => return tool_error(e),
        };
        match self.store.list_tasks(p.user_id, status.as_deref(), limit).await {
            Ok(tasks) => ok_json(json!({ "tasks": tasks })),
            Err(e) => store_error(e),
        }
    }

    /// One task.
    #[tool(description = "Get one of your tasks by id.", annotations(read_only_hint = true))]
    async fn get_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let id = match parse_id("id", &args.id) {
            Ok(id) => id,
            Err(e) => return tool_error(e),
        };
        match self.store.get_task(p.user_id, id).await {
            Ok(Some(task)) => ok_json(json!(task)),
            Ok(None) => tool_error(format!("no task with id {id}")),
            Err(e) => store_error(e),
        }
    }

    /// A new task.
    #[tool(description = "Create a task (status open).")]
    async fn create_task(
        &self,
        Parameters(args): Parameters<CreateTaskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let input = required_text("title", &args.title, 200)
            .and_then(|t| optional_text("description", args.description.as_deref(), 10_000).map(|d| (t, d)));
        let (title, description) = match input {
            Ok(v) => v,
            Err(e) => return tool_error(e),
        };
        match self.store.create_task(p.user_id, &title, description.as_deref(), Utc::now()).await {
            Ok(task) => ok_json(json!(task)),
            Err(e) => store_error(e),
        }
    }

    /// Changes a task.
    #[tool(description = "Change a task's title, description or status (open, in_progress, done).")]
    async fn update_task(
        &self,
        Parameters(args): Parameters<UpdateTaskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let input = (|| {
            let id = parse_id("id", &args.id)?;
            let title = args.title.as_deref().map(|t| required_text("title", t, 200)).transpose()?;
            let description = optional_text("description", args.description.as_deref(), 10_000)?;
            let status = status(args.status.as_deref())?;
            if title.is_none() && description.is_none() && status.is_none() {
                return Err("nothing to change: give a title, description or status".to_owned());
            }
            Ok((id, TaskUpdate { title, description: description.map(Some), status }))
        })();
        let (id, update) = match input {
            Ok(v) => v,
            Err(e) => return tool_error(e),
        };
        match self.store.update_task(p.user_id, id, &update, Utc::now()).await {
            Ok(Some(task)) => ok_json(json!(task)),
            Ok(None) => tool_error(format!("no task with id {id}")),
            Err(e) => store_error(e),
        }
    }

    /// Marks a task done.
    #[tool(description = "Mark a task as done.")]
    async fn complete_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let id = match parse_id("id", &args.id) {
            Ok(id) => id,
            Err(e) => return tool_error(e),
        };
        let update = TaskUpdate { status: Some("done".to_owned()), ..TaskUpdate::default() };
        match self.store.update_task(p.user_id, id, &update, Utc::now()).await {
            Ok(Some(task)) => ok_json(json!(task)),
            Ok(None) => tool_error(format!("no task with id {id}")),
            Err(e) => store_error(e),
        }
    }

    /// Deletes a task.
    #[tool(description = "Delete a task.", annotations(destructive_hint = true))]
    async fn delete_task(
        &self,
        Parameters(args): Parameters<TaskIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&ctx)?;
        let id = match parse_id("id", &args.id) {
            Ok(id) => id,
            Err(e) => return tool_error(e),
        };
        match self.store.delete_task(p.user_id, id).await {
            Ok(true) => ok_json(json!({ "deleted": id })),
            Ok(false) => tool_error(format!("no task with id {id}")),
            Err(e) => store_error(e),
        }
    }
}
