//! What many of these tests send: one JSON-RPC request to an MCP endpoint with a bearer token.

use serde_json::Value;

/// POSTs `body` to the MCP endpoint `url` with `token`, accepting JSON or SSE as clients do.
pub async fn mcp_post(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap()
}
