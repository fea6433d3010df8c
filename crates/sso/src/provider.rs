//! The OpenID provider as Tessera talks to it: discovery, the authorization URL, the code
//! exchange, and ID-token signatures checked against its JWKS, fetched again when a token
//! names a key Tessera has not seen (the provider rotated its keys).

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::rules::{self, ClaimError, Expected, IdClaims, Identity};

/// Time allowed for any request to the provider.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest document read from the provider (discovery, JWKS, token response).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long discovery is trusted before it is fetched again: a sign-in started a second after
/// the last one notices that the provider is down (and says so, rather than sending the
/// browser to a dead page), while a burst of anonymous sign-in starts fetches it once a second.
const METADATA_TTL: Duration = Duration::from_secs(1);
/// How long a JWKS is trusted; an unknown `kid` fetches it sooner.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// Least time between two JWKS fetches caused by unknown keys.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(1);
/// Signature algorithms accepted: asymmetric only (no `none`, no HMAC keyed by the secret).
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The relying party's settings (`TESSERA_OIDC_*`).
#[derive(Clone)]
pub struct SsoConfig {
    /// The provider's issuer URL, as its discovery document states it.
    pub issuer: Url,
    /// Tessera's client id at the provider.
    pub client_id: String,
    /// Tessera's client secret at the provider.
    pub client_secret: String,
    /// Scopes asked for (space-separated).
    pub scopes: String,
    /// Dotted path of the claim holding group names.
    pub groups_claim: Vec<String>,
    /// Groups whose members are administrators; empty: admin status is Tessera's own.
    pub admin_groups: Vec<String>,
    /// `{public}/api/v2/auth/oidc/callback`.
    pub redirect_uri: String,
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .field("admin_groups", &self.admin_groups)
            .finish()
    }
}

/// Why a sign-in through the provider failed; each has a code the sign-in page explains.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The provider could not be reached or answered with an error.
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    /// The provider's answer is not what OpenID Connect says it must be.
    #[error("the identity provider's answer is invalid: {0}")]
    Invalid(String),
    /// The ID token's claims do not allow a sign-in.
    #[error(transparent)]
    Claims(#[from] ClaimError),
}

impl SsoError {
    /// The short code the sign-in page is sent back with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "provider_unreachable",
            Self::Invalid(_) => "invalid_response",
            Self::Claims(ClaimError::EmailUnverified) => "email_unverified",
            Self::Claims(ClaimError::NoEmail) => "no_email",
            Self::Claims(ClaimError::Groups(_)) => "groups_claim",
            Self::Claims(_) => "invalid_token",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// What a sign-in must remember between leaving for the provider and coming back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `state`, checked against the callback's.
    pub state: String,
    /// `nonce`, checked against the ID token's.
    pub nonce: String,
    /// The PKCE verifier the code exchange proves possession of.
    pub verifier: String,
}

impl Flow {
    /// Fresh random values for one sign-in.
    pub fn generate() -> Self {
        Self { state: random(), nonce: random(), verifier: random() }
    }

    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

type Cached<T> = Mutex<Option<(Instant, T)>>;

/// The configured provider, with its discovery document and keys cached.
#[derive(Debug)]
pub struct Provider {
    config: SsoConfig,
    http: reqwest::Client,
    metadata: Cached<Metadata>,
    keys: Cached<Vec<Jwk>>,
}

impl Provider {
    /// A provider for `config`; nothing is fetched until the first sign-in.
    pub fn new(config: SsoConfig) -> Result<Self, String> {
        rules::check_issuer(&config.issuer)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client for the identity provider: {e}"))?;
        Ok(Self { config, http, metadata: Mutex::default(), keys: Mutex::default() })
    }

    /// The settings.
    pub fn config(&self) -> &SsoConfig {
        &self.config
    }

