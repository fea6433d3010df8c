//! The scope catalog and inheritance rules. Server scopes (`read:S`, `write:S`,
//! `call:S/TOOL`) are well-formed scopes here; whether `S` is registered is the grant's
//! question, answered by [`crate::catalog::Catalog`].

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, ServerGrant, ServerScope};

/// Scopes a token can be granted. Adding a resource is adding its read/write pair here.
pub const CATALOG: &[&str] = &[
    "read:tasks",
    "write:tasks",
    "read:context",
    "write:context",
    "read:agents",
    "write:agents",
    "execute:mcp",
    "read:tokens",
    "write:tokens",
];

/// The scope every tool call needs, on the built-in server and through the gateway alike.
pub const EXECUTE_MCP: &str = "execute:mcp";
/// Implies every scope; granted only by the CLI or SQL.
pub const ADMIN: &str = "mcp:admin";
/// Lets a token provision users and groups through `/scim/v2`; like `mcp:admin`, only
/// administrators may hold it, and `mcp:admin` does not imply it (a provisioning client gets
/// a token that can do nothing else, and an admin token is no SCIM credential).
pub const SCIM: &str = "scim";
/// Scopes only administrators may hold: never in an allowance, taken away on demotion.
pub const ADMIN_ONLY: &[&str] = &[ADMIN, SCIM];
/// Held by every valid token.
pub const ACCESS: &str = "mcp:access";
/// Implied by any `read:*`.
pub const READ: &str = "mcp:read";
/// Implied by any `write:*`.
pub const WRITE: &str = "mcp:write";
/// Implied by `execute:mcp`.
pub const EXECUTE: &str = "mcp:execute";
/// Scopes no one grants: they follow from the granted ones.
pub const DERIVED: &[&str] = &[ACCESS, READ, WRITE, EXECUTE];

/// Why a scope list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// No scope at all.
    #[error("at least one scope is required; valid scopes are: {}", grantable().join(", "))]
    Empty,
    /// Scopes outside the catalog.
    #[error("unknown scope{} {}; valid scopes are: {}", if unknown.len() == 1 { "" } else { "s" },
        unknown.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "), valid.join(", "))]
    Unknown {
        /// The words that are not scopes.
        unknown: Vec<String>,
        /// Every scope that may be granted.
        valid: Vec<String>,
    },
    /// `call:S/TOOL` for a tool that server `S` is known not to have (a typo).
    #[error("`{scope}` names no tool of `{server}`; its tools are: {}", known.join(", "))]
    UnknownTool {
        /// The refused scope.
        scope: String,
        /// The server.
        server: String,
        /// The tools a `call:` scope may name on it.
        known: Vec<String>,
    },
}

/// Scopes that may appear in a grant: the catalog, `mcp:admin` and `scim`.
pub fn grantable() -> Vec<String> {
    CATALOG.iter().chain(ADMIN_ONLY).map(|s| (*s).to_owned()).collect()
}

fn is_known(s: &str) -> bool {
    CATALOG.contains(&s) || DERIVED.contains(&s) || ADMIN_ONLY.contains(&s) || ServerScope::parse(s).is_some()
}

/// One known scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

