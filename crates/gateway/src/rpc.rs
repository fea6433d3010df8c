//! The JSON-RPC facts of a request body the gateway decides on (method, id, tool or
//! resource name), read in one pass without building a `serde_json::Value` of the whole
//! message: arguments and other fields are skipped, not stored (a tree of the body was a
//! measured 7% of a gateway request's instructions).
//!
//! The gateway authorizes what it reads here and forwards the raw bytes, so the upstream must
//! not be able to read anything else out of them. Parsers differ: Go's `encoding/json` matches
//! keys case-insensitively and by Unicode simple case folding (`ſ` is `s`, the Kelvin sign `K`
//! is `k`), others take the first of two equal keys where serde takes the last. So a message
//! is refused (never forwarded) when, at the top level or in `params`, a key repeats or
//! differs from a JSON-RPC/MCP field only by case or folding (`Method`, `paramſ`), when its
//! `id` is not a string, an integer or null (`1.0` is answered as `1` by some SDKs), and when
//! it is neither a request (a string `method`) nor a response (`result` or `error`).
//! Exact field names are matched first; only the other keys are folded.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

/// The JSON-RPC facts of a POST body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rpc {
    /// `method` (a request or notification); `None` for a response.
    pub method: Option<String>,
    /// `id`, as sent (echoed in answers the gateway writes itself).
    pub id: Option<Value>,
    /// `params.name` (`tools/call`, `prompts/get`) or else `params.uri` (`resources/read`).
    pub name: Option<String>,
    /// `params.taskId` (`tasks/get`, `tasks/result`, `tasks/cancel`), when a string.
    pub task_id: Option<String>,
    /// Whether `params` has `task`: a task-augmented request (MCP 2025-11-25).
    pub task: bool,
}

/// Why a body is not one JSON-RPC message the gateway forwards.
#[derive(Debug, PartialEq)]
pub(crate) enum RpcError {
    /// Not JSON.
    Parse,
    /// JSON, but not one object (a batch, a string, ...).
    NotObject,
    /// One object, but one an upstream could read otherwise than the gateway does.
    Invalid {
        /// The request's id, when it is known and well formed.
        id: Option<Value>,
        /// What is wrong.
        flaw: Flaw,
    },
}

/// What makes a JSON-RPC object invalid here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// A key appears twice (at the top level or in `params`).
    DuplicateKey,
    /// A key differs from a JSON-RPC or MCP field only by case or Unicode case folding.
    LookalikeKey,
    /// `id` is not a string, an integer or null (`1.0`, `1e0`, `true`, an object).
    Id,
    /// `method` is there but not a string.
    MethodNotString,
    /// Neither a request (`method`) nor a response (`result` or `error`).
    Neither,
    /// Both a request and a response.
    Both,
}

impl Flaw {
    fn message(self) -> &'static str {
        match self {
            Self::DuplicateKey => "a key appears more than once",
            Self::LookalikeKey => "a key differs from a JSON-RPC or MCP field only by case",
            Self::Id => "the id must be a string or an integer",
            Self::MethodNotString => "the method must be a string",
            Self::Neither => "a message needs a method, or a result or error",
            Self::Both => "a message is a request or a response, not both",
        }
    }
}

impl RpcError {
    /// The 400 answer, in JSON-RPC form: -32700 for a parse error, else -32600 echoing the id
    /// when it is known.
    pub(crate) fn response(&self) -> HttpResponse {
        let (id, code, message) = match self {
            Self::Parse => (None, -32700, "Parse error: the body is not valid JSON".to_owned()),
            Self::NotObject => (
                None,
                -32600,
                "Invalid Request: a JSON-RPC message must be one object (batches are not supported)".to_owned(),
            ),
            Self::Invalid { id, flaw } => (id.as_ref(), -32600, format!("Invalid Request: {}", flaw.message())),
        };
        HttpResponse::BadRequest()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
    }
}

/// The answer to a method the gateway does not forward (unknown, or misspelt such as
/// `Tools/Call`): JSON-RPC -32601 in a 200, as upstream servers answer it, so a client's SDK
/// shows the error (2025-era SDKs show only "HTTP 400" for a 400). A notification has no id
/// to answer; Streamable HTTP wants an HTTP error status for input a server does not accept,
/// so it is a 400 with the same error and a null id.
pub(crate) fn method_not_found(method: &str, id: Option<&Value>) -> HttpResponse {
    let mut res = match id {
        Some(_) => HttpResponse::Ok(),
        None => HttpResponse::BadRequest(),
    };
    res.insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "jsonrpc": "2.0", "id": id,
        "error": {"code": -32601, "message": "Method not found", "data": {"method": method}},
    }))
}

