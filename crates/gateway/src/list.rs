//! The fast path for a `tools/list` answer in a JSON body: the tools are read as raw slices
//! of the answer, each peeked for its name, description and `readOnlyHint`, and the answer
//! is written again by splicing the kept slices between the bytes around the array. A tree
//! of the whole answer, cut and serialized again, was 100k of a forwarded listing's 273k
//! instructions under callgrind.
//!
//! Each tool's definition digest comes from the server's pins' memo of served texts, so a
//! steady listing parses no tool; a text not seen before is parsed and hashed once.
//!
//! Anything this path does not read exactly as `filter_tools` would (a duplicate key, a tool
//! that is not an object, a name that is not a string) makes it give up, and the caller takes
//! the tree path: the fast path can never show a tool the tree path would hide.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tessera_core::catalog::ServerName;
use tessera_core::scope::ScopeSet;
use tessera_core::upstream::{ToolAccess, tool_permission};

use tessera_tokens::ToolPins;

use crate::filter::{Classes, SeenTool, pin_verdict};

/// What the fast path made of an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Not a tool list (no `result.tools`): pass it on as it is.
    NotAList,
    /// A list the token may see whole.
    Unchanged,
    /// The list without the tools the token may not call.
    Rewritten(Vec<u8>),
}

/// The fast path could not read the answer; use the tree path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unread;

// Objects are taken as raw values and checked to be objects before they are read: serde's
// derive would also read a struct from an array (`["delete"]` as a tool named `delete`),
// where `Value::get` finds nothing. The answer's `id` is read only so that a repeated one
// sends the answer to the tree path, as any other repeated key does.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ListResult<'a> {
    #[serde(borrow)]
    tools: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    annotations: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(rename = "readOnlyHint", default)]
    read_only_hint: Option<bool>,
}

