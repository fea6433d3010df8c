//! SCIM `filter` (the `attribute eq value` form every provisioning client sends) and `PATCH`
//! (RFC 7644 §3.5.2) applied to a resource's JSON, which the handler then stores like a `PUT`.
//! Clients' quirks are accepted: any case of `op` (Entra sends `Replace`), the path-less form
//! `{"op": "replace", "value": {"active": false}}` (Okta), keys with dotted paths inside it,
//! `emails[type eq "work"].value` that adds the element when none matches, and `remove` of
//! `members` with the members to remove as its value (Entra).

use serde_json::{Map, Value};

use super::{ScimError, strip_schema};

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Attribute names as Tessera writes them; requests may use any case (RFC 7643 §2.1).
const KNOWN: &[&str] = &[
    "userName",
    "name",
    "displayName",
    "emails",
    "active",
    "externalId",
    "members",
    "value",
    "type",
    "primary",
    "display",
    "$ref",
    "givenName",
    "familyName",
    "formatted",
    "id",
    "schemas",
    "meta",
    "password",
];

/// `name` as Tessera spells it, when it is one of its attributes.
pub(crate) fn canonical(name: &str) -> String {
    let name = strip_schema(name);
    KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)).map_or_else(|| name.to_owned(), |k| (*k).to_owned())
}

/// An `attribute eq value` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Eq {
    /// The attribute, canonical (`emails.value` stays dotted).
    pub attr: String,
    /// The compared value (strings compare without regard to case).
    pub value: Value,
}

impl Eq {
    /// Parses `attribute eq value`; anything else is refused as `invalidFilter`.
    pub fn parse(filter: &str) -> Result<Self, ScimError> {
        let unsupported =
            || ScimError::bad("invalidFilter", format!("unsupported filter `{filter}`: use attribute eq \"value\""));
        let (attr, rest) = next_word(filter).ok_or_else(unsupported)?;
        let (op, rest) = next_word(rest).ok_or_else(unsupported)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        let value: Value = serde_json::from_str(rest.trim()).map_err(|_| unsupported())?;
        if !(value.is_string() || value.is_boolean() || value.is_number()) {
            return Err(unsupported());
        }
        let attr = strip_schema(attr).split('.').map(canonical).collect::<Vec<_>>().join(".");
        Ok(Self { attr, value })
    }

    /// Whether the element `item` of a multi-valued attribute matches.
    fn matches(&self, item: &Value) -> bool {
        same(item.get(&self.attr), &self.value)
    }
}

fn same(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

/// The first word of `s` and what follows it.
fn next_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// A PATCH `path`: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
#[derive(Debug)]
struct Path {
    attr: String,
    filter: Option<Eq>,
    sub: Option<String>,
}

impl Path {
    fn parse(raw: &str) -> Result<Self, ScimError> {
        let invalid = || ScimError::bad("invalidPath", format!("unsupported path `{raw}`"));
        let raw = strip_schema(raw.trim());
        if let Some(open) = raw.find('[') {
            let close = raw.rfind(']').filter(|c| *c > open).ok_or_else(invalid)?;
            let sub = raw[close + 1..].strip_prefix('.').map(canonical);
            if sub.is_none() && close + 1 != raw.len() {
                return Err(invalid());
            }
            let filter = Eq::parse(&raw[open + 1..close]).map_err(|_| invalid())?;
            return Ok(Self { attr: canonical(&raw[..open]), filter: Some(filter), sub });
        }
        let mut parts = raw.splitn(2, '.');
        let attr = parts.next().filter(|a| !a.is_empty()).ok_or_else(invalid)?;
        Ok(Self { attr: canonical(attr), filter: None, sub: parts.next().map(canonical) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies a `PatchOp` body to `resource` (its attributes as Tessera writes them).
pub(crate) fn apply(resource: &mut Map<String, Value>, body: &Map<String, Value>) -> Result<(), ScimError> {
    let schemas = body.get("schemas").and_then(Value::as_array);
    if schemas.is_some_and(|s| !s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_SCHEMA)))) {
        return Err(ScimError::bad("invalidSyntax", format!("a PATCH body has the schema {PATCH_SCHEMA}")));
    }
    let ops = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| ScimError::bad("invalidSyntax", "a PATCH body lists its Operations"))?;
    for operation in ops {
        let field = |name: &str| {
            operation.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v)
        };
        let op = match field("op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => return Err(ScimError::bad("invalidSyntax", "each operation's op is add, replace or remove")),
        };
        let value = field("value").cloned();
        match field("path").and_then(Value::as_str) {
            Some(path) => apply_at(resource, op, &Path::parse(path)?, value)?,
            None if op == Op::Remove => return Err(ScimError::bad("noTarget", "remove needs a path")),
            None => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::bad(
                        "invalidValue",
                        "an operation without a path has an object as its value",
                    ));
                };
                for (key, v) in values {
                    apply_at(resource, op, &Path::parse(&key)?, Some(v))?;
                }
            }
        }
    }
    Ok(())
}

