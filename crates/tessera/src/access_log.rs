//! The root span of every HTTP request, and the optional access log.
//!
//! tracing-actix-web's default root span records the full request target, query string
//! included, plus the client address from `Forwarded`/`X-Forwarded-For` and the error's
//! `Debug`; every event inside the request repeats those fields. A query string or an error
//! message may carry whatever the client sent, so this span records the path only (DESIGN.md
//! "Operations": no query strings in any log line).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// Target of the per-request lines, so a filter can address them (`tessera::access=debug`).
pub const TARGET: &str = "tessera::access";

/// Whether per-request lines are written at INFO (`TESSERA_ACCESS_LOG=1`) rather than DEBUG.
/// Process-wide because actix-tracing's builder has no instance to hold it.
static ACCESS_LOG: AtomicBool = AtomicBool::new(false);

/// Turns the INFO access log on or off for this process.
pub fn set_enabled(enabled: bool) {
    ACCESS_LOG.store(enabled, Ordering::Relaxed);
}

/// When the request started, for the access line's latency.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

/// A [`RootSpanBuilder`] that records the method, route and path (never the query), the
/// request id and the status, and writes one access line per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathOnlySpan;

impl RootSpanBuilder for PathOnlySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = tracing::field::Empty,
            http.path = %request.path(),
            request_id = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
        );
        if span.is_disabled() {
            return span;
        }
        if let Some(id) = request.extensions().get::<RequestId>() {
            span.record("request_id", tracing::field::display(id));
        }
        // Finding the route matches the request against every pattern again (regexes, a
        // measurable share of a gateway request): only when debugging.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let route = request.match_pattern().unwrap_or_else(|| "default".to_owned());
            span.record("http.route", route.as_str());
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let _entered = span.enter();
        let on = ACCESS_LOG.load(Ordering::Relaxed);
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.status_code", status);
                let request = response.request();
                let extensions = request.extensions();
                let latency_ms = extensions.get::<Started>().map(|s| s.0.elapsed().as_millis());
                let (method, path) = (request.method().as_str(), request.path());
                if !on && !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
                    return;
                }
                let request_id = extensions.get::<RequestId>().map(ToString::to_string).unwrap_or_default();
                if on {
                    tracing::info!(target: TARGET, method, path, status, latency_ms, request_id, "request");
                } else {
                    tracing::debug!(target: TARGET, method, path, status, latency_ms, request_id, "request");
                }
            }
            // Only a middleware failure ends here; the span still names method and path.
            Err(error) => {
                let status = error.as_response_error().status_code().as_u16();
                span.record("http.status_code", status);
                if on {
                    tracing::info!(target: TARGET, status, "request failed");
                } else {
                    tracing::debug!(target: TARGET, status, "request failed");
                }
            }
        }
    }
}
