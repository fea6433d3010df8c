//! What a token may see of an upstream's answers: the authorization of each JSON-RPC
//! request, and `tools/list` answers cut down to the tools the token may call, in a JSON body
//! or in the one SSE event answering that request (every other event passes untouched).

use std::collections::HashMap;

use serde_json::Value;
use tessera_core::catalog::ServerName;
use tessera_core::pins::{PinChange, PinDigest, change};
use tessera_core::scope::ScopeSet;
use tessera_core::upstream::{ToolAccess, tool_permission};
use tessera_tokens::ToolPins;

/// Scope every `tools/call` also needs, as on the built-in server (core's one constant).
pub const EXECUTE: &str = tessera_core::scope::EXECUTE_MCP;

/// Tool classes known for a server (overrides, else discovered hints); an unknown tool is
/// write-class, the conservative default.
#[derive(Debug, Default, Clone)]
pub struct Classes(pub HashMap<String, ToolAccess>);

impl Classes {
    /// The class of `tool`.
    pub fn of(&self, tool: &str) -> ToolAccess {
        self.0.get(tool).copied().unwrap_or(ToolAccess::Write)
    }
}

/// Why a request is refused before it reaches the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `insufficient_scope` naming the scopes that would allow it.
    Scope(String),
    /// The tool is hidden and the token could call a tool the gateway does not know: answered
    /// as the upstream answers an unknown tool.
    Hidden,
    /// Not a method the gateway forwards (unknown, or misspelt such as `Tools/Call`):
    /// JSON-RPC -32601 "Method not found".
    UnknownMethod,
    /// `logging/setLevel` from a token without `read:S`: answered by the gateway with an
    /// empty result and never forwarded. Clients send it by design right after connecting
    /// (the MCP Inspector does when the server announces logging); refusing it would cut off
    /// a `call:S/TOOL` token, while forwarding it would let that token tune the upstream's
    /// session.
    AnsweredHere,
}

/// Methods any token for the server may send: the handshake, `ping`, and the notifications
/// a client sends.
const OPEN_METHODS: &[&str] = &[
    "initialize",
    "server/discover",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/tasks/status",
];

/// Methods that need `read:S`: resources, prompts, completion, the log level and tasks.
const READ_METHODS: &[&str] = &[
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "tasks/get",
    "tasks/result",
    "tasks/cancel",
    "tasks/list",
];

/// May a token with `effective` scopes send `method` (with tool `name` for `tools/call`) to
/// `server`? Methods are allowed by exact name, anything else is [`Refusal::UnknownMethod`]
/// (an upstream might read `Tools/Call` as a call no one authorized). The handshake, `ping`
/// and notifications need only a token for the server; listing tools needs some scope on
/// the server; resources, prompts, completion and tasks need `read:S`; `logging/setLevel`
/// reaches the upstream only with `read:S` (else [`Refusal::AnsweredHere`]).
pub fn authorize(
    effective: &ScopeSet,
    server: &ServerName,
    method: &str,
    name: Option<&str>,
    classes: &Classes,
) -> Result<(), Refusal> {
    let read = format!("read:{server}");
    match method {
        "tools/call" => {
            let tool = name.unwrap_or_default();
            let class = classes.of(tool);
            // A hidden tool is judged as one the gateway has never seen (write-class), so that
            // its refusal is the very refusal of a tool that does not exist.
            let hidden = class == ToolAccess::Hidden;
            let judged = if hidden { ToolAccess::Write } else { class };
            let mut missing = Vec::new();
            if !effective.covers(EXECUTE) {
                missing.push(EXECUTE.to_owned());
            }
            if let Err(Some(scope)) = tool_permission(effective, server, tool, judged) {
                missing.push(scope);
            }
            match (missing.is_empty(), hidden) {
                (false, _) => Err(Refusal::Scope(missing.join(" "))),
                (true, true) => Err(Refusal::Hidden),
                (true, false) => Ok(()),
            }
        }
        "tools/list" => {
            let prefix = format!("call:{server}/");
            let any = effective.covers(&read) || effective.iter().any(|s| s.as_str().starts_with(&prefix));
            if any { Ok(()) } else { Err(Refusal::Scope(read)) }
        }
        "logging/setLevel" => {
            if effective.covers(&read) {
                Ok(())
            } else {
                Err(Refusal::AnsweredHere)
            }
        }
        m if READ_METHODS.contains(&m) => {
            if effective.covers(&read) {
                Ok(())
            } else {
                Err(Refusal::Scope(read))
            }
        }
        m if OPEN_METHODS.contains(&m) => Ok(()),
        _ => Err(Refusal::UnknownMethod),
    }
}