fn apply_at(resource: &mut Map<String, Value>, op: Op, path: &Path, value: Option<Value>) -> Result<(), ScimError> {
    let needs_value = || ScimError::bad("invalidValue", format!("{} needs a value", path.attr));
    match (&path.filter, &path.sub) {
        (None, None) => match op {
            Op::Remove => match (resource.get_mut(&path.attr), value) {
                // Entra: remove `members` listing which ones.
                (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                    items.retain(|i| !gone.iter().any(|g| g.get("value").is_some_and(|v| same(i.get("value"), v))));
                }
                _ => {
                    resource.remove(&path.attr);
                }
            },
            Op::Add | Op::Replace => {
                let value = normalized(value.ok_or_else(needs_value)?);
                match (resource.get_mut(&path.attr), value) {
                    (Some(Value::Array(items)), Value::Array(new)) if op == Op::Add => {
                        for item in new {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                    }
                    (Some(Value::Array(items)), item @ Value::Object(_)) if op == Op::Add => items.push(item),
                    (Some(Value::Object(current)), Value::Object(new)) => current.extend(new),
                    (_, value) => {
                        resource.insert(path.attr.clone(), value);
                    }
                }
            }
        },
        (None, Some(sub)) => {
            let target = resource.entry(path.attr.clone()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(target) = target else {
                return Err(ScimError::bad("invalidPath", format!("{} has no sub-attribute {sub}", path.attr)));
            };
            match op {
                Op::Remove => {
                    target.remove(sub);
                }
                Op::Add | Op::Replace => {
                    target.insert(sub.clone(), value.ok_or_else(needs_value)?);
                }
            }
        }
        (Some(filter), sub) => {
            let items = resource.entry(path.attr.clone()).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = items else {
                return Err(ScimError::bad("invalidPath", format!("{} is not multi-valued", path.attr)));
            };
            if op == Op::Remove {
                match sub {
                    Some(sub) => items.iter_mut().filter(|i| filter.matches(i)).for_each(|i| {
                        if let Value::Object(o) = i {
                            o.remove(sub);
                        }
                    }),
                    None => items.retain(|i| !filter.matches(i)),
                }
                return Ok(());
            }
            let value = normalized(value.ok_or_else(needs_value)?);
            let update = |item: &mut Value| match (item, sub, &value) {
                (Value::Object(o), Some(sub), v) => {
                    o.insert(sub.clone(), v.clone());
                }
                (Value::Object(o), None, Value::Object(v)) => o.extend(v.clone()),
                (item, None, v) => *item = v.clone(),
                _ => {}
            };
            let mut matched = false;
            for item in items.iter_mut().filter(|i| filter.matches(i)) {
                update(item);
                matched = true;
            }
            if !matched {
                // Entra sets `emails[type eq "work"].value` on a user that has no work email.
                let mut item = Value::Object(Map::from_iter([(filter.attr.clone(), filter.value.clone())]));
                update(&mut item);
                items.push(item);
            }
        }
    }
    Ok(())
}

/// A value with its object keys spelled as Tessera spells them.
pub(crate) fn normalized(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (canonical(&k), normalized(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(resource: Value, ops: Value) -> Value {
        let Value::Object(mut map) = resource else { panic!() };
        let Value::Object(body) = json!({"schemas": [PATCH_SCHEMA], "Operations": ops}) else { panic!() };
        apply(&mut map, &body).unwrap();
        Value::Object(map)
    }

    #[test]
    fn filters_are_attribute_eq_value_with_any_case_attribute() {
        let eq = Eq::parse(r#"USERNAME eq "Alice@Example.com""#).unwrap();
        assert_eq!((eq.attr.as_str(), eq.value.as_str()), ("userName", Some("Alice@Example.com")));
        assert_eq!(Eq::parse(r#"emails.value Eq "a@b.c""#).unwrap().attr, "emails.value");
        assert!(Eq::parse(r#"userName co "a""#).is_err());
        assert!(Eq::parse("userName eq").is_err());
    }

    #[test]
    fn entras_capitalised_op_and_oktas_pathless_value_both_deactivate() {
        let user = json!({"userName": "a", "active": true});
        let entra = patched(user.clone(), json!([{"op": "Replace", "path": "active", "value": false}]));
        let okta = patched(user, json!([{"op": "replace", "value": {"active": false}}]));
        assert_eq!((entra["active"].clone(), okta["active"].clone()), (json!(false), json!(false)));
    }

    #[test]
    fn members_are_added_and_removed_by_filter_or_by_value() {
        let group = json!({"displayName": "g", "members": [{"value": "a"}]});
        let added =
            patched(group, json!([{"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]}]));
        assert_eq!(added["members"], json!([{"value": "a"}, {"value": "b"}]));
        let removed = patched(added.clone(), json!([{"op": "remove", "path": "members[value eq \"a\"]"}]));
        assert_eq!(removed["members"], json!([{"value": "b"}]));
        let removed = patched(added, json!([{"op": "Remove", "path": "members", "value": [{"value": "b"}]}]));
        assert_eq!(removed["members"], json!([{"value": "a"}]));
    }

    #[test]
    fn a_filtered_sub_attribute_is_set_and_added_when_nothing_matches() {
        let user = json!({"emails": [{"type": "home", "value": "h@x.y"}]});
        let ops = json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x.y"},
                         {"op": "replace", "value": {"name.givenName": "Al"}}]);
        let user = patched(user, ops);
        assert_eq!(user["emails"][1], json!({"type": "work", "value": "w@x.y"}));
        assert_eq!(user["name"]["givenName"], "Al");
    }

    #[test]
    fn remove_without_a_path_is_refused() {
        let Value::Object(mut map) = json!({}) else { panic!() };
        let Value::Object(body) = json!({"Operations": [{"op": "remove"}]}) else { panic!() };
        assert!(apply(&mut map, &body).is_err());
    }
}
