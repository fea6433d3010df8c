//! Pinned tool definitions (issue #26): what of a tool is pinned, its canonical form and
//! digest, whether a served definition may be shown, what a listing changes in the pins,
//! and the line diff an admin reads before approving.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The fields of a tool that are pinned; anything else (`_meta`, `icons`, ...) may change
/// freely.
pub const PINNED_FIELDS: [&str; 6] = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"];

/// A definition's digest: SHA-256 of its canonical JSON.
pub type PinDigest = [u8; 32];

/// The pinned part of a served tool, every object's keys sorted (at any depth), so two
/// listings that differ only in key order or spacing give the same definition.
pub fn definition(tool: &Value) -> Value {
    let mut out = Map::new();
    let mut fields = PINNED_FIELDS;
    fields.sort_unstable();
    for field in fields {
        if let Some(v) = tool.get(field) {
            out.insert(field.to_owned(), sorted(v));
        }
    }
    Value::Object(out)
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            // Inserted in order: the map keeps it whether or not it sorts itself.
            Value::Object(keys.into_iter().filter_map(|k| map.get(k).map(|x| (k.clone(), sorted(x)))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The digest of a definition made by [`definition`].
pub fn digest(definition: &Value) -> PinDigest {
    // Writing a `Value` to a Vec cannot fail (no I/O, string keys only).
    let bytes = serde_json::to_vec(definition).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// What a server does with a tool it has not seen before, once its first listing is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewToolPolicy {
    /// Pinned and shown at once.
    #[default]
    Allow,
    /// Pinned, but hidden and refused until an admin approves it.
    Hold,
}

impl NewToolPolicy {
    /// Wire and stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Hold => "hold",
        }
    }

    /// The policy of a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "hold" => Some(Self::Hold),
            _ => None,
        }
    }
}

/// Why a tool is held until an admin approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// The upstream serves another definition than the pinned one.
    Changed,
    /// A new tool on a server whose policy is `hold`.
    New,
}

impl HoldReason {
    /// Wire and stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::New => "new",
        }
    }

    /// The reason of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "changed" => Some(Self::Changed),
            "new" => Some(Self::New),
            _ => None,
        }
    }
}

/// A tool's pin as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The approved definition's digest.
    pub pinned: PinDigest,
    /// Why it is held, if it is.
    pub hold: Option<HoldReason>,
    /// The held definition's digest, when it differs from the pinned one.
    pub served: Option<PinDigest>,
}

/// What a server's pins say of one tool.
#[derive(Debug, Clone, Copy)]
pub struct PinView<'a> {
    /// The tool's pin, if it has one.
    pub pin: Option<&'a Pin>,
    /// Whether the server has any pin (its first listing was pinned).
    pub any_pins: bool,
    /// The server's policy for new tools.
    pub policy: NewToolPolicy,
}

impl PinView<'_> {
    /// May a listing serving `served` show the tool? Only its pinned definition, never
    /// while it is held; an unpinned tool only on a first listing or under `allow`.
    pub fn shows(&self, served: &PinDigest) -> bool {
        match self.pin {
            Some(pin) => pin.hold.is_none() && pin.pinned == *served,
            None => self.admits_unknown(),
        }
    }

    /// May a call reach the tool (whose served definition the call does not show)? Not
    /// while it is held; an unpinned one as [`PinView::shows`] would show it.
    pub fn callable(&self) -> bool {
        match self.pin {
            Some(pin) => pin.hold.is_none(),
            None => self.admits_unknown(),
        }
    }

    fn admits_unknown(&self) -> bool {
        !self.any_pins || self.policy == NewToolPolicy::Allow
    }
}

/// What a listing serving `served` does to a tool's pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChange {
    /// Nothing new: the pinned definition, or the one already held.
    Keep,
    /// First seen: pin it, held for `hold` if the policy says so.
    Pin {
        /// Held as a new tool, or not held.
        hold: Option<HoldReason>,
    },
    /// A definition other than the pinned one (and than any already held): hold the tool
    /// with this one as the served definition. An alert is due.
    Hold,
}

/// The change a served definition makes to `view`'s pin.
pub fn change(view: &PinView<'_>, served: &PinDigest) -> PinChange {
    match view.pin {
        None if view.admits_unknown() => PinChange::Pin { hold: None },
        None => PinChange::Pin { hold: Some(HoldReason::New) },
        Some(pin) if pin.served.as_ref() == Some(served) => PinChange::Keep,
        Some(pin) if pin.served.is_none() && pin.pinned == *served => PinChange::Keep,
        Some(_) => PinChange::Hold,
    }
}

/// A definition as people read it: pretty JSON, keys sorted.
pub fn pretty(definition: &Value) -> String {
    serde_json::to_string_pretty(&sorted(definition)).unwrap_or_default()
}

