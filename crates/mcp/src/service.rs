//! The rmcp service: server info, scope-filtered `tools/list`, scope-checked `tools/call`,
//! and the stateless Streamable HTTP transport it is served through.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::HttpMessage;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService, on_request_extensions};
use tessera_core::validate::Principal;
use tessera_store::Store;

use crate::McpState;
use crate::tools::{AGENT_SCOPES, BASIC_SCOPES, CONTEXT_SCOPES, TASK_SCOPES};

/// The authenticated caller of one request, put in the request's extensions by the
/// middleware and read by tools.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Principal>);

/// Protocol versions we serve (DESIGN.md "MCP server"): the stateless 2026-07-28 era (no
/// `initialize`; rmcp routes it statelessly and checks `Mcp-Method`/`Mcp-Name` against the body)
/// and the handshake era before it.
const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2026_07_28,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

/// The grantable scope every `tools/call` needs besides the tool's own.
pub(crate) const EXECUTE_SCOPE: &str = tessera_core::scope::EXECUTE_MCP;

/// Every tool's (name, scope), as each router declares them next to its tools.
fn tool_table() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    [BASIC_SCOPES, TASK_SCOPES, CONTEXT_SCOPES, AGENT_SCOPES].into_iter().flatten()
}

/// Every tool's name.
pub(crate) fn tool_names() -> impl Iterator<Item = &'static str> {
    tool_table().map(|(name, _)| *name)
}

/// One of our tools by name: its name as a `'static` (usage labels) and its scope.
pub(crate) fn our_tool(name: &str) -> Option<(&'static str, &'static str)> {
    tool_table().find(|(tool, _)| *tool == name).copied()
}

/// The scope a tool needs (besides `execute:mcp` for calling it); `None` for unknown tools.
pub fn tool_scope(name: &str) -> Option<&'static str> {
    our_tool(name).map(|(_, scope)| scope)
}

/// Whether `principal` may call the tool `name`.
pub(crate) fn may_call(principal: &Principal, name: &str) -> bool {
    principal.effective.contains(EXECUTE_SCOPE) && tool_scope(name).is_some_and(|s| principal.effective.contains(s))
}

/// Which tools a principal may call, one bit per row of [`tool_table`]: the key of the
/// `tools/list` cache (two tokens with the same bits see the same list).
fn callable_bits(principal: &Principal) -> u64 {
    if !principal.effective.contains(EXECUTE_SCOPE) {
        return 0;
    }
    tool_table()
        .enumerate()
        .filter(|(_, (_, scope))| principal.effective.contains(scope))
        .fold(0, |bits, (i, _)| bits | 1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX)).unwrap_or(0))
}

/// The MCP server: one per request in stateless mode, so it only holds cheap handles.
#[derive(Debug, Clone)]
pub struct TesseraMcp {
    pub(crate) store: Store,
    /// Built once: the macro form would rebuild every tool's schema per list and call.
    tools: Arc<ToolRouter<TesseraMcp>>,
    /// `tools/list` answers by [`callable_bits`]: the tool set is fixed at start, so an entry
    /// never goes stale, and there are at most as many entries as scope combinations that
    /// matter (2^16, in practice a handful).
    lists: Arc<RwLock<HashMap<u64, Arc<[Tool]>>>>,
}

impl TesseraMcp {
    /// A server over `store` with every tool.
    pub fn new(store: Store) -> Self {
        let tools = Self::basic_router() + Self::tasks_router() + Self::context_router() + Self::agents_router();
        Self { store, tools: Arc::new(tools), lists: Arc::default() }
    }

    /// The tools `principal` may call, sorted by name, from the cache when it can.
    fn tools_for(&self, principal: &Principal) -> Arc<[Tool]> {
        let bits = callable_bits(principal);
        if let Some(list) = self.lists.read().ok().and_then(|m| m.get(&bits).cloned()) {
            return list;
        }
        let list: Arc<[Tool]> = self.tools.list_all().into_iter().filter(|t| may_call(principal, &t.name)).collect();
        if let Ok(mut m) = self.lists.write() {
            m.insert(bits, Arc::clone(&list));
        }
        list
    }
}

/// The caller, or an error when the middleware did not run (a wiring bug, never a client's).
pub(crate) fn caller(ctx: &RequestContext<RoleServer>) -> Result<Arc<Principal>, ErrorData> {
    on_request_extensions(&ctx.extensions)
        .and_then(|e| e.get::<Caller>())
        .map(|c| Arc::clone(&c.0))
        .ok_or_else(|| ErrorData::internal_error("request was not authenticated", None))
}

impl ServerHandler for TesseraMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tessera", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tessera workspace tools: tasks, context entries and agents of the token's owner. \
                 tools/list shows only the tools this token may call.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = caller(&ctx)?;
        Ok(ListToolsResult::with_all_items(self.tools_for(&principal).to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = caller(&ctx)?;
        // The middleware already answered 403 for this; checked again so a tool can never
        // run without its scope, whatever the wiring.
        if !may_call(&principal, &request.name) {
            return Err(ErrorData::invalid_request(
                format!("tool `{}` is not available to this token", request.name),
                None,
            ));
        }
        self.tools.call(ToolCallContext::new(self, request, ctx)).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }
}

/// The rmcp scope at `path` (`/mcp` and its aliases): stateless (any replica answers any
/// request), JSON responses.
pub(crate) fn streamable_http(
    state: McpState,
    path: &str,
) -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let service = state.inner.service.clone();
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || Ok(service.clone())))
        .session_manager(Arc::new(LocalSessionManager::default()))
        .stateful_mode(false)
        .json_response(true)
        .allowed_hosts(state.inner.config.allowed_hosts())
        .on_request_fn(|http_req, ext| {
            if let Some(caller) = http_req.extensions().get::<Caller>() {
                ext.insert(caller.clone());
            }
        })
        .build()
        .scope_with_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_declares_exactly_one_scope() {
        let router = TesseraMcp::basic_router()
            + TesseraMcp::tasks_router()
            + TesseraMcp::context_router()
            + TesseraMcp::agents_router();
        let served: Vec<String> = router.list_all().into_iter().map(|t| t.name.into_owned()).collect();
        let declared: Vec<&str> = tool_table().map(|(name, _)| *name).collect();
        assert_eq!(served.len(), declared.len(), "served {served:?}, declared {declared:?}");
        for name in &served {
            assert!(tool_scope(name).is_some(), "{name} declares no scope");
        }
        assert!(declared.len() <= 64, "callable_bits keys the list cache with one bit per tool");
    }
}
