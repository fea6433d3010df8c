//! Server scopes as data: the names of registered upstream servers, their tools, and the
//! catalog a grant is checked against (the built-in scopes plus `read:S`, `write:S` and
//! `call:S/TOOL` for every registered server `S`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::scope::{ADMIN_ONLY, CATALOG, Scope, ScopeError, ScopeSet};

/// Longest server name, in characters.
pub const SERVER_NAME_MAX_CHARS: usize = 32;
/// Longest tool name, in characters (the MCP spec's bound for tool names).
pub const TOOL_NAME_MAX_CHARS: usize = 128;

/// Names a server may not take: built-in scope resources (`read:tasks` must keep meaning the
/// built-in tasks), path segments the built-in `/mcp` already answers, and `callback`
/// (`/api/v2/connections/callback` is where upstream authorization servers send people back).
pub const RESERVED_SERVER_NAMES: &[&str] =
    &["tasks", "context", "agents", "tokens", "mcp", "initialize", "sse", "messages", "callback"];

/// Why a server or tool name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not `[a-z0-9-]{1,32}`.
    #[error("server name must be 1 to {SERVER_NAME_MAX_CHARS} characters of a-z, 0-9 and -")]
    ServerName,
    /// A built-in resource or path name.
    #[error("`{0}` is reserved; choose another server name")]
    ReservedServerName(String),
    /// Not 1 to 128 characters of `A-Za-z0-9_.-`.
    #[error("tool name must be 1 to {TOOL_NAME_MAX_CHARS} characters of A-Z, a-z, 0-9, _, . and -")]
    ToolName,
}

/// A registered upstream server's name: `[a-z0-9-]{1,32}`, not reserved.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct ServerName(String);