/// Cuts `answer` to the tools `effective` may call on `server`; `seen` receives every tool
/// as `filter_tools` gives it. Any answer carrying `result.tools` is cut, whatever its id:
/// an upstream may write the id of a request otherwise than the client did (`1` for `1.0`),
/// and an answer matched to its request by id would then pass uncut.
pub(crate) fn cut_list(
    answer: &[u8],
    effective: &ScopeSet,
    server: &ServerName,
    classes: &Classes,
    pins: &ToolPins,
    seen: &mut Vec<SeenTool>,
) -> Result<Cut, Unread> {
    if answer.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Unread);
    }
    let message: Message<'_> = serde_json::from_slice(answer).map_err(|_| Unread)?;
    // A `result` that is not an object has no tools, as `Value::get` sees it.
    let Some(result) = message.result.filter(|r| is_object(r)) else { return Ok(Cut::NotAList) };
    let result: ListResult<'_> = serde_json::from_str(result.get()).map_err(|_| Unread)?;
    let Some(tools) = result.tools else { return Ok(Cut::NotAList) };
    let mut kept = Vec::with_capacity(tools.len());
    let mut found = Vec::with_capacity(tools.len());
    for raw in &tools {
        if !is_object(raw) {
            return Err(Unread);
        }
        let tool: Tool<'_> = serde_json::from_str(raw.get()).map_err(|_| Unread)?;
        // Annotations that are not an object give no hint, as `Value::get` sees them.
        let hint = match tool.annotations.filter(|a| is_object(a)) {
            Some(a) => serde_json::from_str::<Annotations>(a.get()).map_err(|_| Unread)?.read_only_hint,
            None => None,
        };
        let class = classes.0.get(tool.name.as_ref()).copied().unwrap_or(ToolAccess::effective(None, hint));
        let served = pins.digest_of_raw(raw.get()).ok_or(Unread)?;
        let (shows, news) = pin_verdict(pins, &tool.name, &served);
        if shows && tool_permission(effective, server, &tool.name, class).is_ok() {
            kept.push(raw.get());
        }
        // News is rare (a first listing, a change): only then is the tool read as a tree.
        let news = if news { Some(serde_json::from_str(raw.get()).map_err(|_| Unread)?) } else { None };
        found.push(SeenTool {
            name: tool.name.into_owned(),
            description: tool.description.map(Cow::into_owned),
            read_only_hint: hint,
            news,
        });
    }
    seen.extend(found);
    if kept.len() == tools.len() {
        return Ok(Cut::Unchanged);
    }
    let (Some(first), Some(last)) = (tools.first(), tools.last()) else { return Ok(Cut::Unchanged) };
    // Where the array's elements begin and end in `answer`: the raw values borrow from it.
    let start = offset_in(answer, first.get()).ok_or(Unread)?;
    let end = offset_in(answer, last.get()).ok_or(Unread)?.checked_add(last.get().len()).ok_or(Unread)?;
    let (head, tail) = (answer.get(..start).ok_or(Unread)?, answer.get(end..).ok_or(Unread)?);
    let mut out = Vec::with_capacity(answer.len());
    out.extend_from_slice(head);
    for (i, tool) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(tool.as_bytes());
    }
    out.extend_from_slice(tail);
    Ok(Cut::Rewritten(out))
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// The offset of `part` within `whole`, if it lies inside it.
fn offset_in(whole: &[u8], part: &str) -> Option<usize> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    let offset = p.checked_sub(w)?;
    (offset.checked_add(part.len())? <= whole.len()).then_some(offset)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::filter::filter_tools;

    /// The tree path, as `ListView::filter` runs it: the reference behaviour.
    fn by_tree(
        answer: &[u8],
        effective: &ScopeSet,
        classes: &Classes,
        pins: &ToolPins,
    ) -> (Option<Value>, Vec<SeenTool>) {
        let mut seen = Vec::new();
        let Ok(mut message) = serde_json::from_slice::<Value>(answer) else { return (None, seen) };
        if message.get("result").and_then(|r| r.get("tools")).is_none() {
            return (None, seen);
        }
        let server = ServerName::parse("gh").unwrap();
        let changed = filter_tools(&mut message, effective, &server, classes, pins, &mut seen);
        (changed.then_some(message), seen)
    }

    /// No pins (a first listing); `list` pinned as served in the first answer and `delete`
    /// pinned as something else (changed), under each policy; `peek` held as new.
    fn pin_sets() -> impl Iterator<Item = ToolPins> {
        use tessera_core::pins::{HoldReason, NewToolPolicy, Pin, definition, digest};
        let pin = |tool: Value, hold| Pin { pinned: digest(&definition(&tool)), hold, served: None };
        let pinned = move |policy| {
            let pins = [
                (
                    "list".to_owned(),
                    pin(serde_json::json!({"name": "list", "annotations": {"readOnlyHint": true}}), None),
                ),
                ("delete".to_owned(), pin(serde_json::json!({"name": "delete", "description": "old"}), None)),
                ("peek".to_owned(), pin(serde_json::json!({"name": "peek"}), Some(HoldReason::New))),
            ];
            ToolPins::new(pins.into(), policy)
        };
        [ToolPins::default(), pinned(NewToolPolicy::Allow), pinned(NewToolPolicy::Hold)].into_iter()
    }

    fn classes() -> Classes {
        Classes([("secret".to_owned(), ToolAccess::Hidden), ("list".to_owned(), ToolAccess::Read)].into())
    }

    #[test]
    fn cuts_exactly_what_the_tree_path_cuts() {
        let server = ServerName::parse("gh").unwrap();
        let answers: &[&str] = &[
            r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"list","annotations":{"readOnlyHint":true}},{"name":"delete","description":"Deletes \"it\""},{"name":"secret","annotations":{"readOnlyHint":true}},{"name":"peek","inputSchema":{"type":"object","properties":{"name":{"type":"string"}}},"annotations":{"readOnlyHint":true,"title":"x"}}],"nextCursor":"c"}}"#,
            r#" { "result" : { "tools" : [ {"name":"delete"} , {"name":"list"} ] } , "id" : 3 } "#,
            r#"{"id":3,"result":{"tools":[{"name":"list"}]}}"#,
            r#"{"id":3,"result":{"tools":[]}}"#,
            r#"{"id":4,"result":{"tools":[{"name":"delete"}]}}"#,
            r#"{"id":3,"result":{"content":[]}}"#,
            r#"{"id":null,"result":{"tools":[{"name":"delete"}]}}"#,
            r#"{"id":3,"error":{"code":-1}}"#,
            r#"{"id":3,"result":null}"#,
            r#"{"id":3,"result":[{"tools":[]}]}"#,
            r#"{"id":3,"result":{"tools":[{"name":"delete","annotations":[true]},{"name":"list","annotations":null,"description":null}]}}"#,
            r#"{"id":3,"result":{"tools":[{"name":"peek","annotations":{"readOnlyHint":null}},{"name":"delete","annotations":"x"}]}}"#,
        ];
        let scopes = ["read:gh", "write:gh", "call:gh/delete", "read:other", "call:gh/peek execute:mcp"];
        for (answer, scopes, pins) in
            answers.iter().flat_map(|a| scopes.iter().flat_map(move |s| pin_sets().map(move |p| (a, s, p))))
        {
            {
                let effective = ScopeSet::parse_lenient(scopes).expand();
                let mut seen = Vec::new();
                let fast = cut_list(answer.as_bytes(), &effective, &server, &classes(), &pins, &mut seen)
                    .unwrap_or_else(|_| panic!("fast path gave up on {answer}"));
                let (tree, tree_seen) = by_tree(answer.as_bytes(), &effective, &classes(), &pins);
                match (fast, tree) {
                    (Cut::Rewritten(bytes), Some(expected)) => {
                        let got: Value = serde_json::from_slice(&bytes).unwrap();
                        assert_eq!(got, expected, "{answer} / {scopes}");
                    }
                    (Cut::Unchanged | Cut::NotAList, None) => {}
                    (fast, tree) => panic!("{answer} / {scopes}: fast {fast:?}, tree {tree:?}"),
                }
                assert_eq!(seen, tree_seen, "{answer} / {scopes}");
            }
        }
    }

    #[test]
    fn a_tool_list_is_cut_whatever_id_it_answers() {
        let server = ServerName::parse("gh").unwrap();
        let effective = ScopeSet::parse_lenient("read:gh").expand();
        for id in ["1", "1.0", "\"1\"", "null", "{}"] {
            let answer = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{{"name":"list"}},{{"name":"delete"}}]}}}}"#
            );
            let cut =
                cut_list(answer.as_bytes(), &effective, &server, &classes(), &ToolPins::default(), &mut Vec::new());
            let Ok(Cut::Rewritten(bytes)) = cut else { panic!("{answer}: {cut:?}") };
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got["result"]["tools"], serde_json::json!([{"name": "list"}]), "{answer}");
        }
    }

    #[test]
    fn gives_up_where_the_tree_path_reads_differently() {
        let server = ServerName::parse("gh").unwrap();
        let effective = ScopeSet::parse_lenient("read:gh").expand();
        for answer in [
            r#"{"id":3,"id":3,"result":{"tools":[{"name":"delete"}]}}"#,
            r#"{"id":3,"result":{"tools":[{"name":"list","name":"delete"}]}}"#,
            r#"{"id":3,"result":{"tools":["delete"]}}"#,
            r#"{"id":3,"result":{"tools":[{"name":5}]}}"#,
            r#"{"id":3,"result":{"tools":[{"name":"list","annotations":{"readOnlyHint":"yes"}}]}}"#,
            r#"{"id":3,"result":{"tools":[{"name":"list","description":7}]}}"#,
            r#"[{"id":3}]"#,
            r#"[3,{"tools":[{"name":"delete"}]}]"#,
            r#"{"id":3,"result":{"tools":[["delete"]]}}"#,
            "not json",
        ] {
            let cut =
                cut_list(answer.as_bytes(), &effective, &server, &classes(), &ToolPins::default(), &mut Vec::new());
            assert_eq!(cut, Err(Unread), "{answer}");
        }
    }
}