impl Scope {
    /// Any known scope (catalog, derived, admin, or a well-formed server scope).
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if is_known(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ScopeError::Unknown { unknown: vec![s.to_owned()], valid: grantable() })
        }
    }

    /// The scope's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The server and grant, if this is a server scope.
    pub fn server_scope(&self) -> Option<ServerScope> {
        ServerScope::parse(&self.0)
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes, kept sorted.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a whitespace-separated grant: catalog scopes and `mcp:admin` only.
    pub fn parse_grant(s: &str) -> Result<Self, ScopeError> {
        Self::from_grant(s.split_whitespace())
    }

    /// Builds a grant from a list: built-in catalog scopes and `mcp:admin` only, at least
    /// one. Grants that may name registered servers go through [`Catalog::grant`].
    pub fn from_grant<I, S>(iter: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Catalog::builtin().grant(iter)
    }

    /// A set of already parsed scopes.
    pub(crate) fn from_scopes(set: BTreeSet<Scope>) -> Self {
        Self(set)
    }

    /// Parses any known scopes (configuration such as required scopes); may be empty.
    pub fn parse_any(s: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        let mut unknown = Vec::new();
        for word in s.split_whitespace() {
            match Scope::parse(word) {
                Ok(scope) => {
                    set.insert(scope);
                }
                Err(_) => unknown.push(word.to_owned()),
            }
        }
        if unknown.is_empty() { Ok(Self(set)) } else { Err(ScopeError::Unknown { unknown, valid: grantable() }) }
    }

    /// Known scopes in `s`, silently dropping anything else (claims from a signed token).
    pub fn parse_lenient(s: &str) -> Self {
        Self(s.split_whitespace().filter_map(|w| Scope::parse(w).ok()).collect())
    }

    /// The effective scopes: the grant closed under the inheritance rules. `mcp:admin` adds
    /// every built-in scope; server scopes it implies are answered by [`ScopeSet::covers`].
    pub fn expand(&self) -> Self {
        let mut out = self.0.clone();
        out.insert(Scope(ACCESS.to_owned()));
        for scope in &self.0 {
            let s = scope.as_str();
            if let Some(resource) = s.strip_prefix("write:") {
                let read = format!("read:{resource}");
                if is_known(&read) {
                    out.insert(Scope(read));
                }
                out.insert(Scope(READ.to_owned()));
                out.insert(Scope(WRITE.to_owned()));
            } else if s.starts_with("read:") {
                out.insert(Scope(READ.to_owned()));
            } else if s == EXECUTE_MCP {
                out.insert(Scope(EXECUTE.to_owned()));
            }
        }
        if self.has_admin() {
            out.extend(CATALOG.iter().chain(DERIVED).map(|s| Scope((*s).to_owned())));
        }
        Self(out)
    }

    /// Whether this (effective) set grants `scope`: it holds it, holds `mcp:admin`, or holds
    /// `write:S` for `call:S/TOOL` (write calls every visible tool of `S`).
    pub fn covers(&self, scope: &str) -> bool {
        if self.contains(scope) || self.has_admin() {
            return true;
        }
        match ServerScope::parse(scope) {
            Some(ServerScope { server, grant: ServerGrant::Call(_) }) => self.contains(&format!("write:{server}")),
            _ => false,
        }
    }

    /// Whether `scope` is in the set (no expansion).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Scopes in both.
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Scopes in either.
    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// Whether `mcp:admin` is granted.
    pub fn has_admin(&self) -> bool {
        self.contains(ADMIN)
    }

    /// The scopes of this set only administrators may hold (`mcp:admin`, `scim`).
    pub fn admin_only(&self) -> Vec<String> {
        self.0.iter().filter(|s| ADMIN_ONLY.contains(&s.as_str())).map(|s| s.0.clone()).collect()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes as strings, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }

    /// The `scope` claim: space-separated, sorted.
    pub fn to_claim(&self) -> String {
        self.to_vec().join(" ")
    }

    /// Scopes of `self` that `effective` does not cover.
    pub fn missing_from(&self, effective: &Self) -> Vec<String> {
        self.0.iter().filter(|s| !effective.covers(s.as_str())).map(|s| s.0.clone()).collect()
    }

    /// This set's scopes of `server` (`read:S`, `write:S`, `call:S/T`), sorted.
    pub fn for_server(&self, server: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| s.server_scope().is_some_and(|ss| ss.server.as_str() == server))
            .map(|s| s.0.clone())
            .collect()
    }

    /// The servers this set names (in `read:S`, `write:S` or `call:S/TOOL`), sorted.
    pub fn servers(&self) -> BTreeSet<String> {
        self.0.iter().filter_map(Scope::server_scope).map(|s| s.server.into()).collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_claim())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse_grant(s).unwrap()
    }

    #[test]
    fn write_implies_read_of_the_same_resource() {
        let e = set("write:tasks").expand();
        assert!(e.contains("read:tasks"));
        assert!(!e.contains("read:context"));
    }

    #[test]
    fn every_token_has_mcp_access() {
        assert!(set("read:agents").expand().contains(ACCESS));
    }

    #[test]
    fn any_read_implies_mcp_read() {
        let e = set("read:context").expand();
        assert!(e.contains(READ));
        assert!(!e.contains(WRITE));
    }

    #[test]
    fn any_write_implies_mcp_write_and_mcp_read() {
        let e = set("write:agents").expand();
        assert!(e.contains(WRITE));
        assert!(e.contains(READ));
    }

    #[test]
    fn execute_mcp_implies_mcp_execute() {
        let e = set("execute:mcp").expand();
        assert!(e.contains(EXECUTE));
        assert!(!e.contains(READ));
    }

    #[test]
    fn admin_implies_every_scope() {
        let e = set("mcp:admin").expand();
        for s in CATALOG.iter().chain(DERIVED) {
            assert!(e.contains(s), "{s}");
        }
    }

    #[test]
    fn unknown_scope_error_names_it_and_every_valid_scope() {
        let err = ScopeSet::parse_grant("read:tasks fly:away").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`fly:away`"), "{msg}");
        for s in CATALOG {
            assert!(msg.contains(s), "{msg}");
        }
    }

    #[test]
    fn admin_does_not_imply_scim_and_scim_implies_nothing_else() {
        assert!(!set("mcp:admin").expand().contains(SCIM));
        assert_eq!(set("scim").expand().to_claim(), "mcp:access scim");
        assert_eq!(set("scim read:tasks mcp:admin").admin_only(), ["mcp:admin", "scim"]);
    }

    #[test]
    fn derived_scopes_cannot_be_granted() {
        assert!(matches!(ScopeSet::parse_grant("mcp:access"), Err(ScopeError::Unknown { .. })));
    }

    #[test]
    fn empty_grant_is_refused() {
        assert_eq!(ScopeSet::parse_grant("  "), Err(ScopeError::Empty));
    }

    #[test]
    fn claim_is_sorted_and_space_separated() {
        assert_eq!(set("write:tasks execute:mcp read:context").to_claim(), "execute:mcp read:context write:tasks");
    }

    #[test]
    fn parse_any_accepts_derived_scopes() {
        assert!(ScopeSet::parse_any("mcp:access mcp:read").unwrap().contains(ACCESS));
    }

    #[test]
    fn write_on_a_server_implies_read_on_it_only() {
        let e = ScopeSet::parse_lenient("write:github").expand();
        assert!(e.contains("read:github") && e.contains(READ) && e.contains(WRITE));
        assert!(!e.contains("read:notes"));
    }

    #[test]
    fn write_on_a_server_covers_calling_any_of_its_tools() {
        let e = ScopeSet::parse_lenient("write:github").expand();
        assert!(e.covers("call:github/create_issue"));
        assert!(!e.covers("call:notes/create_issue"));
        assert!(!ScopeSet::parse_lenient("read:github").expand().covers("call:github/create_issue"));
    }

    #[test]
    fn admin_covers_every_server_scope() {
        let e = set("mcp:admin").expand();
        for s in ["read:github", "write:github", "call:github/anything"] {
            assert!(e.covers(s), "{s}");
        }
    }

    #[test]
    fn a_call_scope_does_not_imply_read_on_its_server() {
        let e = ScopeSet::parse_lenient("call:github/create_issue").expand();
        assert!(!e.contains("read:github") && !e.contains(READ));
    }

    #[test]
    fn scopes_of_unregistered_servers_survive_in_signed_claims_beside_the_rest() {
        let s = ScopeSet::parse_lenient("read:tasks read:gone call:gone/tool fly:away");
        assert_eq!(s.to_claim(), "call:gone/tool read:gone read:tasks");
        assert!(s.expand().contains("read:tasks"));
    }

    #[test]
    fn reserved_names_are_not_server_scopes() {
        assert!(Scope::parse("write:mcp").is_err());
        assert!(Scope::parse("read:sse").is_err());
    }

    #[test]
    fn servers_lists_each_named_server_once() {
        let s = ScopeSet::parse_lenient("read:github call:github/x write:notes read:tasks");
        assert_eq!(s.servers().into_iter().collect::<Vec<_>>(), ["github", "notes"]);
    }

    fn any_grant() -> impl Strategy<Value = ScopeSet> {
        proptest::sample::subsequence(grantable(), 0..=grantable().len())
            .prop_map(|v| ScopeSet(v.into_iter().map(Scope).collect()))
    }

    proptest! {
        #[test]
        fn expansion_is_idempotent(s in any_grant()) {
            prop_assert_eq!(s.expand().expand(), s.expand());
        }

        #[test]
        fn expansion_is_monotone(a in any_grant(), b in any_grant()) {
            let ab = a.union(&b);
            prop_assert!(a.expand().is_subset(&ab.expand()));
        }

        #[test]
        fn expansion_keeps_the_grant_and_adds_access(s in any_grant()) {
            let e = s.expand();
            prop_assert!(s.is_subset(&e));
            prop_assert!(e.contains(ACCESS));
        }
    }
}
