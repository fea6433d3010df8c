//! Client ID Metadata Documents: a `client_id` that is an `https` URL is fetched (short
//! timeout, small size limit, no redirects, pinned to an address that passed the SSRF
//! guard) and cached for a bounded time.

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
/// A fetched document is trusted this long before it is fetched again.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
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
            m.get(client_id).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, client)| client.clone())
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
        if !self.allow_local && addrs.iter().any(|a| !rules::is_public_ip(a.ip())) {
            return Err(refused("its host is a private, loopback or link-local address"));
        }
        // Pinned to the address just checked, so a second lookup can't point elsewhere.
        let mut builder = reqwest::Client::builder()
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
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= MAX_CACHED {
                m.clear();
            }
            m.insert(client_id.to_owned(), (Instant::now(), client.clone()));
        }
        Ok(client)
    }
}
