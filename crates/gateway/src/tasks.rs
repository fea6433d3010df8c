//! MCP tasks (2025-11-25) belong to the token whose `tools/call` created them: a task id
//! another token presents to `tasks/get`, `tasks/result` or `tasks/cancel` is answered as an
//! unknown task and never forwarded, and `tasks/list` shows a token its own tasks only.
//!
//! A task is bound like a session, in the same bindings (in memory per process, in front of
//! the shared `gateway_sessions` table), under a key no session id can take: a session id is
//! a header value, which never holds a NUL.

use std::collections::HashSet;

use actix_web::HttpResponse;
use actix_web::http::header;
use serde_json::{Value, json};
use tessera_store::ServerRecord;
use tessera_tokens::ServerError;
use uuid::Uuid;

use crate::GatewayState;

/// Methods that name one task in `params.taskId`.
pub(crate) const ONE_TASK: &[&str] = &["tasks/get", "tasks/result", "tasks/cancel"];

/// The binding key of task `id`.
pub(crate) fn key(id: &str) -> String {
    format!("\0task:{id}")
}

/// The task a `tools/call` answer created (`result.task.taskId`), if any. Bodies without the
/// field name are not parsed.
pub(crate) fn created_in(body: &[u8]) -> Option<String> {
    if !body.windows(8).any(|w| w == b"\"taskId\"") {
        return None;
    }
    let message: Value = serde_json::from_slice(body).ok()?;
    created(&message).map(str::to_owned)
}

/// The task a `tools/call` answer message created (`result.task.taskId`), if any.
pub(crate) fn created(message: &Value) -> Option<&str> {
    message.get("result")?.get("task")?.get("taskId")?.as_str()
}

/// The task ids of a `tasks/list` answer (`result.tasks[].taskId`); `None` when it is not one.
pub(crate) fn listed(message: &Value) -> Option<Vec<String>> {
    let tasks = message.get("result")?.get("tasks")?.as_array()?;
    Some(tasks.iter().filter_map(|t| t.get("taskId").and_then(Value::as_str)).map(str::to_owned).collect())
}

/// Keeps the tasks of a `tasks/list` answer whose id is in `own`; a task without a string
/// id is dropped. Returns whether anything changed.
pub(crate) fn keep_own(message: &mut Value, own: &HashSet<String>) -> bool {
    let Some(tasks) = message.get_mut("result").and_then(|r| r.get_mut("tasks")).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = tasks.len();
    tasks.retain(|t| t.get("taskId").and_then(Value::as_str).is_some_and(|id| own.contains(id)));
    tasks.len() != before
}

/// Whether `token` created task `id` on `server` (this replica's bindings, else the shared
/// table).
pub(crate) async fn owned(
    state: &GatewayState,
    server: &ServerRecord,
    id: &str,
    token: Uuid,
) -> Result<bool, ServerError> {
    let inner = &state.inner;
    let key = key(id);
    if inner.sessions.owned_by(&server.name, &key, token) {
        return Ok(true);
    }
    let owner = inner.servers.session_owner(server, &key).await?;
    if owner == Some(token) {
        inner.sessions.bind(&server.name, &key, token);
    }
    Ok(owner == Some(token))
}

/// Binds task `id`, just created on `server`, to `token` (the first binding wins).
pub(crate) async fn bind(state: &GatewayState, server: &ServerRecord, id: &str, token: Uuid) {
    let inner = &state.inner;
    let key = key(id);
    inner.sessions.bind(&server.name, &key, token);
    if let Err(e) = inner.servers.bind_session(server, &key, token).await {
        tracing::warn!(error = %e, server = %server.name, "could not share a gateway task binding");
    }
}

/// The answer for a task this token did not create (or no task id at all): what the spec has
/// a receiver answer for an unknown task, JSON-RPC -32602 in a 200.
pub(crate) fn not_found(id: Option<&Value>) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "jsonrpc": "2.0", "id": id,
        "error": {"code": -32602, "message": "Failed to retrieve task: Task not found"},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_task_is_read_from_a_tools_call_answer() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t-1","status":"working"}}}"#;
        assert_eq!(created_in(body).as_deref(), Some("t-1"));
        assert_eq!(created_in(br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#), None);
        assert_eq!(created_in(br#"{"result":{"taskId":"x"}}"#), None);
    }

    #[test]
    fn a_task_list_keeps_the_tokens_own_tasks() {
        let mut m = json!({"result": {"tasks": [{"taskId": "a"}, {"taskId": "b"}, {"status": "x"}]}});
        assert_eq!(listed(&m), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(keep_own(&mut m, &["b".to_owned()].into()));
        assert_eq!(m, json!({"result": {"tasks": [{"taskId": "b"}]}}));
    }

    #[test]
    fn a_task_key_is_no_session_id() {
        assert!(key("abc").starts_with('\0'));
    }
}
