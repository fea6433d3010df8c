//! What `/mcp` accepts so that clients written against the MCP token guide Tessera grew from
//! (issue 17) work as written: the `POST /mcp/initialize` alias, a clear refusal at
//! `GET /mcp/sse`, and an `initialize` without `clientInfo` or `capabilities`.
//!
//! The guide's own examples send `{"params": {"protocolVersion": "2025-06-18"}}`. rmcp's
//! typed `InitializeRequestParams` requires both fields; when they are absent its
//! deserialization falls back to a custom request and the client gets `-32601` ("method
//! not found") for a method Tessera implements. So the middleware, which reads the body
//! anyway, fills in exactly those two fields when they are absent (nothing else, and only
//! for `initialize`), and answers any other malformed `initialize` with `-32602` naming the
//! field, before rmcp sees it.
//!
//! The same holds for the other methods Tessera serves: a `tools/call` whose `params` are
//! malformed is `-32602` naming the field (`check_params`), never "method not found".
//!
//! `initialize` and `sse` are thereby taken as names under `/mcp`: a gateway server mounted at
//! `/mcp/{name}` may not use them.

use actix_web::HttpResponse;
use actix_web::http::header;
use rmcp::model::{ClientCapabilities, ClientJsonRpcMessage, ClientRequest, Implementation, ProtocolVersion};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::McpState;

/// The `clientInfo` assumed when an `initialize` names none (nothing reads it: the server is
/// stateless and answers every client alike).
const UNKNOWN_CLIENT: (&str, &str) = ("unknown-client", "0.0.0");

/// Checks an `initialize` message's `params` and fills in an absent `capabilities` (`{}`)
/// or `clientInfo`; returns the names of the fields filled in, or the `-32602` message
/// naming the field that is wrong.
pub(crate) fn complete_initialize(message: &mut Map<String, Value>) -> Result<Vec<&'static str>, String> {
    let Some(params) = message.get_mut("params") else {
        return Err("`params` is required (with at least `protocolVersion`)".to_owned());
    };
    let Value::Object(params) = params else {
        return Err("`params` must be an object".to_owned());
    };
    let mut filled = Vec::new();
    if !params.contains_key("capabilities") {
        params.insert("capabilities".to_owned(), json!({}));
        filled.push("capabilities");
    }
    if !params.contains_key("clientInfo") {
        let (name, version) = UNKNOWN_CLIENT;
        params.insert("clientInfo".to_owned(), json!({"name": name, "version": version}));
        filled.push("clientInfo");
    }
    match params.get("protocolVersion") {
        None => return Err("`params.protocolVersion` is required".to_owned()),
        Some(v) => check::<ProtocolVersion>("params.protocolVersion", v)?,
    }
    if let Some(v) = params.get("capabilities") {
        check::<ClientCapabilities>("params.capabilities", v)?;
    }
    if let Some(v) = params.get("clientInfo") {
        check::<Implementation>("params.clientInfo", v)?;
    }
    // The last word is rmcp's own: whatever its typed parse would not read as an
    // `initialize` (a bad `_meta`, say) is refused here rather than as "method not found".
    match serde_json::from_value::<ClientJsonRpcMessage>(Value::Object(message.clone())) {
        Ok(ClientJsonRpcMessage::Request(r)) if matches!(r.request, ClientRequest::InitializeRequest(_)) => Ok(filled),
        Ok(_) => Err("`initialize` must be a JSON-RPC request with an `id`".to_owned()),
        Err(e) => Err(format!("the initialize request is invalid: {e}")),
    }
}

