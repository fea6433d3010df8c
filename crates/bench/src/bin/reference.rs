//! The reference ceiling for `scripts/bench`: the least an MCP endpoint can do per request —
//! check an EdDSA JWT's signature, `exp` and `aud`, then answer a fixed `tools/list`.
//!
//! Usage: `reference <bind> <issuer> <audience> <ed25519-x-base64url>`

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"whoami","description":"Who this token is","inputSchema":{"type":"object"}},{"name":"echo","description":"Echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}}"#;

struct Check {
    key: DecodingKey,
    validation: Validation,
}

async fn mcp(req: HttpRequest, check: web::Data<Check>) -> HttpResponse {
    let token =
        req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match token.map(|t| decode::<serde_json::Value>(t, &check.key, &check.validation)) {
        Some(Ok(_)) => HttpResponse::Ok().content_type("application/json").body(TOOLS_LIST),
        _ => HttpResponse::Unauthorized().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bind, issuer, audience, x] = args.as_slice() else {
        eprintln!("usage: reference <bind> <issuer> <audience> <ed25519-x-base64url>");
        std::process::exit(2);
    };
    let key = DecodingKey::from_ed_components(x).map_err(std::io::Error::other)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    let check = web::Data::new(Check { key, validation });
    HttpServer::new(move || App::new().app_data(check.clone()).route("/mcp", web::post().to(mcp)))
        .bind(bind.as_str())?
        .run()
        .await
}
