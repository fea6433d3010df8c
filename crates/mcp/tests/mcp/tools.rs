//! Tools: scope filtering, inheritance, data that belongs to the token's user.

use serde_json::{Value, json};

use crate::helpers::*;

fn structured(result: &rmcp::model::CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {result:?}");
    result.structured_content.clone().unwrap_or_else(|| panic!("no structured content: {result:?}"))
}

fn error_text(result: &rmcp::model::CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "expected a tool error: {result:?}");
    serde_json::to_string(&result.content).unwrap()
}

#[tokio::test]
async fn tools_list_shows_only_what_the_token_may_call() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks read:context execute:mcp").await;
    let names = tool_names(&app, &token.secret).await;
    assert_eq!(names, ["echo", "get_context", "get_task", "list_context", "list_tasks", "whoami"]);
}

#[tokio::test]
async fn tools_list_is_empty_without_execute_mcp() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks").await;
    assert!(tool_names(&app, &token.secret).await.is_empty());
}

#[tokio::test]
async fn every_tool_argument_has_a_single_json_type() {
    // Clients that map schemas onto a single-`type` dialect (Gemini's OpenAPI subset, the
    // MCP Inspector's --strict check) reject `"type": ["string", "null"]`.
    let app = spawn_app().await;
    let token = issue(&app, "mcp:admin").await;
    let client = client(&app, &token.secret).await;
    let tools = client.list_all_tools().await.unwrap();
    let _ = client.cancel().await;
    assert_eq!(tools.len(), 14, "every tool is listed for mcp:admin");
    for tool in tools {
        let schema = serde_json::to_value(&*tool.input_schema).unwrap();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(!property["type"].is_array(), "{}.{name} has a multi-type schema: {property}", tool.name);
        }
    }
}

#[tokio::test]
async fn optional_arguments_accept_null_like_absent() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks execute:mcp").await;
    let tasks = structured(&call(&app, &token.secret, "list_tasks", json!({"status": null, "limit": null})).await);
    assert_eq!(tasks["tasks"], json!([]));
}

#[tokio::test]
async fn write_tasks_inherits_list_tasks() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks execute:mcp").await;
    let names = tool_names(&app, &token.secret).await;
    assert!(names.contains(&"list_tasks".to_owned()) && names.contains(&"create_task".to_owned()), "{names:?}");
    let result = call(&app, &token.secret, "list_tasks", json!({})).await;
    assert_eq!(structured(&result)["tasks"], json!([]));
}

#[tokio::test]
async fn calling_a_tool_without_its_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = call_raw(&app, &token.secret, "create_task", json!({"title": "x"})).await;
    assert_eq!(res.status(), 403);
    let header = challenge(&res);
    assert!(header.contains(r#"error="insufficient_scope""#), "{header}");
    assert!(header.contains(r#"scope="write:tasks""#), "{header}");
}

#[tokio::test]
async fn calling_any_tool_needs_execute_mcp() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = call_raw(&app, &token.secret, "whoami", json!({})).await;
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains(r#"scope="execute:mcp""#), "{}", challenge(&res));
}

#[tokio::test]
async fn whoami_describes_the_token() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let me = structured(&call(&app, &token.secret, "whoami", json!({})).await);
    assert_eq!(me["sub"], token.user_id.to_string());
    assert_eq!(me["token_id"], token.id.to_string());
    assert_eq!(me["name"], "test token");
    let scopes: Vec<&str> = me["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(scopes.contains(&"mcp:access") && scopes.contains(&"read:tasks") && scopes.contains(&"mcp:read"));
    assert!(me["expires_at"].is_string());
}

#[tokio::test]
async fn echo_returns_its_text() {
    let app = spawn_app().await;
    let token = issue(&app, "execute:mcp").await;
    let result = call(&app, &token.secret, "echo", json!({"text": "hello"})).await;
    assert_eq!(result.content[0].as_text().unwrap().text, "hello");
}

#[tokio::test]
async fn missing_argument_is_a_tool_error_with_a_clear_message() {
    let app = spawn_app().await;
    let token = issue(&app, "execute:mcp").await;
    let result = call(&app, &token.secret, "echo", json!({})).await;
    assert!(error_text(&result).contains("text"), "{result:?}");
}

#[tokio::test]
async fn task_lifecycle_create_update_complete_delete() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks execute:mcp").await;
    let t = &token.secret;
    let task = structured(&call(&app, t, "create_task", json!({"title": "Write tests", "description": "all"})).await);
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["status"], "open");
    let task = structured(&call(&app, t, "update_task", json!({"id": id, "status": "in_progress"})).await);
    assert_eq!(task["status"], "in_progress");
    let task = structured(&call(&app, t, "complete_task", json!({"id": id})).await);
    assert_eq!(task["status"], "done");
    assert!(task["completed_at"].is_string());
    let got = structured(&call(&app, t, "get_task", json!({"id": id})).await);
    assert_eq!(got["title"], "Write tests");
    let listed = structured(&call(&app, t, "list_tasks", json!({"status": "done"})).await);
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1);
    structured(&call(&app, t, "delete_task", json!({"id": id})).await);
    let gone = call(&app, t, "get_task", json!({"id": id})).await;
    assert!(error_text(&gone).contains("no task"));
}

