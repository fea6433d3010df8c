//! A small upstream MCP server for the gateway rows of `scripts/bench`: rmcp, stateless JSON
//! mode, three tools (`echo` and `add` read-only, `note` not). The bench measures it directly
//! and through Tessera's `/mcp/NAME`, so the difference is the gateway's cost.
//!
//! Usage: `upstream <bind>`; serves `/mcp`. `upstream stdio` serves the same tools over stdin
//! and stdout instead (the stdio rows: Tessera runs it as a stdio server).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::{App, HttpServer};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_router};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};
use schemars::JsonSchema;
use serde::Deserialize;

const PROTOCOL_VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_03_26];

#[derive(Clone)]
struct Upstream {
    tools: Arc<ToolRouter<Upstream>>,
}

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// First addend.
    a: i64,
    /// Second addend.
    b: i64,
}

#[tool_router(router = router)]
impl Upstream {
    /// Echo.
    #[tool(description = "Return the given text unchanged.", annotations(read_only_hint = true))]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
    }

    /// Add.
    #[tool(description = "Add two integers.", annotations(read_only_hint = true))]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> Result<CallToolResult, ErrorData> {
        let sum = args.a.checked_add(args.b).ok_or_else(|| ErrorData::invalid_params("overflow", None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(sum.to_string())]))
    }

    /// Note (a write-class tool).
    #[tool(description = "Pretend to store a note.", annotations(read_only_hint = false))]
    async fn note(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("noted {} bytes", args.text.len()))]))
    }
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("bench-upstream", env!("CARGO_PKG_VERSION")))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.list_all()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.tools.call(ToolCallContext::new(self, request, ctx)).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bind] = args.as_slice() else {
        eprintln!("usage: upstream <bind> | upstream stdio");
        std::process::exit(2);
    };
    let server = Upstream { tools: Arc::new(Upstream::router()) };
    if bind == "stdio" {
        use rmcp::ServiceExt;
        let running = server.serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
        running.waiting().await.map_err(std::io::Error::other)?;
        return Ok(());
    }
    HttpServer::new(move || {
        let server = server.clone();
        let mcp = StreamableHttpService::builder()
            .service_factory(Arc::new(move || Ok(server.clone())))
            .session_manager(Arc::new(LocalSessionManager::default()))
            .stateful_mode(false)
            .json_response(true)
            .build()
            .scope_with_path("/mcp");
        App::new().service(mcp)
    })
    .bind(bind.as_str())?
    .run()
    .await
}