/// A tool as a listing showed it, for discovery and pinning.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenTool {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its `readOnlyHint`.
    pub read_only_hint: Option<bool>,
    /// The tool as served, when its definition is news to the pins (to pin or to hold).
    pub news: Option<Value>,
}

/// What the pins make of a tool served with definition digest `served`: whether a listing
/// may show it (the pinned definition, not held), and whether it is news to record. The one
/// check both listing paths (`list.rs` and [`filter_tools`]) make.
pub(crate) fn pin_verdict(pins: &ToolPins, name: &str, served: &PinDigest) -> (bool, bool) {
    let view = pins.view(name);
    (view.shows(served), change(&view, served) != PinChange::Keep)
}

/// Keeps the tools of a `tools/list` result the token may call and whose definition is the
/// pinned one; returns whether anything changed. `seen` receives every tool for discovery.
pub fn filter_tools(
    message: &mut Value,
    effective: &ScopeSet,
    server: &ServerName,
    classes: &Classes,
    pins: &ToolPins,
    seen: &mut Vec<SeenTool>,
) -> bool {
    let Some(tools) = message.get_mut("result").and_then(|r| r.get_mut("tools")).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = tools.len();
    let mut keep = Vec::with_capacity(before);
    for tool in tools.iter() {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            keep.push(false);
            continue;
        };
        let description = tool.get("description").and_then(Value::as_str).map(str::to_owned);
        let hint = tool.get("annotations").and_then(|a| a.get("readOnlyHint")).and_then(Value::as_bool);
        let served = tessera_core::pins::digest(&tessera_core::pins::definition(tool));
        let (shows, news) = pin_verdict(pins, name, &served);
        // The class: the override, else the hint this very answer gives.
        let class = classes.0.get(name).copied().unwrap_or(ToolAccess::effective(None, hint));
        keep.push(shows && tool_permission(effective, server, name, class).is_ok());
        let news = news.then(|| tool.clone());
        seen.push(SeenTool { name: name.to_owned(), description, read_only_hint: hint, news });
    }
    let mut kept = keep.into_iter();
    tools.retain(|_| kept.next().unwrap_or(false));
    tools.len() != before
}

/// Splits an SSE byte stream into whole events (ending in a blank line) as they arrive.
#[derive(Debug, Default)]
pub struct SseEvents {
    buf: Vec<u8>,
}

/// Longest SSE event held while waiting for its end.
pub const MAX_EVENT_BYTES: usize = 32 * 1024 * 1024;

impl SseEvents {
    /// Adds bytes; returns the complete events now available (each with its blank line), or
    /// `None` when one event grew past [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, chunk: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.buf) {
            let rest = self.buf.split_off(end);
            out.push(std::mem::replace(&mut self.buf, rest));
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return None;
        }
        Some(out)
    }

    /// What is left when the stream ends (an unterminated last event).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i.saturating_add(2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i.saturating_add(4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The JSON-RPC message of an SSE event (its `data:` lines joined), if it has one.