/// The answer to a call of a held tool (issue #26): its definition upstream is not the
/// pinned one (or it is new and the server holds new tools), so the call never reaches the
/// upstream. A JSON-RPC error naming `tool_changed` and the tool; handshake-era clients get
/// it in a 200, as other in-band refusals (their SDKs show a JSON-RPC error only from a 200),
/// stateless-era clients (and a message without an id) a 403.
pub(crate) fn tool_changed(tool: &str, id: Option<&Value>, protocol_version: Option<&str>) -> HttpResponse {
    let stateless = protocol_version.is_some_and(|v| v >= tessera_core::upstream::STATELESS_ERA);
    let mut res = if id.is_some() && !stateless { HttpResponse::Ok() } else { HttpResponse::Forbidden() };
    let code = tessera_core::ErrorCode::ToolChanged;
    res.insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "jsonrpc": "2.0", "id": id,
        "error": {
            "code": -32000,
            "message": format!("{code}: tool {tool} is held: its definition changed upstream (or it is new) and an administrator must approve it"),
            "data": {"error": code, "tool": tool},
        },
    }))
}

/// Reads `body` as one JSON-RPC message the gateway can judge exactly as any upstream would.
pub(crate) fn parse(body: &[u8]) -> Result<Rpc, RpcError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        // Valid JSON that is not an object is not a message; anything else is a parse error.
        return match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => Err(RpcError::NotObject),
            Err(_) => Err(RpcError::Parse),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = de.deserialize_map(MessageVisitor).map_err(|_| RpcError::Parse)?;
    de.end().map_err(|_| RpcError::Parse)?;
    read.map_err(|(id, flaw)| RpcError::Invalid { id, flaw })
}

/// JSON-RPC fields of a message (indexes below are positions in this list).
const TOP: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];
const ID: usize = 1;
const METHOD: usize = 2;
const PARAMS: usize = 3;
const RESULT: usize = 4;
const ERROR: usize = 5;

/// MCP fields of a client's `params` (indexes below are positions in this list).
const PARAM_FIELDS: &[&str] = &[
    "name",
    "uri",
    "arguments",
    "cursor",
    "_meta",
    "task",
    "taskId",
    "protocolVersion",
    "capabilities",
    "clientInfo",
    "level",
    "ref",
    "argument",
    "context",
    "requestId",
    "reason",
    "progressToken",
    "progress",
    "total",
    "message",
    "ttl",
];
const NAME: usize = 0;
const URI: usize = 1;
const TASK: usize = 5;
const TASK_ID: usize = 6;

/// The keys of one object seen so far: known fields as bits, others (rare) in a set, so a
/// long object costs no quadratic search.
#[derive(Default)]
struct Keys<'de> {
    known: u64,
    others: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Keys<'de> {
    /// Which of `fields` `key` is (`None`: none of them), or why the object is refused.
    fn see(&mut self, key: Cow<'de, str>, fields: &[&str]) -> Result<Option<usize>, Flaw> {
        if let Some(i) = fields.iter().position(|f| *f == key) {
            let bit = 1u64 << i;
            if self.known & bit != 0 {
                return Err(Flaw::DuplicateKey);
            }
            self.known |= bit;
            return Ok(Some(i));
        }
        if fields.iter().any(|f| folds_to(&key, f)) {
            return Err(Flaw::LookalikeKey);
        }
        if !self.others.get_or_insert_with(HashSet::new).insert(key) {
            return Err(Flaw::DuplicateKey);
        }
        Ok(None)
    }
}

/// Whether `key` matches the ASCII `field` under ASCII case-insensitivity and Unicode simple
/// case folding: the only non-ASCII characters that fold to ASCII letters are `ſ` (U+017F, to
/// `s`) and the Kelvin sign (U+212A, to `k`), as Go's `encoding/json` matches them.
fn folds_to(key: &str, field: &str) -> bool {
    let mut chars = key.chars();
    for want in field.bytes() {
        let folded = match chars.next() {
            None => return false,
            Some('\u{017F}') => b's',
            Some('\u{212A}') => b'k',
            Some(c) if c.is_ascii() => (c as u8).to_ascii_lowercase(),
            Some(_) => return false,
        };
        if folded != want.to_ascii_lowercase() {
            return false;
        }
    }
    chars.next().is_none()
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A string, or `None` for any other JSON value (read and dropped).
struct MaybeString(Option<String>);

impl<'de> de::Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(Some(s))),
            _ => Ok(Self(None)),
        }
    }
}

