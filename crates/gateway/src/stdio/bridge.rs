//! The bridge: an rmcp server over Streamable HTTP on a loopback port, whose every session
//! forwards its requests to a child's MCP session ([`super::StdioPool`]). The gateway reaches
//! it with its ordinary upstream path; a random per-process secret header keeps other local
//! users out (any local user can reach a loopback port), and only with it are the server and
//! user headers believed.
//!
//! Why a loopback hop and not an in-process call: the gateway's whole request path (guard,
//! scopes, pins, filtered lists, sessions, tasks, usage) works on an HTTP exchange with an
//! upstream, and rmcp already maps many client sessions' ids onto one client session of the
//! child when requests go through a `Peer<RoleClient>`. The hop costs one local HTTP round
//! trip; the alternative was a second implementation of that path.

// resources/subscribe is the legacy era's (rmcp marks it deprecated); a child that speaks it
// is bridged as it is.
#![allow(deprecated)]

use std::borrow::Cow;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use actix_web::{App, HttpRequest, HttpServer, guard, web};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam, ClientRequest,
    CompleteRequest, CompleteRequestParams, CompleteResult, CustomRequest, CustomResult, ErrorCode, GetPromptRequest,
    GetPromptRequestParams, GetPromptResponse, InitializeRequest, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, ServerResult, SubscribeRequest, SubscribeRequestParams, UnsubscribeRequest, UnsubscribeRequestParams,
};
use rmcp::service::{PeerRequestOptions, RequestContext, ServiceError};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};
use uuid::Uuid;

use super::{StdioPool, Unavailable};

/// The header carrying the bridge's secret.
pub(crate) const SECRET_HEADER: &str = "x-tessera-stdio-secret";
/// The stdio server a request is for (believed only with the secret).
pub(crate) const SERVER_HEADER: &str = "x-tessera-stdio-server";
/// The Tessera user a request is for (believed only with the secret): picks the process of
/// a `--per-user` server.
pub(crate) const USER_HEADER: &str = "x-tessera-stdio-user";
/// Largest answer passed back from a child, as a forwarded HTTP body is bounded.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// How the gateway reaches the bridge: its URL, its secret, and the pool behind it.
#[derive(Clone)]
pub struct StdioLink {
    pub(crate) uri: hyper::Uri,
    pub(crate) secret: Arc<str>,
    /// The processes.
    pub pool: StdioPool,
}

impl std::fmt::Debug for StdioLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioLink").field("uri", &self.uri).field("secret", &"[redacted]").finish()
    }
}

/// The running bridge server.
pub struct StdioBridge {
    /// What the gateway needs to reach it.
    pub link: StdioLink,
    /// The actix server (stopped by [`StdioBridge::stop`]).
    server: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for StdioBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioBridge").field("link", &self.link).finish_non_exhaustive()
    }
}

impl StdioBridge {
    /// Starts the bridge on `127.0.0.1:0` over `pool`, on the current runtime.
    pub fn start(pool: StdioPool) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let secret: Arc<str> = hex::encode(rand::random::<[u8; 32]>()).into();
        let uri = hyper::Uri::try_from(format!("http://127.0.0.1:{port}/stdio")).map_err(std::io::Error::other)?;
        let (app_pool, app_secret) = (pool.clone(), Arc::clone(&secret));
        // One session table for every worker: a session opened on one must be found on all.
        let sessions = Arc::new(LocalSessionManager::default());
        let server = HttpServer::new(move || {
            let pool = app_pool.clone();
            let secret = Arc::clone(&app_secret);
            let mcp = StreamableHttpService::builder()
                .service_factory(Arc::new(move || Ok(Bridge { pool: pool.clone(), info: OnceLock::new() })))
                .session_manager(Arc::clone(&sessions))
                .stateful_mode(true)
                // Answers as SSE streams: rmcp sends a progress notification on the stream of
                // the request that carried its token (a JSON answer would drop it).
                .json_response(false)
                .on_request_fn(|req: &HttpRequest, ext: &mut rmcp::model::Extensions| {
                    if let Some(target) = Target::of(req) {
                        ext.insert(target);
                    }
                })
                .build()
                .scope_with_path("/stdio")
                .guard(guard::fn_guard(move |ctx| {
                    // Compared in constant time: the secret is the bridge's only lock.
                    ctx.head().headers().get(SECRET_HEADER).is_some_and(|v| {
                        let v = v.as_bytes();
                        v.len() == secret.len()
                            && v.iter().zip(secret.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
                    })
                }));
            App::new().service(mcp).default_service(web::to(actix_web::HttpResponse::NotFound))
        })
        .workers(2)
        // Answers are SSE: without it each event on a kept-alive connection waits ~40 ms
        // (Nagle against delayed ACK), as on the main server.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { link: StdioLink { uri, secret, pool }, server: handle })
    }

