//! Client ID Metadata Documents: a `client_id` that is an `https` URL is fetched (short
//! timeout, small size limit, no redirects, pinned to an address that passed the SSRF
//! guard) and cached as its `Cache-Control` says, within bounds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::rules::{self, ClientMetadata, OAuthError, ValidClient};

/// A metadata document is fetched within this time.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest metadata document read.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a fetched document is trusted when its answer says nothing about caching.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// The longest a document is trusted, whatever its `max-age`: a client that changes its
/// redirect URIs (or is taken over) is seen within this time.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Documents cached at most (the cache is cleared when full).
const MAX_CACHED: usize = 1000;

/// A metadata document as published.
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    #[serde(flatten)]
    meta: ClientMetadata,
}

/// Fetches and checks metadata documents.
pub struct CimdFetcher {
    allow_local: bool,
    extra_roots: Vec<reqwest::Certificate>,
    /// Client id → (trusted until, checked metadata).
    cache: Mutex<HashMap<String, (Instant, ValidClient)>>,
}

impl std::fmt::Debug for CimdFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdFetcher").field("allow_local", &self.allow_local).finish_non_exhaustive()
    }
}

fn refused(m: &str) -> OAuthError {
    OAuthError::InvalidClient(format!("the client metadata document could not be used: {m}"))
}

impl CimdFetcher {
    /// A fetcher trusting the system's roots plus `extra_ca_pem` (PEM certificates);
    /// `allow_local` lets it fetch from loopback and private addresses (development, tests).
    pub fn new(allow_local: bool, extra_ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let extra_roots = match extra_ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("extra CA file: {e}"))?,
            None => Vec::new(),
        };
        Ok(Self { allow_local, extra_roots, cache: Mutex::new(HashMap::new()) })
    }

    /// A fetcher with the system roots only.
    pub fn empty(allow_local: bool) -> Self {
        Self { allow_local, extra_roots: Vec::new(), cache: Mutex::new(HashMap::new()) }
    }

    /// The checked metadata of `client_id` (an `https` URL).
    pub async fn fetch(&self, client_id: &str) -> Result<ValidClient, OAuthError> {
        let url = rules::check_cimd_url(client_id)?;
        let cached = self.cache.lock().ok().and_then(|m| {
            m.get(client_id).filter(|(until, _)| Instant::now() < *until).map(|(_, client)| client.clone())
        });
        if let Some(client) = cached {
            return Ok(client);
        }
        let host = url.host_str().ok_or_else(|| refused("no host"))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| refused("its host did not resolve in time"))?
            .map_err(|_| refused("its host does not resolve"))?;
        let addrs: Vec<SocketAddr> = lookup.collect();
        let addr = *addrs.first().ok_or_else(|| refused("its host does not resolve"))?;
        if !self.allow_local && addrs.iter().any(|a| !tessera_core::net::is_public(a.ip())) {
            return Err(refused("its host is a private, loopback or link-local address"));
        }
        // Pinned to the address just checked, so a second lookup can't point elsewhere.
        // No proxy from the environment either: a proxy would connect wherever it likes,
        // past the address just checked.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .resolve(&host, addr);
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let http = builder.build().map_err(|_| OAuthError::ServerError)?;
        let mut res = http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| refused("it could not be fetched"))?;
        let lifetime = cache_lifetime(res.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()));
        if !res.status().is_success() {
            return Err(refused(&format!("fetching it answered {}", res.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|_| refused("it could not be read"))? {
            if body.len().saturating_add(chunk.len()) > MAX_DOCUMENT_BYTES {
                return Err(refused("it is larger than 64 KiB"));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Document = serde_json::from_slice(&body).map_err(|_| refused("it is not a JSON object"))?;
        let client = rules::check_cimd_document(client_id, doc.client_id.as_deref(), &doc.meta)?;
        if !lifetime.is_zero()
            && let Ok(mut m) = self.cache.lock()
        {
            if m.len() >= MAX_CACHED {
                m.clear();
            }
            m.insert(client_id.to_owned(), (Instant::now() + lifetime, client.clone()));
        }
        Ok(client)
    }
}

/// How long to trust a document served with this `Cache-Control` (RFC 9111 §5.2.2):
/// `no-store` and `no-cache` not at all, `max-age` up to [`MAX_CACHE_TTL`], otherwise
/// [`CACHE_TTL`].
pub fn cache_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(header) = cache_control else { return CACHE_TTL };
    let mut lifetime = CACHE_TTL;
    for directive in header.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').map_or((directive, None), |(n, v)| (n.trim(), Some(v.trim())));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Duration::ZERO;
        }
        if name.eq_ignore_ascii_case("max-age") {
            // An unreadable max-age is treated as stale (RFC 9111 §4.2.1).
            let secs = value.map(|v| v.trim_matches('"')).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            lifetime = Duration::from_secs(secs).min(MAX_CACHE_TTL);
        }
    }
    lifetime
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_header_is_the_default_lifetime() {
        assert_eq!(cache_lifetime(None), CACHE_TTL);
    }

    #[test]
    fn max_age_sets_the_lifetime() {
        assert_eq!(cache_lifetime(Some("public, max-age=60")), Duration::from_secs(60));
    }

    #[test]
    fn max_age_is_capped() {
        assert_eq!(cache_lifetime(Some("max-age=31536000")), MAX_CACHE_TTL);
    }

    #[test]
    fn no_store_and_no_cache_are_not_cached() {
        assert_eq!(cache_lifetime(Some("no-store")), Duration::ZERO);
        assert_eq!(cache_lifetime(Some("max-age=600, no-cache")), Duration::ZERO);
    }

    #[test]
    fn an_unreadable_max_age_is_stale() {
        assert_eq!(cache_lifetime(Some("max-age=soon")), Duration::ZERO);
    }

    /// A fetch goes to the address that passed the guard even when the environment names a
    /// proxy (which would connect wherever it is told). reqwest reads proxy variables once
    /// per process, so the check runs in a child process of this test binary whose
    /// environment points every proxy variable at a listener nobody answers on.
    #[test]
    fn a_fetch_connects_to_the_checked_address_not_to_a_proxy_from_the_environment() {
        if std::env::var_os(tessera_testkit::PROXY_CHILD).is_some() {
            return fetch_in_child();
        }
        let test = format!(
            "{}::a_fetch_connects_to_the_checked_address_not_to_a_proxy_from_the_environment",
            module_path!().split_once("::").unwrap().1
        );
        tessera_testkit::assert_passes_beside_a_silent_proxy(&test);
    }

    fn fetch_in_child() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("https://{}/client.json", receiver.local_addr().unwrap());
            let fetcher = CimdFetcher::empty(true);
            let accepted = tokio::spawn(async move { receiver.accept().await.is_ok() });
            // No TLS on the other side: the fetch fails, but it must have gone there.
            assert!(fetcher.fetch(&url).await.is_err());
            let reached = tokio::time::timeout(Duration::from_secs(5), accepted).await;
            assert!(matches!(reached, Ok(Ok(true))), "the checked address was never connected to");
        });
    }
}
