//! "rmcp without Tessera" for `scripts/bench`: Tessera's own tool router served by rmcp in the
//! same stateless JSON mode as `/mcp`, with no guard at all: no token, no Validator, no body
//! peek, no rate limit, no usage, no metrics. Every request acts as one fixed principal (the
//! bench token's scopes), so `tools/list` answers the same list as Tessera's `/mcp`. The gap
//! between this row and Tessera's is what the guard costs.
//!
//! Usage: `rmcp-bare <bind> "<granted scopes>"`. Nothing here reads the database (the pool
//! is lazy and never used by `tools/list`, `whoami` or `echo`).

use std::sync::Arc;

use actix_web::{App, HttpServer};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};
use tessera_core::ScopeSet;
use tessera_core::validate::Principal;
use tessera_mcp::{Caller, TesseraMcp};
use tessera_store::Store;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bind, scopes] = args.as_slice() else {
        eprintln!("usage: rmcp-bare <bind> \"<granted scopes>\"");
        std::process::exit(2);
    };
    let granted = ScopeSet::parse_grant(scopes).map_err(std::io::Error::other)?;
    let caller = Caller(Arc::new(Principal {
        token_id: uuid::Uuid::now_v7(),
        user_id: uuid::Uuid::now_v7(),
        name: "bench".to_owned(),
        effective: granted.expand(),
        granted,
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
        rate_limit_per_hour: None,
        user_rate_limit_per_hour: None,
    }));
    let pool = sqlx::PgPool::connect_lazy("postgres://bench@127.0.0.1:1/none").map_err(std::io::Error::other)?;
    let service = TesseraMcp::new(Store::from_pool(pool));
    HttpServer::new(move || {
        let service = service.clone();
        let caller = caller.clone();
        let mcp = StreamableHttpService::builder()
            .service_factory(Arc::new(move || Ok(service.clone())))
            .session_manager(Arc::new(LocalSessionManager::default()))
            .stateful_mode(false)
            .json_response(true)
            .on_request_fn(move |_http_req, ext| {
                ext.insert(caller.clone());
            })
            .build()
            .scope_with_path("/mcp");
        App::new().service(mcp)
    })
    .bind(bind.as_str())?
    .run()
    .await
}
