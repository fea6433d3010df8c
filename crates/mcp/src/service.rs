//! The rmcp service: server info, scope-filtered `tools/list`, scope-checked `tools/call`,
//! and the stateless Streamable HTTP transport it is served through.

use std::borrow::Cow;
use std::sync::Arc;

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
use tessera_core::scope::ACCESS;
use tessera_core::validate::Principal;
use tessera_store::Store;

use crate::McpState;

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
pub(crate) const EXECUTE_SCOPE: &str = "execute:mcp";

/// The scope a tool needs (besides `execute:mcp` for calling it); `None` for unknown tools.
pub fn tool_scope(name: &str) -> Option<&'static str> {
    Some(match name {
        "whoami" | "echo" => ACCESS,
        "list_tasks" | "get_task" => "read:tasks",
        "create_task" | "update_task" | "complete_task" | "delete_task" => "write:tasks",
        "get_context" | "list_context" => "read:context",
        "set_context" => "write:context",
        "list_agents" => "read:agents",
        "register_agent" | "update_agent" => "write:agents",
        _ => return None,
    })
}

/// Whether `principal` may call the tool `name`.
pub(crate) fn may_call(principal: &Principal, name: &str) -> bool {
    principal.effective.contains(EXECUTE_SCOPE) && tool_scope(name).is_some_and(|s| principal.effective.contains(s))
}

/// The MCP server: one per request in stateless mode, so it only holds cheap handles.
#[derive(Debug, Clone)]
pub struct TesseraMcp {
    pub(crate) store: Store,
    /// Built once: the macro form would rebuild every tool's schema per list and call.
    tools: Arc<ToolRouter<TesseraMcp>>,
}

impl TesseraMcp {
    /// A server over `store` with every tool.
    pub fn new(store: Store) -> Self {
        let tools = Self::basic_router() + Self::tasks_router() + Self::context_router() + Self::agents_router();
        Self { store, tools: Arc::new(tools) }
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
        let tools: Vec<Tool> = self.tools.list_all().into_iter().filter(|t| may_call(&principal, &t.name)).collect();
        Ok(ListToolsResult::with_all_items(tools))
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