#[tokio::test]
async fn invalid_task_input_is_a_tool_error() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks execute:mcp").await;
    let empty = call(&app, &token.secret, "create_task", json!({"title": "  "})).await;
    assert!(error_text(&empty).contains("`title` must not be empty"));
    let bad_id = call(&app, &token.secret, "get_task", json!({"id": "nope"})).await;
    assert!(error_text(&bad_id).contains("must be a UUID"));
    let bad_status = call(&app, &token.secret, "list_tasks", json!({"status": "later"})).await;
    assert!(error_text(&bad_status).contains("`status` must be one of"));
}

#[tokio::test]
async fn tasks_belong_to_their_user() {
    let app = spawn_app().await;
    let alice = issue(&app, "write:tasks execute:mcp").await;
    let bob = issue(&app, "write:tasks execute:mcp").await;
    let task = structured(&call(&app, &alice.secret, "create_task", json!({"title": "private"})).await);
    let listed = structured(&call(&app, &bob.secret, "list_tasks", json!({})).await);
    assert_eq!(listed["tasks"], json!([]));
    let stolen = call(&app, &bob.secret, "get_task", json!({"id": task["id"]})).await;
    assert!(error_text(&stolen).contains("no task"));
}

#[tokio::test]
async fn context_set_get_list() {
    let app = spawn_app().await;
    let token = issue(&app, "write:context execute:mcp").await;
    let t = &token.secret;
    structured(&call(&app, t, "set_context", json!({"key": "project.name", "value": {"n": 1}})).await);
    structured(&call(&app, t, "set_context", json!({"key": "project.lang", "value": "rust"})).await);
    structured(&call(&app, t, "set_context", json!({"key": "other", "value": 3})).await);
    let got = structured(&call(&app, t, "get_context", json!({"key": "project.name"})).await);
    assert_eq!(got["value"], json!({"n": 1}));
    let listed = structured(&call(&app, t, "list_context", json!({"prefix": "project."})).await);
    assert_eq!(listed["entries"].as_array().unwrap().len(), 2);
    let missing = call(&app, t, "get_context", json!({"key": "nope"})).await;
    assert!(error_text(&missing).contains("no context entry"));
}

#[tokio::test]
async fn agents_register_list_update() {
    let app = spawn_app().await;
    let token = issue(&app, "write:agents execute:mcp").await;
    let t = &token.secret;
    let agent = structured(&call(&app, t, "register_agent", json!({"name": "builder", "metadata": {"v": 1}})).await);
    assert_eq!(agent["status"], "active");
    let dup = call(&app, t, "register_agent", json!({"name": "builder"})).await;
    assert!(error_text(&dup).contains("already exists"));
    let updated = structured(&call(&app, t, "update_agent", json!({"id": agent["id"], "status": "paused"})).await);
    assert_eq!(updated["status"], "paused");
    let listed = structured(&call(&app, t, "list_agents", json!({})).await);
    assert_eq!(listed["agents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nul_characters_in_tool_arguments_are_a_tool_error_naming_the_field() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks write:context write:agents execute:mcp").await;
    for (tool, args, field) in [
        ("create_task", json!({"title": "a\u{0}b"}), "title"),
        ("create_task", json!({"title": "ok", "description": "x\u{0}"}), "description"),
        ("set_context", json!({"key": "k\u{0}", "value": 1}), "key"),
        ("set_context", json!({"key": "k", "value": {"deep": ["x\u{0}y"]}}), "value"),
        ("set_context", json!({"key": "k", "value": {"a\u{0}": 1}}), "value"),
        ("list_context", json!({"prefix": "\u{0}"}), "prefix"),
        ("register_agent", json!({"name": "n\u{0}"}), "name"),
        ("register_agent", json!({"name": "n", "metadata": {"m": "\u{0}"}}), "metadata"),
    ] {
        let text = error_text(&call(&app, &token.secret, tool, args).await);
        assert!(text.contains(&format!("`{field}` must not contain NUL")), "{tool}: {text}");
    }
}
