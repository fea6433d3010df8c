//! The OAuth 2.1 protocol endpoints: RFC 8414 metadata, `/oauth/authorize`, `/oauth/token`,
//! `/oauth/register` (RFC 7591) and `/oauth/revoke` (RFC 7009). Errors here take the
//! protocol's own shape (`{"error", "error_description"}`, RFC 6749 §5.2), mapped from
//! [`OAuthError`] in [`oauth_error`] only. The consent JSON API is in `consent.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::{StatusCode, header};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tessera_core::scope::CATALOG;
use tessera_oauth::rules::ClientMetadata;
use tessera_oauth::{AuthorizeParams, OAuthError, TokenForm};

use crate::ApiState;
use crate::auth::client_ip;

/// Largest form or JSON body the OAuth endpoints read.
const BODY_LIMIT: usize = 16 * 1024;
/// Registrations one address may make per window: enough for a client's test suite
/// registering a handful in a few seconds, not for filling the table.
pub const REGISTRATIONS_PER_WINDOW: u32 = 30;
/// The registration window, in seconds.
pub const REGISTRATION_WINDOW_SECS: i64 = 600;
/// Addresses remembered at most by the registration limiter (cleared when full).
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Per-address fixed-window counter for `POST /oauth/register` and for authorization
/// requests naming a metadata-document client (each may cost an outbound fetch).
#[derive(Debug, Default)]
pub struct RegistrationLimiter {
    windows: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
}

impl RegistrationLimiter {
    /// Counts one registration from `ip` at `now`; `Err(retry_after_secs)` when over.
    fn admit(&self, ip: &str, now: DateTime<Utc>) -> Result<(), u64> {
        let mut map = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(ip) {
            map.clear();
        }
        let entry = map.entry(ip.to_owned()).or_insert((now, 0));
        let elapsed = (now - entry.0).num_seconds();
        if !(0..REGISTRATION_WINDOW_SECS).contains(&elapsed) {
            *entry = (now, 0);
        }
        if entry.1 >= REGISTRATIONS_PER_WINDOW {
            let left = REGISTRATION_WINDOW_SECS.saturating_sub(elapsed).max(1);
            return Err(u64::try_from(left).unwrap_or(1));
        }
        entry.1 = entry.1.saturating_add(1);
        Ok(())
    }
}

/// Mounts the protocol endpoints (only when the authorization server is on).
pub(crate) fn configure(cfg: &mut ServiceConfig, state: &ApiState) {
    let data = web::Data::new(state.clone());
    let form = web::FormConfig::default().limit(BODY_LIMIT);
    cfg.service(
        web::resource("/.well-known/oauth-authorization-server")
            .app_data(data.clone())
            .route(web::get().to(metadata))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    )
    .service(
        web::resource("/oauth/authorize")
            .app_data(data.clone())
            .route(web::get().to(authorize))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    )
    .service(
        web::resource("/oauth/token")
            .app_data(data.clone())
            .app_data(form.clone().error_handler(form_error))
            .route(web::post().to(token))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/oauth/revoke")
            .app_data(data.clone())
            .app_data(form.clone().error_handler(form_error))
            .route(web::post().to(revoke))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/oauth/introspect")
            .app_data(data.clone())
            .app_data(form.clone().error_handler(form_error))
            .route(web::post().to(crate::introspect::introspect))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/oauth/register")
            .app_data(data)
            .app_data(web::JsonConfig::default().limit(BODY_LIMIT).error_handler(json_error))
            .route(web::post().to(register))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    );
}

/// Browser-based MCP clients call these endpoints cross-origin. They take no cookies and
/// no ambient credentials, so any origin may read their answers.
pub(crate) fn cors(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
}

async fn preflight() -> HttpResponse {
    cors(&mut HttpResponse::NoContent())
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type, Authorization, MCP-Protocol-Version"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}

/// The one mapping of [`OAuthError`] to an HTTP answer (RFC 6749 §5.2 / RFC 7591 §3.2.2).
pub(crate) fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = HttpResponse::build(status);
    cors(&mut res).insert_header((header::CACHE_CONTROL, "no-store"));
    match e {
        OAuthError::InvalidClient(_) => {
            res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tessera", error="invalid_client""#));
        }
        OAuthError::SlowDown(secs) => {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        OAuthError::TemporarilyUnavailable => {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        _ => {}
    }
    res.json(json!({"error": e.code(), "error_description": e.to_string()}))
}

pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(json!({"error": "invalid_request", "error_description": format!("this endpoint answers only {allow}")}))
}

fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    let message = match err {
        actix_web::error::UrlencodedError::Overflow { .. } | actix_web::error::UrlencodedError::UnknownLength => {
            "the form is too large".to_owned()
        }
        actix_web::error::UrlencodedError::ContentType => {
            "the body must be application/x-www-form-urlencoded".to_owned()
        }
        _ => "the form could not be read (malformed or repeated parameter)".to_owned(),
    };
    actix_web::error::InternalError::from_response("bad form", oauth_error(&OAuthError::InvalidRequest(message))).into()
}

fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match err {
        actix_web::error::JsonPayloadError::Deserialize(e) => {
            OAuthError::InvalidClientMetadata(format!("invalid metadata: {e}"))
        }
        _ => OAuthError::InvalidClientMetadata("the body must be a JSON object of at most 16 KiB".to_owned()),
    };
    actix_web::error::InternalError::from_response("bad json", oauth_error(&e)).into()
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
async fn metadata(state: web::Data<ApiState>) -> HttpResponse {
    let Some(oauth) = &state.oauth else { return HttpResponse::NotFound().finish() };
    let issuer = &oauth.config().issuer;
    cors(&mut HttpResponse::Ok()).insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        // Registration issues no secrets, so only public clients exist.
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": CATALOG,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": format!("{issuer}/"),
    }))
}

/// `GET /oauth/authorize`: checks the request, then hands it to the consent page of the web
/// UI (which signs the user in first if needed).
async fn authorize(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let Some(oauth) = &state.oauth else { return HttpResponse::NotFound().finish() };
    let params = match web::Query::<AuthorizeParams>::from_query(req.query_string()) {
        Ok(p) => p.into_inner(),
        Err(_) => return error_page(&OAuthError::InvalidRequest("malformed or repeated query parameter".into())),
    };
    // A metadata-document client id makes Tessera fetch a URL the caller chose: that costs
    // the same per-address budget as a registration, so no one drives unbounded fetches.
    if params.client_id.as_deref().is_some_and(|c| c.starts_with("https://")) {
        let key = crate::throttle::ip_key(client_ip(&req).as_deref().unwrap_or("unknown"));
        if let Err(retry) = state.registrations.admit(&key, Utc::now()) {
            return error_page(&OAuthError::SlowDown(retry));
        }
    }
    // Every failure ends on our own page: the person has not signed in, and a self-registered
    // client's redirect URI may be anyone's (RFC 9700 §4.11.2: no open redirector).
    match oauth.check_authorize(&params).await {
        Ok(_) => found(&format!("/#/oauth/consent?{}", req.query_string())),
        Err(e) => error_page(&e),
    }
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A refused authorization request ends here, never at a redirect.
fn error_page(e: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let text = html_escape(&e.to_string());
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization failed · Tessera</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"card\"><h1>Authorization failed</h1>\
         <p>The application that sent you here made a request Tessera can't accept: <code>{}</code>.</p><p>{text}</p>\
         <p>You can close this window.</p></main></body></html>",
        e.code()
    );
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `POST /oauth/token`: `authorization_code` (PKCE) and `refresh_token` grants.
async fn token(req: HttpRequest, state: web::Data<ApiState>, form: web::Form<TokenForm>) -> HttpResponse {
    let Some(oauth) = &state.oauth else { return HttpResponse::NotFound().finish() };
    match oauth.token(client_ip(&req), &form, Utc::now()).await {
        Ok(answer) => cors(&mut HttpResponse::Ok())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(answer),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /oauth/register` (RFC 7591): public clients only, rate-limited per address.
async fn register(req: HttpRequest, state: web::Data<ApiState>, body: web::Json<ClientMetadata>) -> HttpResponse {
    let Some(oauth) = &state.oauth else { return HttpResponse::NotFound().finish() };
    let now = Utc::now();
    let ip = client_ip(&req);
    // Keyed like the login throttle: an IPv6 client by its /64, so it can't rotate through it.
    let key = crate::throttle::ip_key(ip.as_deref().unwrap_or("unknown"));
    if let Err(retry) = state.registrations.admit(&key, now) {
        return oauth_error(&OAuthError::SlowDown(retry));
    }
    match oauth.register(ip, &body, now).await {
        Ok(client) => {
            cors(&mut HttpResponse::Created()).insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
                "client_id": client.id,
                "client_id_issued_at": client.created_at.timestamp(),
                "client_name": client.name,
                "redirect_uris": client.redirect_uris,
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
        }
        Err(e) => oauth_error(&e),
    }
}

/// The form of `POST /oauth/revoke`.
#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009): a refresh or access token revokes its grant, whatever
/// resource the grant is for; an unknown token, or one of another client, is answered 200 all
/// the same.
async fn revoke(req: HttpRequest, state: web::Data<ApiState>, form: web::Form<RevokeForm>) -> HttpResponse {
    let Some(oauth) = &state.oauth else { return HttpResponse::NotFound().finish() };
    let now = Utc::now();
    let Some(client_id) = form.client_id.as_deref() else {
        return oauth_error(&OAuthError::InvalidClient("client_id is required".into()));
    };
    let Some(token) = form.token.as_deref() else {
        return oauth_error(&OAuthError::InvalidRequest("token is required".into()));
    };
    match oauth.revoke(client_ip(&req), client_id, token, now).await {
        Ok(_) => cors(&mut HttpResponse::Ok()).insert_header((header::CACHE_CONTROL, "no-store")).finish(),
        Err(e) => oauth_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_limiter_allows_a_burst_then_refuses_until_the_window_ends() {
        let limiter = RegistrationLimiter::default();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for _ in 0..REGISTRATIONS_PER_WINDOW {
            assert!(limiter.admit("1.2.3.4", now).is_ok());
        }
        assert!(limiter.admit("1.2.3.4", now).is_err());
        assert!(limiter.admit("5.6.7.8", now).is_ok());
        let later = now + chrono::Duration::seconds(REGISTRATION_WINDOW_SECS);
        assert!(limiter.admit("1.2.3.4", later).is_ok());
    }

    #[test]
    fn error_page_escapes_text() {
        assert_eq!(html_escape("<a href=\"x\">"), "&lt;a href=&quot;x&quot;&gt;");
    }
}