/// Whether `id` is one an upstream reads back exactly: a string, an integer, or null.
fn well_formed_id(id: &Value) -> bool {
    match id {
        Value::String(_) | Value::Null => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Result<Rpc, (Option<Value>, Flaw)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rpc = Rpc::default();
        let mut params = Params::default();
        let mut keys = Keys::default();
        // The first flaw found; reading goes on to learn the id.
        let mut flaw = None;
        let (mut method, mut response) = (false, false);
        while let Some(Key(key)) = map.next_key()? {
            match keys.see(key, TOP) {
                Ok(Some(METHOD)) => {
                    method = true;
                    rpc.method = map.next_value::<MaybeString>()?.0;
                    if rpc.method.is_none() {
                        flaw = flaw.or(Some(Flaw::MethodNotString));
                    }
                }
                Ok(Some(ID)) => {
                    let id = map.next_value::<Value>()?;
                    if well_formed_id(&id) {
                        rpc.id = Some(id);
                    } else {
                        flaw = flaw.or(Some(Flaw::Id));
                    }
                }
                Ok(Some(PARAMS)) => params = map.next_value::<Params>()?,
                Ok(Some(RESULT | ERROR)) => {
                    response = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Err(f) => {
                    flaw = flaw.or(Some(f));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let flaw = flaw.or(params.flaw).or(match (method, response) {
            (false, false) => Some(Flaw::Neither),
            (true, true) => Some(Flaw::Both),
            _ => None,
        });
        if let Some(flaw) = flaw {
            return Ok(Err((rpc.id, flaw)));
        }
        // A `name` that is there but not a string hides `uri`, as `get("name").or(get("uri"))` did.
        rpc.name = match params.name {
            Some(name) => name,
            None => params.uri.flatten(),
        };
        rpc.task_id = params.task_id;
        rpc.task = params.task;
        Ok(Ok(rpc))
    }
}

/// `params.name` and `params.uri` when present (inner `None`: present, not a string), and the
/// first flaw of its keys; any other `params` value (an array, a string) has neither.
#[derive(Default)]
struct Params {
    name: Option<Option<String>>,
    uri: Option<Option<String>>,
    task_id: Option<String>,
    task: bool,
    flaw: Option<Flaw>,
}

impl<'de> de::Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON-RPC params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut params = Params::default();
        let mut keys = Keys::default();
        while let Some(Key(key)) = map.next_key()? {
            match keys.see(key, PARAM_FIELDS) {
                Ok(Some(NAME)) => params.name = Some(map.next_value::<MaybeString>()?.0),
                Ok(Some(URI)) => params.uri = Some(map.next_value::<MaybeString>()?.0),
                Ok(Some(TASK_ID)) => params.task_id = map.next_value::<MaybeString>()?.0,
                Ok(Some(TASK)) => {
                    params.task = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Err(f) => {
                    params.flaw = params.flaw.or(Some(f));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(params)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Params::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Params, E> {
        Ok(Params::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the gateway read from a `Value` before this module: the reference behaviour for
    /// every message it accepts.
    fn by_value(body: &[u8]) -> Result<Rpc, RpcError> {
        let message: Value = serde_json::from_slice(body).map_err(|_| RpcError::Parse)?;
        let Value::Object(object) = &message else { return Err(RpcError::NotObject) };
        let method = object.get("method").and_then(Value::as_str).map(str::to_owned);
        let params = object.get("params");
        let name =
            params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str).map(str::to_owned);
        let task_id = params.and_then(|p| p.get("taskId")).and_then(Value::as_str).map(str::to_owned);
        let task = params.and_then(Value::as_object).is_some_and(|p| p.contains_key("task"));
        Ok(Rpc { method, id: object.get("id").cloned(), name, task_id, task })
    }

    fn flaw(body: &str) -> Option<Flaw> {
        match parse(body.as_bytes()) {
            Err(RpcError::Invalid { flaw, .. }) => Some(flaw),
            _ => None,
        }
    }

    #[test]
    fn reads_what_a_value_tree_would_read() {
        let bodies: &[&str] = &[
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","name":"x","Name":"y"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#,
            r#"{"jsonrpc":"2.0","id":"t","method":"tasks/get","params":{"taskId":"t-1"}}"#,
            r#"{"jsonrpc":"2.0","id":"t","method":"tasks/get","params":{"taskId":7}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"peek","task":{"ttl":60000}}}"#,
            r#"{"params":{"uri":"u","name":"n"},"method":"prompts/get","id":null}"#,
            r#"{"method":"x","params":["echo","uri"]}"#,
            r#"{"method":"x","params":"echo"}"#,
            r#"{"method":"resources/read","params":{"name":5,"uri":"file:///x"}}"#,
            r#"{"method":"resources/read","params":{"uri":"file:///x","name":"n","params":1}}"#,
            r#"{"method":"notifications/initialized"}"#,
            r#"  {"id":-7,"method":"m"}  "#,
            r#"{"id":18446744073709551615,"method":"m"}"#,
            r#"{"method":"tools/call","params":{"name":"\u0065cho","x-extra":1,"y-extra":2}}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{"Method":"tools/call","method":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-1,"message":"no"}}"#,
            r#"[{"method":"tools/list"}]"#,
            r#""tools/list""#,
            r#"{"method":"tools/list""#,
            r#"{"method":"tools/list"} {}"#,
            "",
            "nope",
        ];
        for body in bodies {
            assert_eq!(parse(body.as_bytes()), by_value(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn keys_differing_from_a_field_only_by_case_or_folding_are_refused() {
        for body in [
            r#"{"Method":"tools/call","id":1,"params":{"name":"secret"}}"#,
            r#"{"method":"tools/list","METHOD":"tools/call","id":1}"#,
            r#"{"method":"tools/call","id":1,"params":{"name":"echo","Name":"secret"}}"#,
            r#"{"method":"tools/call","id":1,"params":{"name":"echo"},"paramſ":{"name":"secret"}}"#,
            r#"{"method":"tools/call","id":1,"params":{"name":"echo","argument\u017f":{}}}"#,
            r#"{"method":"tasks/get","id":1,"params":{"taskId":"a","tas\u212aId":"b"}}"#,
            r#"{"method":"resources/read","id":1,"params":{"uri":"a","URI":"b"}}"#,
            r#"{"method":"ping","Id":1}"#,
            r#"{"method":"ping","id":1,"Result":{}}"#,
        ] {
            assert_eq!(flaw(body), Some(Flaw::LookalikeKey), "{body}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_the_top_and_in_params() {
        for body in [
            r#"{"method":"tools/call","method":"tools/list","id":1}"#,
            r#"{"method":"tools/call","id":1,"params":{"name":"echo","name":"secret"}}"#,
            r#"{"method":"x","params":{"name":"a"},"params":{"uri":"b"},"id":1}"#,
            r#"{"method":"x","id":1,"id":2}"#,
            r#"{"method":"x","id":1,"\u006dethod":"y"}"#,
            r#"{"method":"x","id":1,"extra":1,"extra":2}"#,
            r#"{"method":"x","id":1,"params":{"extra":1,"extra":2}}"#,
        ] {
            assert_eq!(flaw(body), Some(Flaw::DuplicateKey), "{body}");
        }
    }

    #[test]
    fn an_id_must_be_a_string_an_integer_or_null() {
        for id in ["1.0", "1e0", "1E0", "-1.5", "true", "{\"k\":1}", "[1]"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            assert_eq!(parse(body.as_bytes()), Err(RpcError::Invalid { id: None, flaw: Flaw::Id }), "{body}");
        }
    }

    #[test]
    fn a_message_is_a_request_or_a_response() {
        assert_eq!(flaw(r#"{"id":1,"params":{"name":"secret"}}"#), Some(Flaw::Neither));
        assert_eq!(flaw(r#"{"id":1,"method":7}"#), Some(Flaw::MethodNotString));
        assert_eq!(flaw(r#"{"id":1,"method":null,"result":{}}"#), Some(Flaw::MethodNotString));
        assert_eq!(flaw(r#"{"id":1,"method":"ping","result":{}}"#), Some(Flaw::Both));
        assert_eq!(flaw("{}"), Some(Flaw::Neither));
    }

    #[test]
    fn a_refusal_echoes_the_id_when_it_is_known() {
        let invalid = parse(br#"{"id":"a7","Method":"tools/call"}"#).unwrap_err();
        assert_eq!(invalid, RpcError::Invalid { id: Some(json!("a7")), flaw: Flaw::LookalikeKey });
        let invalid = parse(br#"{"Method":"tools/call","id":9}"#).unwrap_err();
        assert_eq!(invalid, RpcError::Invalid { id: Some(json!(9)), flaw: Flaw::LookalikeKey });
    }

    #[test]
    fn folding_is_ascii_case_and_the_two_letters_that_fold_to_ascii() {
        assert!(folds_to("METHOD", "method"));
        assert!(folds_to("paramſ", "params"));
        assert!(folds_to("\u{212A}", "k"));
        assert!(folds_to("taskid", "taskId"));
        assert!(!folds_to("method", "methods"));
        assert!(!folds_to("methods", "method"));
        assert!(!folds_to("m\u{00E9}thod", "method"));
        assert!(!folds_to("\u{0130}d", "id"));
    }
}