    /// Stops the bridge and closes every child.
    pub async fn stop(&self) {
        self.server.stop(true).await;
        self.link.pool.shutdown().await;
    }
}

/// Which server and user a request is for.
#[derive(Debug, Clone)]
struct Target {
    server: String,
    user: Uuid,
}

impl Target {
    fn of(req: &HttpRequest) -> Option<Self> {
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        Some(Self { server: header(SERVER_HEADER)?.to_owned(), user: Uuid::parse_str(header(USER_HEADER)?).ok()? })
    }
}

/// One client session of the bridge.
struct Bridge {
    pool: StdioPool,
    /// What this session was told at `initialize`.
    info: OnceLock<InitializeResult>,
}

fn unavailable(why: &Unavailable) -> ErrorData {
    let message = match why {
        Unavailable::Full => "too many stdio server processes are running".to_owned(),
        Unavailable::Restarting(s) => format!("the stdio server is restarting; try again in {s} s"),
        Unavailable::Failed(_) => "the stdio server could not be started".to_owned(),
        Unavailable::NotStdio => "no such stdio server".to_owned(),
    };
    ErrorData::new(ErrorCode(-32000), message, Some(serde_json::json!({"error": "upstream_unavailable"})))
}

impl Bridge {
    async fn forward(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let target = rmcp_actix_web::transport::on_request_extensions(&context.extensions)
            .and_then(|e| e.get::<Target>())
            .cloned()
            .ok_or_else(|| unavailable(&Unavailable::NotStdio))?;
        let record =
            self.pool.inner.servers.get(&target.server).await.map_err(|_| unavailable(&Unavailable::NotStdio))?;
        let slotted = self.pool.acquire(&record, target.user).await.map_err(|e| unavailable(&e))?;
        if let ClientRequest::InitializeRequest(_) = request {
            // The child was initialized once by Tessera; each client gets its answer.
            slotted.router.subscribe(context.peer.clone());
            return Ok(ServerResult::InitializeResult((*slotted.child.info).clone()));
        }
        let theirs = context.meta.get_progress_token();
        let timeout = self.pool.inner.config.timeout;
        let options = PeerRequestOptions::with_timeout(timeout).with_meta(context.meta.clone());
        let handle = slotted
            .child
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|e| gone(&target.server, &e))?;
        let (ours, id, peer) = (handle.progress_token.clone(), handle.id.clone(), handle.peer.clone());
        if let Some(theirs) = theirs {
            slotted.router.expect_progress(ours.clone(), context.peer.clone(), theirs).await;
        }
        let answer = tokio::select! {
            answer = handle.await_response() => answer,
            () = context.ct.cancelled() => {
                // The client cancelled: so does Tessera, towards the child.
                let _ = peer.notify_cancelled(CancelledNotificationParam::new(Some(id), Some("cancelled by the client".to_owned()))).await;
                Err(ServiceError::Cancelled { reason: None })
            }
        };
        slotted.router.forget_progress(&ours);
        match answer {
            Ok(result) => {
                let size = serde_json::to_vec(&result).map(|v| v.len()).unwrap_or(usize::MAX);
                if size > MAX_ANSWER_BYTES {
                    return Err(ErrorData::internal_error("the stdio server's answer is too large", None));
                }
                Ok(result)
            }
            Err(ServiceError::McpError(e)) => Err(e),
            Err(ServiceError::Timeout { .. }) => {
                // It stopped answering: killed, and restarted on the next request.
                tracing::warn!(server = %target.server, "stdio server did not answer in time; killing it");
                slotted.child.kill();
                Err(ErrorData::new(
                    ErrorCode(-32000),
                    "the stdio server did not answer in time",
                    Some(serde_json::json!({"error": "upstream_timeout"})),
                ))
            }
            Err(e) => Err(gone(&target.server, &e)),
        }
    }
}

/// The child's session ended under a request (it died, or was killed).
fn gone(server: &str, e: &ServiceError) -> ErrorData {
    tracing::warn!(server = %server, error = %e, "stdio server request failed");
    ErrorData::new(
        ErrorCode(-32000),
        "the stdio server exited before answering",
        Some(serde_json::json!({"error": "upstream_unavailable"})),
    )
}

/// An unexpected answer kind from the child.
fn mismatched() -> ErrorData {
    ErrorData::internal_error("the stdio server answered with a result of another kind", None)
}