    /// Where to send the browser to sign in (authorization code, PKCE S256, state, nonce).
    pub async fn authorization_url(&self, flow: &Flow) -> Result<Url, SsoError> {
        let meta = self.metadata().await?;
        let mut url = meta.authorization_endpoint;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", &self.config.scopes)
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    /// Exchanges the callback's `code` and checks the ID token it brings: the person it
    /// vouches for.
    pub async fn sign_in(&self, code: &str, flow: &Flow, now_secs: i64) -> Result<Identity, SsoError> {
        let meta = self.metadata().await?;
        let id_token = self.exchange(&meta, code, flow).await?;
        self.verify(&meta, &id_token, &flow.nonce, now_secs).await
    }

    async fn exchange(&self, meta: &Metadata, code: &str, flow: &Flow) -> Result<String, SsoError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ];
        let mut request =
            self.http.post(meta.token_endpoint.clone()).header(reqwest::header::ACCEPT, "application/json");
        // client_secret_basic is the default (OpenID Connect Core §9); post only when the
        // provider offers nothing else.
        let post_only = !meta.token_endpoint_auth_methods_supported.is_empty()
            && !meta.token_endpoint_auth_methods_supported.iter().any(|m| m == "client_secret_basic")
            && meta.token_endpoint_auth_methods_supported.iter().any(|m| m == "client_secret_post");
        if post_only {
            let mut with_secret = form.to_vec();
            with_secret.push(("client_id", self.config.client_id.as_str()));
            with_secret.push(("client_secret", self.config.client_secret.as_str()));
            request = request.form(&with_secret);
        } else {
            // RFC 6749 §2.3.1: both halves form-urlencoded before the Basic encoding.
            let user = form_encode(&self.config.client_id);
            let pass = form_encode(&self.config.client_secret);
            request = request.basic_auth(user, Some(pass)).form(&form);
        }
        let (status, body) = self.read(request).await?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.as_u16().to_string());
            return Err(SsoError::Invalid(format!("the token endpoint refused the code ({error})")));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| SsoError::Invalid("the token endpoint's answer is not JSON".to_owned()))?;
        token.id_token.ok_or_else(|| SsoError::Invalid("the token endpoint sent no ID token".to_owned()))
    }

    async fn verify(&self, meta: &Metadata, id_token: &str, nonce: &str, now_secs: i64) -> Result<Identity, SsoError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|_| SsoError::Invalid("the ID token is not a signed JWT".to_owned()))?;
        let offered: Vec<Algorithm> = if meta.id_token_signing_alg_values_supported.is_empty() {
            vec![Algorithm::RS256]
        } else {
            meta.id_token_signing_alg_values_supported.iter().filter_map(|a| Algorithm::from_str(a).ok()).collect()
        };
        if !ASYMMETRIC.contains(&header.alg) || !offered.contains(&header.alg) {
            return Err(SsoError::Invalid(format!(
                "the ID token is signed with {:?}, which is not accepted",
                header.alg
            )));
        }
        let key = match self.key_for(meta, header.kid.as_deref(), header.alg, false).await? {
            Some(key) => key,
            // A key not seen yet: the provider may have rotated; fetch its keys again.
            None => self.key_for(meta, header.kid.as_deref(), header.alg, true).await?.ok_or_else(|| {
                SsoError::Invalid("the ID token is signed with a key the provider does not publish".to_owned())
            })?,
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[meta.issuer.as_str()]);
        validation.set_audience(&[self.config.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = rules::SKEW_SECS.unsigned_abs();
        let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SsoError::Claims(ClaimError::Expired),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => SsoError::Claims(ClaimError::Audience),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    SsoError::Invalid("the ID token's signature does not verify".to_owned())
                }
                other => SsoError::Invalid(format!("the ID token is not valid ({other:?})")),
            })?
            .claims;
        let expected = Expected { client_id: &self.config.client_id, nonce };
        Ok(rules::check_id_claims(&claims, expected, &self.config.groups_claim, now_secs)?)
    }

    /// The key that should have signed a token with `kid` and `alg`, from the cached JWKS
    /// (or a fresh one when `refresh`, at most once a second).
    async fn key_for(
        &self,
        meta: &Metadata,
        kid: Option<&str>,
        alg: Algorithm,
        refresh: bool,
    ) -> Result<Option<DecodingKey>, SsoError> {
        let cached = self.keys.lock().ok().and_then(|k| k.clone());
        let keys = match cached {
            Some((at, keys)) if !refresh && at.elapsed() < JWKS_TTL => keys,
            Some((at, keys)) if refresh && at.elapsed() < JWKS_MIN_REFRESH => keys,
            _ => {
                let (status, body) = self.read(self.http.get(meta.jwks_uri.clone())).await?;
                if !status.is_success() {
                    return Err(SsoError::Unreachable(format!("its JWKS answered {}", status.as_u16())));
                }
                let raw: RawJwks = serde_json::from_slice(&body)
                    .map_err(|_| SsoError::Invalid("its JWKS is not a JSON key set".to_owned()))?;
                // Keys Tessera cannot use (encryption keys, unknown types) are skipped, not fatal.
                let keys: Vec<Jwk> = raw.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect();
                if let Ok(mut slot) = self.keys.lock() {
                    *slot = Some((Instant::now(), keys.clone()));
                }
                keys
            }
        };
        let usable = |k: &&Jwk| {
            !matches!(k.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
                && k.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{alg:?}"))
        };
        let candidates: Vec<&Jwk> = match kid {
            Some(kid) => keys.iter().filter(|k| k.common.key_id.as_deref() == Some(kid)).filter(usable).collect(),
            None => keys.iter().filter(usable).collect(),
        };
        // Without a kid, only an unambiguous key set is used.
        match candidates.as_slice() {
            [only] => DecodingKey::from_jwk(only)
                .map(Some)
                .map_err(|_| SsoError::Invalid("the provider publishes a key Tessera cannot read".to_owned())),
            _ => Ok(None),
        }
    }

    async fn metadata(&self) -> Result<Metadata, SsoError> {
        if let Some((at, meta)) = self.metadata.lock().ok().and_then(|m| m.clone())
            && at.elapsed() < METADATA_TTL
        {
            return Ok(meta);
        }
        let issuer = self.config.issuer.as_str().trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let (status, body) = self.read(self.http.get(&url)).await?;
        if !status.is_success() {
            return Err(SsoError::Unreachable(format!("its discovery document answered {}", status.as_u16())));
        }
        let meta: Metadata = serde_json::from_slice(&body).map_err(|_| {
            SsoError::Invalid("its discovery document is not valid OpenID provider metadata".to_owned())
        })?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        if meta.issuer.trim_end_matches('/') != issuer {
            return Err(SsoError::Invalid(format!("its discovery document names another issuer ({})", meta.issuer)));
        }
        if let Ok(mut slot) = self.metadata.lock() {
            *slot = Some((Instant::now(), meta.clone()));
        }
        Ok(meta)
    }

    /// Sends `request` and reads at most [`MAX_DOCUMENT_BYTES`] of the answer.
    async fn read(&self, request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), SsoError> {
        let mut res = request.send().await.map_err(|e| SsoError::Unreachable(describe(&e)))?;
        let status = res.status();
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| SsoError::Unreachable(describe(&e)))? {
            if body.len().saturating_add(chunk.len()) > MAX_DOCUMENT_BYTES {
                return Err(SsoError::Invalid("an answer is larger than 256 KiB".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// A reqwest error without its URL (which may carry a code).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "it did not answer in time".to_owned()
    } else if e.is_connect() {
        "it refused the connection".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flow_is_fresh_and_its_challenge_is_s256_of_the_verifier() {
        let (a, b) = (Flow::generate(), Flow::generate());
        assert_ne!(a, b);
        assert!(a.verifier.len() >= 43);
        // RFC 7636 appendix B.
        let f = Flow {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        };
        assert_eq!(f.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        let config = SsoConfig {
            issuer: "https://id.example.com".parse().unwrap(),
            client_id: "tessera".into(),
            client_secret: "very-secret-value".into(),
            scopes: "openid".into(),
            groups_claim: vec!["groups".into()],
            admin_groups: vec![],
            redirect_uri: "https://t.example.com/api/v2/auth/oidc/callback".into(),
        };
        assert!(!format!("{config:?}").contains("very-secret-value"));
    }
}
