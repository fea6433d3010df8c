//! Reading just enough of a JSON-RPC message, without building a `serde_json::Value`.
//!
//! The guard needs a few facts from every request (method, tool name, whether `params` has
//! the shapes rmcp would misread) and one from every answer (error or success). Building a
//! `Value` for those was a large share of the guard's instructions (callgrind); these
//! visitors read the same facts while skipping everything else, and the answer scan stops at
//! the first key that decides it, so a `tools/list` answer costs a few dozen bytes however
//! long the list is.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tessera_auth::Outcome;

/// What a JSON value is, read without keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `null`.
    Null,
    /// `{...}`.
    Object,
    /// `"..."`.
    String,
    /// A number, a boolean or an array.
    Other,
}

impl<'de> de::Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Kind::Object)
    }
}

/// A string value matched against a fixed list, or the kind of a non-matching value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    /// One of the list.
    Known(&'static str),
    /// A string not in the list.
    Unknown,
    /// Not a string.
    Not(Kind),
}

/// Reads a [`Word`] against `list` without allocating (escaped strings are unescaped into
/// serde_json's scratch buffer and compared there).
struct WordSeed<'l>(&'l [&'static str]);

impl<'de> DeserializeSeed<'de> for WordSeed<'_> {
    type Value = Word;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Word, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WordSeed<'_> {
    type Value = Word;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, s: &str) -> Result<Word, E> {
        Ok(self.0.iter().find(|w| **w == s).map_or(Word::Unknown, |w| Word::Known(w)))
    }
    fn visit_unit<E>(self) -> Result<Word, E> {
        Ok(Word::Not(Kind::Null))
    }
    fn visit_none<E>(self) -> Result<Word, E> {
        Ok(Word::Not(Kind::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Word, E> {
        Ok(Word::Not(Kind::Other))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Word, E> {
        Ok(Word::Not(Kind::Other))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Word, E> {
        Ok(Word::Not(Kind::Other))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Word, E> {
        Ok(Word::Not(Kind::Other))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Word, A::Error> {
        KindVisitor.visit_seq(seq).map(Word::Not)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Word, A::Error> {
        KindVisitor.visit_map(map).map(Word::Not)
    }
}

/// The facts of a `params` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// What `params` is.
    pub kind: Kind,
    /// `params.name` against the tool list, `None` when absent.
    pub name: Option<Word>,
    /// `params.cursor`'s kind, `None` when absent.
    pub cursor: Option<Kind>,
    /// `params.arguments`'s kind, `None` when absent.
    pub arguments: Option<Kind>,
}

struct ParamsSeed<'l>(&'l [&'static str]);

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut params = Params { kind: Kind::Object, name: None, cursor: None, arguments: None };
        // Later duplicates win, as in a `serde_json::Map`.
        while let Some(key) = map.next_key_seed(WordSeed(&["name", "cursor", "arguments"]))? {
            match key {
                Word::Known("name") => params.name = Some(map.next_value_seed(WordSeed(self.0))?),
                Word::Known("cursor") => params.cursor = Some(map.next_value::<Kind>()?),
                Word::Known("arguments") => params.arguments = Some(map.next_value::<Kind>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(params)
    }
    fn visit_unit<E>(self) -> Result<Params, E> {
        Ok(Params::of(Kind::Null))
    }
    fn visit_none<E>(self) -> Result<Params, E> {
        Ok(Params::of(Kind::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Params, E> {
        Ok(Params::of(Kind::Other))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Params, E> {
        Ok(Params::of(Kind::Other))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Params, E> {
        Ok(Params::of(Kind::Other))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Params, E> {
        Ok(Params::of(Kind::Other))
    }
    fn visit_str<E>(self, _: &str) -> Result<Params, E> {
        Ok(Params::of(Kind::String))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        KindVisitor.visit_seq(seq).map(|_| Params::of(Kind::Other))
    }
}

impl Params {
    fn of(kind: Kind) -> Self {
        Self { kind, name: None, cursor: None, arguments: None }
    }
}

/// The facts of a JSON-RPC message object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// `method` against the known methods, `None` when absent.
    pub method: Option<Word>,
    /// Whether an `id` member is present (any value, `null` included).
    pub has_id: bool,
    /// `params`, `None` when absent.
    pub params: Option<Params>,
}

struct EnvelopeSeed<'l> {
    methods: &'l [&'static str],
    tools: &'l [&'static str],
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope { method: None, has_id: false, params: None };
        while let Some(key) = map.next_key_seed(WordSeed(&["method", "id", "params"]))? {
            match key {
                Word::Known("method") => envelope.method = Some(map.next_value_seed(WordSeed(self.methods))?),
                Word::Known("id") => {
                    map.next_value::<IgnoredAny>()?;
                    envelope.has_id = true;
                }
                Word::Known("params") => envelope.params = Some(map.next_value_seed(ParamsSeed(self.tools))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// Reads a request body as one JSON-RPC message object; `None` when it is anything else
/// (not JSON, a batch, not an object), which the caller then examines the slow way.
pub(crate) fn envelope(body: &[u8], methods: &[&'static str], tools: &[&'static str]) -> Option<Envelope> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = de.deserialize_map(EnvelopeSeed { methods, tools }).ok()?;
    de.end().ok()?;
    Some(envelope)
}

/// How an answer was judged; set by the scan before it stops.
struct Judge<'c> {
    is_call: bool,
    verdict: &'c Cell<Option<Outcome>>,
}

/// Stops the scan once the verdict is in: the error is never shown to anyone.
fn decided<E: de::Error>() -> E {
    E::custom("decided")
}

impl<'de> Visitor<'de> for Judge<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(WordSeed(&["error", "result"]))? {
            match key {
                Word::Known("error") => {
                    self.verdict.set(Some(Outcome::Error));
                    return Err(decided());
                }
                Word::Known("result") if !self.is_call => {
                    self.verdict.set(Some(Outcome::Ok));
                    return Err(decided());
                }
                Word::Known("result") => {
                    let failed = map.next_value_seed(IsError)?;
                    self.verdict.set(Some(if failed { Outcome::Error } else { Outcome::Ok }));
                    // A tool result was read to its end (`isError` comes last): stopping here
                    // with an error would cost more than the little left (serde_json works out
                    // the error's line and column from the start of the answer).
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    return Ok(());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a tool result's `isError` (absent: `false`), skipping its content.
struct IsError;

impl<'de> DeserializeSeed<'de> for IsError {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsError {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tool result")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut failed = false;
        while let Some(key) = map.next_key_seed(WordSeed(&["isError"]))? {
            if key == Word::Known("isError") {
                failed = map.next_value::<Option<bool>>()?.unwrap_or(false);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(failed)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Whether a JSON answer is a success: a JSON-RPC `error`, or for `tools/call` a result with
/// `isError: true`, is an error; anything unreadable counts as a success (rmcp wrote it, and
/// the client gets it either way).
pub(crate) fn judge(answer: &[u8], is_call: bool) -> Outcome {
    let verdict = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(answer);
    let _ = de.deserialize_map(Judge { is_call, verdict: &verdict });
    verdict.get().unwrap_or(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHODS: &[&str] = &["tools/list", "tools/call", "initialize"];
    const TOOLS: &[&str] = &["whoami", "echo"];

    fn env(body: &str) -> Option<Envelope> {
        envelope(body.as_bytes(), METHODS, TOOLS)
    }

    #[test]
    fn a_tool_call_is_read_without_its_arguments() {
        let e = env(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a\"}"}}}"#,
        );
        let e = e.unwrap();
        assert_eq!(e.method, Some(Word::Known("tools/call")));
        assert!(e.has_id);
        let p = e.params.unwrap();
        assert_eq!((p.kind, p.name, p.arguments), (Kind::Object, Some(Word::Known("echo")), Some(Kind::Object)));
    }

    #[test]
    fn unknown_names_and_wrong_kinds_are_told_apart() {
        let e = env(r#"{"method":"x/y","params":{"name":5,"cursor":null}}"#).unwrap();
        assert_eq!(e.method, Some(Word::Unknown));
        assert!(!e.has_id);
        let p = e.params.unwrap();
        assert_eq!((p.name, p.cursor), (Some(Word::Not(Kind::Other)), Some(Kind::Null)));
        let escaped = env(r#"{"id":null,"method":"tools\/list","params":[]}"#).unwrap();
        assert_eq!(escaped.method, Some(Word::Known("tools/list")));
        assert!(escaped.has_id);
        assert_eq!(escaped.params.unwrap().kind, Kind::Other);
    }

    #[test]
    fn batches_non_objects_and_broken_json_are_left_to_the_slow_path() {
        assert_eq!(env(r#"[{"method":"tools/list"}]"#), None);
        assert_eq!(env("42"), None);
        assert_eq!(env(r#"{"method":"tools/list""#), None);
        assert_eq!(env(r#"{"method":"tools/list"} {}"#), None);
    }

    #[test]
    fn answers_are_judged_by_their_first_deciding_key() {
        assert_eq!(judge(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#, false), Outcome::Ok);
        assert_eq!(judge(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601}}"#, false), Outcome::Error);
        // A listing is decided at `result` and never read further, however it continues.
        assert_eq!(judge(br#"{"id":"error","result":{"isError":true}, broken"#, false), Outcome::Ok);
        assert_eq!(judge(br#"{"id":1,"result":{"content":[{"isError":1}],"isError":true}}"#, true), Outcome::Error);
        assert_eq!(judge(br#"{"id":1,"result":{"content":[],"isError":false}}"#, true), Outcome::Ok);
        assert_eq!(judge(br#"{"id":1,"result":{"content":[]}}"#, true), Outcome::Ok);
        assert_eq!(judge(b"not json", true), Outcome::Ok);
    }
}
