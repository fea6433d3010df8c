//! The reference ceilings for `scripts/bench`: the least an MCP endpoint can do per request —
//! read the whole request body (bounded as Tessera's `/mcp` bounds it) and check that it is
//! JSON, take one bearer header, verify the JWT, then answer a fixed `tools/list`. No rmcp,
//! no JSON-RPC dispatch, no database, no rate limit, no usage.
//!
//! Reading the body is not optional: a server that answers before reading it cannot reuse the
//! connection (actix closes it, since the unread bytes would be taken for the next request),
//! so every request would pay a new TCP connection and the "ceiling" would be a fraction of
//! what a real server reaches. `scripts/bench` checks that no row reconnects per request.
//!
//! Usage:
//! - `reference <bind> <issuer> <audience> eddsa <ed25519-x-base64url>`: verifies Tessera's
//!   own EdDSA token on every request (signature, `exp`, `aud`, `iss`).
//! - `reference <bind> <issuer> <audience> hs256 <secret> <scope>`: verifies an HS256 token on
//!   every request: one header of at most 4 KiB, signature, `iss`, `aud`, `exp`, `nbf`, and
//!   that `scope` holds `<scope>` (the issue 16 reference).
//! - `reference mint-hs256 <issuer> <audience> <secret> <scopes>`: prints an HS256 token for
//!   the mode above, valid for a day.

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"whoami","description":"Who this token is","inputSchema":{"type":"object"}},{"name":"echo","description":"Echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}}"#;

/// Largest `Authorization` header accepted, as Tessera's.
const MAX_HEADER_BYTES: usize = 4096;
/// Largest request body accepted, as Tessera's `/mcp` (`MAX_BODY_BYTES` in
/// `crates/mcp/src/middleware.rs`); a larger one is refused with 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The claims the HS256 mode reads (the rest of the token is ignored).
#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    #[serde(default)]
    scope: String,
}

struct Check {
    key: DecodingKey,
    validation: Validation,
    /// A scope the token must hold (HS256 mode); `None` checks none.
    scope: Option<String>,
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_HEADER_BYTES {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The body has been read whole by the `Bytes` extractor (bounded by the route's
/// [`web::PayloadConfig`]) before this runs, so the connection stays reusable whatever the
/// answer.
async fn mcp(req: HttpRequest, body: web::Bytes, check: web::Data<Check>) -> HttpResponse {
    let ok = match (bearer(&req), &check.scope) {
        (Some(t), None) => decode::<serde_json::Value>(t, &check.key, &check.validation).is_ok(),
        (Some(t), Some(needed)) => decode::<Claims>(t, &check.key, &check.validation)
            .is_ok_and(|d| d.claims.scope.split(' ').any(|s| s == needed)),
        (None, _) => false,
    };
    if !ok {
        return HttpResponse::Unauthorized().finish();
    }
    // The least any MCP server does with a JSON-RPC body: check that it is JSON.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return HttpResponse::BadRequest().finish();
    }
    HttpResponse::Ok().content_type("application/json").body(TOOLS_LIST)
}

fn usage() -> std::io::Error {
    eprintln!(
        "usage: reference <bind> <issuer> <audience> eddsa <x> | reference <bind> <issuer> <audience> hs256 <secret> \
         <scope> | reference mint-hs256 <issuer> <audience> <secret> <scopes>"
    );
    std::io::Error::other("bad arguments")
}

fn mint(issuer: &str, audience: &str, secret: &str, scopes: &str) -> std::io::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(std::io::Error::other)?
        .as_secs()
        .try_into()
        .map_err(std::io::Error::other)?;
    let claims = Claims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: "bench".to_owned(),
        exp: now + 86_400,
        nbf: now - 5,
        iat: now,
        scope: scopes.to_owned(),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(std::io::Error::other)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [cmd, issuer, audience, secret, scopes] if cmd == "mint-hs256" => {
            println!("{}", mint(issuer, audience, secret, scopes)?);
            return Ok(());
        }
        [_, issuer, audience, mode, x] if mode == "eddsa" => {
            let key = DecodingKey::from_ed_components(x).map_err(std::io::Error::other)?;
            let mut validation = Validation::new(Algorithm::EdDSA);
            validation.set_audience(&[audience]);
            validation.set_issuer(&[issuer]);
            Check { key, validation, scope: None }
        }
        [_, issuer, audience, mode, secret, scope] if mode == "hs256" => {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_audience(&[audience]);
            validation.set_issuer(&[issuer]);
            validation.validate_nbf = true;
            Check { key: DecodingKey::from_secret(secret.as_bytes()), validation, scope: Some(scope.clone()) }
        }
        _ => return Err(usage()),
    };
    let bind = args.first().ok_or_else(usage)?.clone();
    let check = web::Data::new(check);
    HttpServer::new(move || {
        App::new()
            .app_data(check.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/mcp", web::post().to(mcp))
    })
    .bind(bind.as_str())?
    .run()
    .await
}
