//! The HTTP client the gateway forwards with: hyper's pooled client over rustls, one per
//! worker thread.
//!
//! reqwest served here first. Per request it parsed the URL three times (building the
//! request, in its redirect policy, again on the answer), ran a redirect and a retry layer
//! the gateway never wants, and cloned the request for a retry that never came: a measured
//! fifth of a forwarded call's instructions. The gateway needs none of it.

use std::time::Duration;

use actix_web::web::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An upstream answer; its body is read with [`chunk`].
pub(crate) type Answer = hyper::Response<hyper::body::Incoming>;

/// A request to an upstream.
pub(crate) type Request = hyper::Request<Full<Bytes>>;

/// How long a connection to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP and HTTPS client for upstream servers. It never follows redirects (an upstream
/// must not bounce our credential headers elsewhere) and never retries (a forwarded call
/// may not be idempotent).
#[derive(Clone, Debug)]
pub(crate) struct UpstreamClient(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>);

/// Why no answer came.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting took longer than [`CONNECT_TIMEOUT`].
    ConnectTimeout,
    /// Refused, reset, DNS, TLS: the text of the innermost cause.
    Failed(String),
}

impl UpstreamClient {
    /// A client; fails only if the TLS configuration cannot be built.
    pub(crate) fn new() -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self(Client::builder(TokioExecutor::new()).build(https)))
    }

    /// The calling worker thread's client. Each actix worker runs its own single-threaded
    /// runtime, and a pooled connection lives on the runtime that opened it: with one client
    /// for all workers, half the requests handed their connection's I/O to the other thread
    /// and back (two cross-thread wake-ups per request, seen with strace).
    pub(crate) fn for_this_thread(fallback: &Self) -> Self {
        thread_local! {
            static CLIENT: std::cell::OnceCell<UpstreamClient> = const { std::cell::OnceCell::new() };
        }
        CLIENT.with(|c| c.get_or_init(|| Self::new().unwrap_or_else(|_| fallback.clone())).clone())
    }

    /// Sends `req`.
    pub(crate) async fn send(&self, req: Request) -> Result<Answer, SendError> {
        self.0.request(req).await.map_err(|e| {
            if innermost_io_kind(&e) == Some(std::io::ErrorKind::TimedOut) {
                SendError::ConnectTimeout
            } else {
                SendError::Failed(innermost(&e))
            }
        })
    }
}

/// The next piece of an answer's body (`None` at its end); trailers are skipped.
pub(crate) async fn chunk(answer: &mut Answer) -> Result<Option<Bytes>, hyper::Error> {
    loop {
        match answer.body_mut().frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// An error and its causes, outermost first.
fn causes<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |err| err.source())
}

/// The text of an error's innermost cause (the outer ones say "client error (Connect)").
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    causes(e).last().map(ToString::to_string).unwrap_or_default()
}

/// The kind of the innermost I/O error among an error's causes.
fn innermost_io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    causes(e).filter_map(|err| err.downcast_ref::<std::io::Error>()).last().map(std::io::Error::kind)
}
