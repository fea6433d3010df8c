//! The JSON-RPC facts of a request body the gateway decides on (method, id, tool or
//! resource name), read in one pass without building a `serde_json::Value` of the whole
//! message: arguments and other fields are skipped, not stored (a tree of the body was a
//! measured 7% of a gateway request's instructions).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The JSON-RPC facts of a POST body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rpc {
    /// `method`, when it is a string.
    pub method: Option<String>,
    /// `id`, as sent (echoed in answers the gateway writes itself).
    pub id: Option<Value>,
    /// `params.name` (`tools/call`, `prompts/get`) or else `params.uri` (`resources/read`).
    pub name: Option<String>,
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RpcError {
    /// Not JSON.
    Parse,
    /// JSON, but not one object (a batch, a string, ...).
    NotObject,
}

/// Reads `body` as one JSON-RPC message. As with a `Value`, a repeated key counts once, the
/// last time; a non-string `method`, `name` or `uri` is as good as absent.
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
    let rpc = de.deserialize_map(MessageVisitor).map_err(|_| RpcError::Parse)?;
    de.end().map_err(|_| RpcError::Parse)?;
    Ok(rpc)
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

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Rpc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rpc, A::Error> {
        let mut rpc = Rpc::default();
        let mut params = Params::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "method" => rpc.method = map.next_value::<MaybeString>()?.0,
                "id" => rpc.id = Some(map.next_value::<Value>()?),
                "params" => params = map.next_value::<Params>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // A `name` that is there but not a string hides `uri`, as `get("name").or(get("uri"))` did.
        rpc.name = match params.name {
            Some(name) => name,
            None => params.uri.flatten(),
        };
        Ok(rpc)
    }
}

/// `params.name` and `params.uri` when present (inner `None`: present, not a string); any
/// other `params` value (an array, a string) has neither.
#[derive(Default)]
struct Params {
    name: Option<Option<String>>,
    uri: Option<Option<String>>,
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
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => params.name = Some(map.next_value::<MaybeString>()?.0),
                "uri" => params.uri = Some(map.next_value::<MaybeString>()?.0),
                _ => {
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

    /// What the gateway read from a `Value` before this module: the reference behaviour.
    fn by_value(body: &[u8]) -> Result<Rpc, RpcError> {
        let message: Value = serde_json::from_slice(body).map_err(|_| RpcError::Parse)?;
        let Value::Object(object) = &message else { return Err(RpcError::NotObject) };
        let method = object.get("method").and_then(Value::as_str).map(str::to_owned);
        let params = object.get("params");
        let name =
            params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str).map(str::to_owned);
        Ok(Rpc { method, id: object.get("id").cloned(), name })
    }

    #[test]
    fn reads_what_a_value_tree_would_read() {
        let bodies: &[&str] = &[
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","name":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#,
            r#"{"params":{"uri":"u","name":"n"},"method":"prompts/get","id":null}"#,
            r#"{"method":"tools/call","method":"tools/list","id":1}"#,
            r#"{"method":7,"params":{"name":["x"]}}"#,
            r#"{"method":"x","params":["echo","uri"]}"#,
            r#"{"method":"x","params":"echo"}"#,
            r#"{"method":"resources/read","params":{"name":5,"uri":"file:///x"}}"#,
            r#"{"method":"resources/read","params":{"uri":"file:///x","name":"n","params":1}}"#,
            r#"{"method":"x","params":{"name":"a"},"params":{"uri":"b"}}"#,
            r#"{"method":"notifications/initialized"}"#,
            r#"  {"id":{"nested":[1,2]},"method":"m"}  "#,
            r#"{"method":"tools/call","params":{"name":"\u0065cho"}}"#,
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
    fn keeps_the_id_as_sent() {
        let rpc = parse(br#"{"id":{"k":[1,"2"]},"method":"m"}"#).unwrap();
        assert_eq!(rpc.id, Some(json!({"k": [1, "2"]})));
    }
}