pub fn event_data(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

/// The event with its `data:` replaced by `message` (its `id:` and `event:` lines kept).
pub fn rewrite_event(event: &[u8], message: &Value) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with("data:")) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gh() -> ServerName {
        ServerName::parse("gh").unwrap()
    }

    fn eff(s: &str) -> ScopeSet {
        ScopeSet::parse_lenient(s).expand()
    }

    fn list() -> Value {
        json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [
            {"name": "list", "annotations": {"readOnlyHint": true}},
            {"name": "delete"},
            {"name": "secret", "annotations": {"readOnlyHint": true}},
        ]}})
    }

    fn names(v: &Value) -> Vec<&str> {
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
    }

    fn hidden_secret() -> Classes {
        Classes([("secret".to_owned(), ToolAccess::Hidden)].into())
    }

    #[test]
    fn read_scope_lists_read_tools_only_and_never_hidden_ones() {
        let mut v = list();
        assert!(filter_tools(&mut v, &eff("read:gh"), &gh(), &hidden_secret(), &ToolPins::default(), &mut Vec::new()));
        assert_eq!(names(&v), ["list"]);
    }

    #[test]
    fn write_scope_lists_every_visible_tool() {
        let mut v = list();
        filter_tools(&mut v, &eff("write:gh"), &gh(), &hidden_secret(), &ToolPins::default(), &mut Vec::new());
        assert_eq!(names(&v), ["list", "delete"]);
    }

    #[test]
    fn call_scope_lists_that_tool_only() {
        let mut v = list();
        filter_tools(&mut v, &eff("call:gh/delete"), &gh(), &Classes::default(), &ToolPins::default(), &mut Vec::new());
        assert_eq!(names(&v), ["delete"]);
    }

    #[test]
    fn calling_needs_execute_and_the_tools_scope_named_on_refusal() {
        let classes = Classes::default();
        assert_eq!(
            authorize(&eff("write:gh"), &gh(), "tools/call", Some("delete"), &classes),
            Err(Refusal::Scope(EXECUTE.into()))
        );
        assert_eq!(
            authorize(&eff("read:gh execute:mcp"), &gh(), "tools/call", Some("delete"), &classes),
            Err(Refusal::Scope("write:gh".into()))
        );
        assert_eq!(
            authorize(&eff("call:gh/delete execute:mcp"), &gh(), "tools/call", Some("delete"), &classes),
            Ok(())
        );
    }

    #[test]
    fn a_hidden_tool_is_refused_to_everyone() {
        let r = authorize(&eff("mcp:admin"), &gh(), "tools/call", Some("secret"), &hidden_secret());
        assert_eq!(r, Err(Refusal::Hidden));
    }

    #[test]
    fn a_hidden_tool_is_refused_exactly_as_a_tool_that_does_not_exist() {
        for scopes in ["read:gh execute:mcp", "read:gh", "call:gh/list execute:mcp", "write:gh", "write:gh execute:mcp"]
        {
            let hidden = authorize(&eff(scopes), &gh(), "tools/call", Some("secret"), &hidden_secret());
            let absent = authorize(&eff(scopes), &gh(), "tools/call", Some("nothing"), &hidden_secret());
            match (hidden, absent) {
                // What the token lacks for an unknown tool, it lacks for the hidden one.
                (Err(Refusal::Scope(h)), Err(Refusal::Scope(a))) => assert_eq!(h, a, "{scopes}"),
                // Allowed to reach an unknown tool: the hidden one is answered as unknown.
                (Err(Refusal::Hidden), Ok(())) => {}
                other => panic!("{scopes}: {other:?}"),
            }
        }
    }

    #[test]
    fn methods_are_allowed_by_exact_name_only() {
        let c = Classes::default();
        let call_only = eff("call:gh/list execute:mcp");
        for method in ["initialize", "ping", "notifications/initialized", "notifications/cancelled", "tools/list"] {
            assert_eq!(authorize(&call_only, &gh(), method, None, &c), Ok(()), "{method}");
        }
        assert_eq!(authorize(&call_only, &gh(), "tools/call", Some("list"), &c), Ok(()));
        for method in ["resources/read", "prompts/list", "completion/complete", "tasks/list", "tasks/get"] {
            assert_eq!(
                authorize(&call_only, &gh(), method, None, &c),
                Err(Refusal::Scope("read:gh".into())),
                "{method}"
            );
            assert_eq!(authorize(&eff("read:gh"), &gh(), method, None, &c), Ok(()), "{method}");
        }
        assert_eq!(authorize(&call_only, &gh(), "logging/setLevel", None, &c), Err(Refusal::AnsweredHere));
        assert_eq!(authorize(&eff("read:gh"), &gh(), "logging/setLevel", None, &c), Ok(()));
        for method in ["Tools/Call", "tools/call ", "TOOLS/LIST", "tasks/delete", "notifications/whatever", "x", ""] {
            assert_eq!(
                authorize(&eff("mcp:admin"), &gh(), method, Some("list"), &c),
                Err(Refusal::UnknownMethod),
                "{method}"
            );
        }
    }

    #[test]
    fn resources_and_prompts_need_read_and_call_scopes_do_not_give_it() {
        let c = Classes::default();
        assert_eq!(authorize(&eff("read:gh"), &gh(), "resources/read", None, &c), Ok(()));
        assert_eq!(authorize(&eff("call:gh/x"), &gh(), "prompts/get", None, &c), Err(Refusal::Scope("read:gh".into())));
        assert_eq!(authorize(&eff("call:gh/x"), &gh(), "tools/list", None, &c), Ok(()));
        assert_eq!(authorize(&eff("read:other"), &gh(), "tools/list", None, &c), Err(Refusal::Scope("read:gh".into())));
    }

    #[test]
    fn sse_events_come_out_whole_as_they_complete() {
        let mut sse = SseEvents::default();
        assert!(sse.push(b"event: message\ndata: {\"a\"").unwrap().is_empty());
        let events = sse.push(b":1}\n\ndata: {}\n\nda").unwrap();
        assert_eq!(events, [b"event: message\ndata: {\"a\":1}\n\n".to_vec(), b"data: {}\n\n".to_vec()]);
        assert_eq!(sse.finish(), b"da");
    }

    #[test]
    fn an_event_is_rewritten_keeping_its_id_and_type() {
        let event = b"id: 7\nevent: message\ndata: {\"x\":1}\n\n";
        assert_eq!(event_data(event).unwrap(), json!({"x": 1}));
        let out = rewrite_event(event, &json!({"y": 2}));
        assert_eq!(out, b"id: 7\nevent: message\ndata: {\"y\":2}\n\n");
    }
}