impl ServerName {
    /// Parses a server name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty()
            || s.len() > SERVER_NAME_MAX_CHARS
            || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NameError::ServerName);
        }
        if RESERVED_SERVER_NAMES.contains(&s) {
            return Err(NameError::ReservedServerName(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<ServerName> for String {
    fn from(n: ServerName) -> Self {
        n.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tool's name as scopes name it: 1 to 128 characters of `A-Za-z0-9_.-` (the MCP spec's
/// charset, which has no `/` or space, so `call:S/TOOL` splits without ambiguity).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct ToolName(String);

impl ToolName {
    /// Parses a tool name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty()
            || s.len() > TOOL_NAME_MAX_CHARS
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(NameError::ToolName);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<ToolName> for String {
    fn from(n: ToolName) -> Self {
        n.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a server scope grants on its server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerGrant {
    /// `read:S`: list; call read-class tools.
    Read,
    /// `write:S`: call every visible tool.
    Write,
    /// `call:S/TOOL`: list and call that one tool.
    Call(ToolName),
}

/// A well-formed scope on a registered (or once registered) server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerScope {
    /// The server.
    pub server: ServerName,
    /// What it grants there.
    pub grant: ServerGrant,
}

impl ServerScope {
    /// Parses `read:S`, `write:S` or `call:S/TOOL`; `None` for anything else, built-in
    /// scopes included (their resource names are reserved).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix("call:") {
            let (server, tool) = rest.split_once('/')?;
            return Some(Self {
                server: ServerName::parse(server).ok()?,
                grant: ServerGrant::Call(ToolName::parse(tool).ok()?),
            });
        }
        let (grant, server) = if let Some(server) = s.strip_prefix("read:") {
            (ServerGrant::Read, server)
        } else {
            (ServerGrant::Write, s.strip_prefix("write:")?)
        };
        Some(Self { server: ServerName::parse(server).ok()?, grant })
    }
}

/// What a client is offered for server `S` when it names no scope, and what a 401 at `/mcp/S`
/// asks for: enough to list and call its read-class tools. Through the gateway that is
/// `read:S execute:mcp` (every `tools/call` needs `execute:mcp`, as on the built-in server); a
/// direct server checks `read:S` itself and never sees `execute:mcp`, so it gets `read:S` only.
pub fn default_server_scopes(server: &ServerName, direct: bool) -> Vec<String> {
    let read = format!("read:{server}");
    if direct { vec![read] } else { vec![read, crate::scope::EXECUTE_MCP.to_owned()] }
}

/// The scopes a grant may name: the built-in catalog, `mcp:admin`, and the scopes of the
/// servers registered now. Built by the caller from the registry; nothing here reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    servers: BTreeSet<ServerName>,
    /// The tools `call:S/TOOL` may name, for each server whose tool list is known (listed
    /// or overridden); a server absent here takes any well-formed tool name.
    tools: BTreeMap<ServerName, BTreeSet<String>>,
}

impl Catalog {
    /// The built-in scopes only (no server registered).
    pub fn builtin() -> Self {
        Self::default()
    }

    /// The built-in scopes and those of `servers`.
    pub fn with_servers(servers: impl IntoIterator<Item = ServerName>) -> Self {
        Self { servers: servers.into_iter().collect(), tools: BTreeMap::new() }
    }

    /// The same, knowing `server`'s tools: `call:` scopes for any other tool of it are typos.
    pub fn with_tools(mut self, server: ServerName, tools: impl IntoIterator<Item = String>) -> Self {
        self.tools.entry(server).or_default().extend(tools);
        self
    }

    /// The registered servers.
    pub fn servers(&self) -> impl Iterator<Item = &ServerName> {
        self.servers.iter()
    }

    /// Every scope that may be granted, in a stable order: the built-in catalog, then
    /// `read:S write:S` per server, then `mcp:admin` and `scim`. (`call:S/TOOL` is grantable for any
    /// well-formed tool name of a registered server, so it is not enumerated.)
    pub fn grantable(&self) -> Vec<String> {
        let builtin = CATALOG.iter().map(|s| (*s).to_owned());
        let servers = self.servers.iter().flat_map(|s| [format!("read:{s}"), format!("write:{s}")]);
        builtin.chain(servers).chain(ADMIN_ONLY.iter().map(|s| (*s).to_owned())).collect()
    }

    /// Whether `word` may appear in a grant.
    pub fn admits(&self, word: &str) -> bool {
        if CATALOG.contains(&word) || ADMIN_ONLY.contains(&word) {
            return true;
        }
        ServerScope::parse(word).is_some_and(|s| self.servers.contains(&s.server) && self.unknown_tool(&s).is_none())
    }

    /// For `call:S/TOOL` of a server whose tools are known and lack `TOOL`: those tools.
    fn unknown_tool(&self, scope: &ServerScope) -> Option<&BTreeSet<String>> {
        let ServerGrant::Call(tool) = &scope.grant else { return None };
        self.tools.get(&scope.server).filter(|known| !known.contains(tool.as_str()))
    }

    /// Builds a grant from a list: admitted scopes only, at least one.
    pub fn grant<I, S>(&self, iter: I) -> Result<ScopeSet, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        let mut unknown: Vec<String> = Vec::new();
        for word in iter {
            let word = word.as_ref().trim();
            if word.is_empty() {
                continue;
            }
            if self.admits(word) {
                if let Ok(scope) = Scope::parse(word) {
                    set.insert(scope);
                }
            } else if let Some(scope) = ServerScope::parse(word).filter(|s| self.servers.contains(&s.server))
                && let Some(known) = self.unknown_tool(&scope)
            {
                return Err(ScopeError::UnknownTool {
                    scope: word.to_owned(),
                    server: scope.server.to_string(),
                    known: known.iter().cloned().collect(),
                });
            } else if !unknown.iter().any(|u| u == word) {
                unknown.push(word.to_owned());
            }
        }
        if !unknown.is_empty() {
            return Err(ScopeError::Unknown { unknown, valid: self.grantable() });
        }
        if set.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(ScopeSet::from_scopes(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ServerName {
        ServerName::parse(s).unwrap()
    }

    fn catalog() -> Catalog {
        Catalog::with_servers([name("github"), name("notes-2")])
    }

    #[test]
    fn a_call_scope_for_a_tool_the_server_is_known_not_to_have_is_a_typo() {
        let known = catalog().with_tools(name("github"), ["read_file".to_owned(), "search".to_owned()]);
        assert!(known.grant(["call:github/read_file"]).is_ok());
        assert_eq!(
            known.grant(["call:github/reed_file"]),
            Err(ScopeError::UnknownTool {
                scope: "call:github/reed_file".into(),
                server: "github".into(),
                known: vec!["read_file".into(), "search".into()],
            })
        );
        // A server whose tools were never listed takes any well-formed tool name.
        assert!(known.grant(["call:notes-2/anything"]).is_ok());
    }

    #[test]
    fn server_names_are_short_lowercase_words_and_dashes() {
        assert!(ServerName::parse("notes-2").is_ok());
        for bad in ["", "Notes", "a_b", "a/b", "a b", &"x".repeat(33)] {
            assert_eq!(ServerName::parse(bad), Err(NameError::ServerName), "{bad}");
        }
    }

    #[test]
    fn built_in_resource_and_path_names_are_reserved() {
        for reserved in RESERVED_SERVER_NAMES {
            assert!(matches!(ServerName::parse(reserved), Err(NameError::ReservedServerName(_))), "{reserved}");
        }
    }

    #[test]
    fn tool_names_follow_the_mcp_charset() {
        assert!(ToolName::parse("get_weather.v2-beta").is_ok());
        for bad in ["", "a/b", "a b", "é", &"t".repeat(129)] {
            assert_eq!(ToolName::parse(bad), Err(NameError::ToolName), "{bad}");
        }
    }

    #[test]
    fn server_scopes_parse_into_server_and_grant() {
        assert_eq!(ServerScope::parse("read:github").unwrap().grant, ServerGrant::Read);
        assert_eq!(ServerScope::parse("write:github").unwrap().grant, ServerGrant::Write);
        let call = ServerScope::parse("call:github/create_issue").unwrap();
        assert_eq!(call.server.as_str(), "github");
        assert_eq!(call.grant, ServerGrant::Call(ToolName::parse("create_issue").unwrap()));
    }

    #[test]
    fn built_in_and_malformed_scopes_are_not_server_scopes() {
        for s in ["read:tasks", "write:tokens", "execute:mcp", "call:github", "call:github/", "call:/x", "fly:github"] {
            assert_eq!(ServerScope::parse(s), None, "{s}");
        }
    }

    #[test]
    fn a_registered_servers_scopes_can_be_granted() {
        let set = catalog().grant(["read:github", "write:notes-2", "call:github/create_issue", "read:tasks"]).unwrap();
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn an_unknown_servers_scope_is_refused_naming_the_valid_ones() {
        let err = catalog().grant(["read:tasks", "read:gitlab"]).unwrap_err();
        let ScopeError::Unknown { unknown, valid } = err else { panic!("{err:?}") };
        assert_eq!(unknown, ["read:gitlab"]);
        assert!(valid.contains(&"read:github".to_owned()) && valid.contains(&"write:notes-2".to_owned()));
        assert!(valid.contains(&"read:tasks".to_owned()));
    }

    #[test]
    fn the_builtin_catalog_refuses_every_server_scope() {
        assert!(matches!(Catalog::builtin().grant(["read:github"]), Err(ScopeError::Unknown { .. })));
    }

    #[test]
    fn a_gateway_server_defaults_to_read_and_execute_a_direct_one_to_read() {
        assert_eq!(default_server_scopes(&name("github"), false), ["read:github", "execute:mcp"]);
        assert_eq!(default_server_scopes(&name("github"), true), ["read:github"]);
    }

    #[test]
    fn a_call_scope_needs_a_well_formed_tool() {
        assert!(catalog().grant(["call:github/a b"]).is_err());
        assert!(catalog().grant(["call:github/"]).is_err());
    }
}