/// rmcp-actix-web serves a [`ServerHandler`], so each request kind is rebuilt as the
/// request it was and forwarded whole; the answer's kind is checked on the way back.
macro_rules! forwarded {
    ($fn:ident, $params:ty, $req:ident, $build:expr, $res:ty, |$r:ident| $back:expr) => {
        async fn $fn(&self, params: $params, context: RequestContext<RoleServer>) -> Result<$res, ErrorData> {
            let $r = self.forward(ClientRequest::$req($build(params)), context).await?;
            $back
        }
    };
}

impl ServerHandler for Bridge {
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        match self.forward(ClientRequest::InitializeRequest(InitializeRequest::new(request)), context).await? {
            ServerResult::InitializeResult(info) => {
                let _ = self.info.set(info.clone());
                Ok(info)
            }
            _ => Err(mismatched()),
        }
    }

    forwarded!(
        call_tool,
        CallToolRequestParams,
        CallToolRequest,
        CallToolRequest::new,
        CallToolResponse,
        |r| match r {
            ServerResult::CallToolResult(r) => Ok(r.into()),
            ServerResult::CreateTaskResult(r) => Ok(r.into()),
            ServerResult::InputRequiredResult(r) => Ok(r.into()),
            _ => Err(mismatched()),
        }
    );
    forwarded!(list_tools, Option<PaginatedRequestParams>, ListToolsRequest, optional, ListToolsResult, |r| match r {
        ServerResult::ListToolsResult(r) => Ok(r),
        _ => Err(mismatched()),
    });
    forwarded!(list_prompts, Option<PaginatedRequestParams>, ListPromptsRequest, optional, ListPromptsResult, |r| {
        match r {
            ServerResult::ListPromptsResult(r) => Ok(r),
            _ => Err(mismatched()),
        }
    });
    forwarded!(get_prompt, GetPromptRequestParams, GetPromptRequest, GetPromptRequest::new, GetPromptResponse, |r| {
        match r {
            ServerResult::GetPromptResult(r) => Ok(r.into()),
            ServerResult::InputRequiredResult(r) => Ok(r.into()),
            _ => Err(mismatched()),
        }
    });
    forwarded!(
        list_resources,
        Option<PaginatedRequestParams>,
        ListResourcesRequest,
        optional,
        ListResourcesResult,
        |r| match r {
            ServerResult::ListResourcesResult(r) => Ok(r),
            _ => Err(mismatched()),
        }
    );
    forwarded!(
        list_resource_templates,
        Option<PaginatedRequestParams>,
        ListResourceTemplatesRequest,
        optional,
        ListResourceTemplatesResult,
        |r| match r {
            ServerResult::ListResourceTemplatesResult(r) => Ok(r),
            _ => Err(mismatched()),
        }
    );
    forwarded!(
        read_resource,
        ReadResourceRequestParams,
        ReadResourceRequest,
        ReadResourceRequest::new,
        ReadResourceResponse,
        |r| match r {
            ServerResult::ReadResourceResult(r) => Ok(r.into()),
            ServerResult::InputRequiredResult(r) => Ok(r.into()),
            _ => Err(mismatched()),
        }
    );
    forwarded!(subscribe, SubscribeRequestParams, SubscribeRequest, SubscribeRequest::new, (), |r| match r {
        ServerResult::EmptyResult(_) => Ok(()),
        _ => Err(mismatched()),
    });
    forwarded!(unsubscribe, UnsubscribeRequestParams, UnsubscribeRequest, UnsubscribeRequest::new, (), |r| match r {
        ServerResult::EmptyResult(_) => Ok(()),
        _ => Err(mismatched()),
    });
    forwarded!(complete, CompleteRequestParams, CompleteRequest, CompleteRequest::new, CompleteResult, |r| match r {
        ServerResult::CompleteResult(r) => Ok(r),
        _ => Err(mismatched()),
    });

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        match self.forward(ClientRequest::CustomRequest(request), context).await? {
            ServerResult::CustomResult(r) => Ok(r),
            _ => Err(mismatched()),
        }
    }

    fn get_info(&self) -> ServerConfig {
        // Known once this session initialized: the child's own answer.
        self.info
            .get()
            .cloned()
            .unwrap_or_else(|| ServerConfig::new(ServerCapabilities::builder().enable_tools().build()))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }
}

fn optional<M: Default, P>(params: Option<P>) -> rmcp::model::RequestOptionalParam<M, P> {
    let mut request =
        rmcp::model::RequestOptionalParam { method: M::default(), params: None, extensions: Default::default() };
    request.params = params;
    request
}