/// Checks the `params` of a request for a method Tessera serves, where rmcp would otherwise
/// read a malformed one as an unknown method (`-32601`): `params` is an object when present,
/// and `tools/call` names its tool with a string and passes its arguments as an object. The
/// error names the field (for `-32602`). Cheap field checks, not a second typed parse: this
/// runs on every request.
pub(crate) fn check_params(method: &str, message: &Map<String, Value>) -> Result<(), String> {
    let params = match message.get("params") {
        None | Some(Value::Null) if method == "tools/call" => {
            return Err("`params` is required (with at least `name`)".to_owned());
        }
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(params)) => params,
        Some(_) => return Err("`params` must be an object".to_owned()),
    };
    if matches!(method, "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list")
        && params.get("cursor").is_some_and(|c| !c.is_string() && !c.is_null())
    {
        return Err("`params.cursor` must be a string".to_owned());
    }
    if method == "tools/call" {
        match params.get("name") {
            None => return Err("`params.name` is required".to_owned()),
            Some(Value::String(_)) => {}
            Some(_) => return Err("`params.name` must be a string".to_owned()),
        }
        if params.get("arguments").is_some_and(|a| !a.is_object() && !a.is_null()) {
            return Err("`params.arguments` must be an object".to_owned());
        }
    }
    Ok(())
}

/// Whether `value` reads as a `T`; the error names `field`.
fn check<T: DeserializeOwned>(field: &str, value: &Value) -> Result<(), String> {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("`{field}` is invalid: {e}")),
    }
}

/// `/mcp/sse`: the HTTP+SSE transport of protocol 2024-11-05, which rmcp-actix-web does not
/// offer (its `legacy-transport` is an older Streamable HTTP, not SSE). The answer is a 405
/// that names the endpoint to use instead of a bare 404. `Allow` is empty: the resource allows
/// no method (RFC 9110 §10.2.1).
pub(crate) async fn sse_not_supported(state: actix_web::web::Data<McpState>) -> HttpResponse {
    let endpoint = state.config().resource();
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, ""))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "error": tessera_core::ErrorCode::SseTransportNotSupported,
            "message": format!(
                "Tessera speaks MCP over Streamable HTTP only: POST JSON-RPC messages to {endpoint} \
                 (the HTTP+SSE transport at /mcp/sse is not served)"
            ),
            "details": {"endpoint": endpoint, "transport": "streamable-http"},
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(params: Value) -> Map<String, Value> {
        let Value::Object(m) = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn the_guides_initialize_gets_capabilities_and_client_info_filled_in() {
        let mut m = message(json!({"protocolVersion": "2025-06-18"}));
        assert_eq!(complete_initialize(&mut m), Ok(vec!["capabilities", "clientInfo"]));
        assert_eq!(m["params"]["capabilities"], json!({}));
        assert_eq!(m["params"]["clientInfo"]["name"], "unknown-client");
    }

    #[test]
    fn a_complete_initialize_is_left_alone() {
        let params = json!({"protocolVersion": "2025-06-18", "capabilities": {"roots": {}}, "clientInfo": {"name": "c", "version": "1"}});
        let mut m = message(params.clone());
        assert_eq!(complete_initialize(&mut m), Ok(vec![]));
        assert_eq!(m["params"], params);
    }

    #[test]
    fn malformed_fields_are_named() {
        for (params, field) in [
            (json!({"protocolVersion": "2025-06-18", "clientInfo": {"name": "c"}}), "params.clientInfo"),
            (json!({"protocolVersion": "2025-06-18", "clientInfo": "c"}), "params.clientInfo"),
            (json!({"protocolVersion": "2025-06-18", "clientInfo": null}), "params.clientInfo"),
            (json!({"protocolVersion": "2025-06-18", "capabilities": []}), "params.capabilities"),
            (json!({"protocolVersion": 2025}), "params.protocolVersion"),
            (json!({"capabilities": {}}), "params.protocolVersion"),
        ] {
            let err = complete_initialize(&mut message(params.clone())).unwrap_err();
            assert!(err.contains(&format!("`{field}`")), "{params}: {err}");
        }
        let mut no_params = message(json!(null));
        no_params.remove("params");
        assert!(complete_initialize(&mut no_params).unwrap_err().contains("`params`"));
    }
}
