//! The web UI: the static files of `frontend/` (HTML, CSS, ES modules; no build step),
//! embedded in the binary and served at `/` and `/assets/...`.
//!
//! Every answer from here, errors included, carries the UI's security headers: a CSP that
//! allows only this origin (no inline scripts or styles, no framing), `Referrer-Policy:
//! no-referrer` and `X-Content-Type-Options: nosniff`. Mount it after the API and MCP routes
//! (`App::new()....configure(tessera::ui::configure)`); it claims only `/` and `/assets/`.

use std::borrow::Cow;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use rust_embed::RustEmbed;

/// The files under `frontend/` that the browser may load; tests and `node_modules` stay out.
#[derive(RustEmbed)]
#[folder = "../../frontend/"]
#[include = "index.html"]
#[include = "assets/*"]
struct Frontend;

/// The UI's Content-Security-Policy: same origin only, no inline scripts or styles.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Mounts `GET /` (the single page) and `GET /assets/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .route(web::get().to(index))
            .route(web::head().to(index))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/assets/{file:.*}")
            .route(web::get().to(asset))
            .route(web::head().to(asset))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let file = file.into_inner();
    serve(&req, &format!("assets/{file}"))
}

async fn method_not_allowed() -> HttpResponse {
    let mut res = secured(HttpResponse::MethodNotAllowed());
    res.insert_header((header::ALLOW, "GET, HEAD"));
    // The project's one error shape, like every other 405.
    res.json(serde_json::json!({"error": tessera_core::ErrorCode::MethodNotAllowed, "message": "this path answers only GET, HEAD"}))
}

/// Answers with the embedded `path`: 200, 304 when the browser's copy is current, or 404.
fn serve(req: &HttpRequest, path: &str) -> HttpResponse {
    let Some(file) = Frontend::get(path) else {
        return secured(HttpResponse::NotFound()).content_type("text/plain; charset=utf-8").body("not found\n");
    };
    let etag = format!("\"{}\"", hex_prefix(&file.metadata.sha256_hash()));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = secured(HttpResponse::build(if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK }));
    // Always revalidate: a new binary must never run against a stale cached script.
    res.insert_header((header::CACHE_CONTROL, "no-cache")).insert_header((header::ETAG, etag));
    if fresh {
        return res.finish();
    }
    res.content_type(content_type(path));
    if req.method() == Method::HEAD {
        return res.insert_header((header::CONTENT_LENGTH, file.data.len())).finish();
    }
    match file.data {
        Cow::Borrowed(bytes) => res.body(bytes),
        Cow::Owned(bytes) => res.body(bytes),
    }
}

/// A response builder with the UI's security headers.
fn secured(mut res: HttpResponseBuilder) -> HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    res
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, test};

    #[actix_web::test]
    async fn index_is_served_with_the_security_headers() {
        let app = init_service(App::new().configure(configure)).await;
        let res = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h.get(header::CONTENT_SECURITY_POLICY).unwrap(), CONTENT_SECURITY_POLICY);
        assert_eq!(h.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert!(h.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/html"));
        let body = read_body(res).await;
        assert!(std::str::from_utf8(&body).unwrap().contains("<script type=\"module\""));
    }

    #[actix_web::test]
    async fn a_current_copy_gets_304_and_an_unknown_asset_404_both_with_headers() {
        let app = init_service(App::new().configure(configure)).await;
        let res = call_service(&app, TestRequest::get().uri("/assets/app.js").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/javascript"));
        let etag = res.headers().get(header::ETAG).unwrap().clone();
        let again = TestRequest::get().uri("/assets/app.js").insert_header((header::IF_NONE_MATCH, etag)).to_request();
        let res = call_service(&app, again).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let res = call_service(&app, test::TestRequest::get().uri("/assets/nope.js").to_request()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers().get(header::CONTENT_SECURITY_POLICY).unwrap(), CONTENT_SECURITY_POLICY);
    }

    #[actix_web::test]
    async fn tests_and_node_modules_are_not_embedded() {
        assert!(Frontend::iter().all(|p| p == "index.html" || p.starts_with("assets/")));
    }
}