/// Largest definition (in lines) the diff compares line by line; past it the diff shows
/// both whole (the comparison is quadratic).
const MAX_DIFF_LINES: usize = 1000;

/// A line diff of two texts: each line prefixed `  ` (both), `- ` (only `old`) or `+ `
/// (only `new`), by longest common subsequence.
pub fn line_diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut out = String::new();
    let mut push = |mark: &str, line: &str| {
        out.push_str(mark);
        out.push_str(line);
        out.push('\n');
    };
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        a.iter().for_each(|l| push("- ", l));
        b.iter().for_each(|l| push("+ ", l));
        return out;
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let width = b.len().saturating_add(1);
    let mut lcs = vec![0usize; a.len().saturating_add(1).saturating_mul(width)];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            let at = |i: usize, j: usize| i.saturating_mul(width).saturating_add(j);
            let v = if a.get(i) == b.get(j) {
                lcs.get(at(i + 1, j + 1)).copied().unwrap_or(0).saturating_add(1)
            } else {
                lcs.get(at(i + 1, j)).copied().unwrap_or(0).max(lcs.get(at(i, j + 1)).copied().unwrap_or(0))
            };
            if let Some(slot) = lcs.get_mut(at(i, j)) {
                *slot = v;
            }
        }
    }
    let len = |i: usize, j: usize| lcs.get(i.saturating_mul(width).saturating_add(j)).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                push("  ", x);
                i += 1;
                j += 1;
            }
            (Some(x), Some(_)) if len(i + 1, j) >= len(i, j + 1) => {
                push("- ", x);
                i += 1;
            }
            (_, Some(y)) => {
                push("+ ", y);
                j += 1;
            }
            (Some(x), None) => {
                push("- ", x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pin(def: &Value) -> Pin {
        Pin { pinned: digest(def), hold: None, served: None }
    }

    #[test]
    fn key_order_and_unpinned_fields_do_not_change_the_digest() {
        let a = json!({"name": "x", "inputSchema": {"type": "object", "properties": {"a": {}, "b": {}}}, "_meta": 1});
        let b = json!({"inputSchema": {"properties": {"b": {}, "a": {}}, "type": "object"}, "name": "x", "icons": []});
        assert_eq!(digest(&definition(&a)), digest(&definition(&b)));
    }

    #[test]
    fn every_pinned_field_changes_the_digest() {
        let base = json!({"name": "x", "title": "t", "description": "d", "inputSchema": {}, "outputSchema": {},
            "annotations": {"readOnlyHint": true}});
        for field in PINNED_FIELDS {
            let mut changed = base.clone();
            changed[field] = json!("other");
            assert_ne!(digest(&definition(&base)), digest(&definition(&changed)), "{field}");
        }
    }

    #[test]
    fn a_changed_definition_is_hidden_held_and_alerted_once() {
        let (old, new) = (json!({"name": "x"}), json!({"name": "x", "description": "now evil"}));
        let p = pin(&old);
        let view = PinView { pin: Some(&p), any_pins: true, policy: NewToolPolicy::Allow };
        assert!(view.shows(&digest(&old)));
        assert!(!view.shows(&digest(&new)));
        assert_eq!(change(&view, &digest(&old)), PinChange::Keep);
        assert_eq!(change(&view, &digest(&new)), PinChange::Hold);
        let held = Pin { hold: Some(HoldReason::Changed), served: Some(digest(&new)), ..p };
        let view = PinView { pin: Some(&held), ..view };
        assert_eq!(change(&view, &digest(&new)), PinChange::Keep, "the same change is not news twice");
        assert!(!view.callable() && !view.shows(&digest(&old)));
        let third = json!({"name": "x", "description": "other"});
        assert_eq!(change(&view, &digest(&third)), PinChange::Hold, "a further change is news");
    }

    #[test]
    fn new_tools_follow_the_policy_after_the_first_listing() {
        let served = digest(&json!({"name": "x"}));
        let first = PinView { pin: None, any_pins: false, policy: NewToolPolicy::Hold };
        assert!(first.shows(&served));
        assert_eq!(change(&first, &served), PinChange::Pin { hold: None });
        let later = PinView { any_pins: true, ..first };
        assert!(!later.shows(&served) && !later.callable());
        assert_eq!(change(&later, &served), PinChange::Pin { hold: Some(HoldReason::New) });
        let allow = PinView { policy: NewToolPolicy::Allow, ..later };
        assert!(allow.shows(&served) && allow.callable());
        assert_eq!(change(&allow, &served), PinChange::Pin { hold: None });
    }

    #[test]
    fn a_diff_marks_removed_and_added_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(diff, "  a\n- b\n+ B\n  c\n+ d\n");
    }
}
