//! `POST /oauth/introspect` (RFC 7662) for direct servers (issue #15): a server that checks
//! Tessera tokens itself asks, with its own client credential, whether a token is good for
//! it. The answer comes from the same Validator as every other use, and an inactive answer
//! never says why (§2.2).

use std::time::Instant;

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tessera_auth::{Audience, Denial, Outcome, Verdict};
use tessera_core::scope::ACCESS;
use tessera_tokens::ServerError;

use crate::ApiState;
use crate::auth::client_ip;

/// The form of `POST /oauth/introspect`.
#[derive(Deserialize)]
pub(crate) struct IntrospectForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// How a caller failed to identify itself.
enum ClientAuthError {
    /// No credential, two methods at once, or a malformed header.
    Invalid,
    /// The registry could not be asked.
    Unavailable,
}

/// `POST /oauth/introspect`.
pub(crate) async fn introspect(
    req: HttpRequest,
    state: web::Data<ApiState>,
    form: web::Form<IntrospectForm>,
) -> HttpResponse {
    let now = Utc::now();
    let ip = client_ip(&req);
    let ip_key = ip.clone().unwrap_or_default();
    if let Err(throttled) = state.client_auth.check(&ip_key, Instant::now()) {
        if throttled.first {
            tracing::warn!(client_ip = %ip_key, "introspection client authentication throttled after repeated failures");
        }
        return answer(
            HttpResponse::TooManyRequests().insert_header((header::RETRY_AFTER, throttled.retry_after.to_string())),
            json!({"error": "slow_down", "error_description": "too many failed client authentications; wait before trying again"}),
        );
    }
    let server = match authenticate(&req, &state, &form, now).await {
        Ok(server) => server,
        Err(ClientAuthError::Invalid) => {
            state.client_auth.failed(&ip_key, Instant::now());
            return unauthorized();
        }
        Err(ClientAuthError::Unavailable) => {
            return answer(
                HttpResponse::ServiceUnavailable().insert_header((header::RETRY_AFTER, "5")),
                json!({"error": "temporarily_unavailable", "error_description": "try again shortly"}),
            );
        }
    };
    let Some(token) = form.token.as_deref().filter(|t| !t.is_empty()) else {
        return answer(
            &mut HttpResponse::BadRequest(),
            json!({"error": "invalid_request", "error_description": "token is required"}),
        );
    };
    // The one guard, as on every bearer face: the token must name this server (its URL is
    // the audience), and an identified but refused token is counted against itself.
    let guard = state.guard();
    let identified = match guard.identify_token(token, Audience::Resource(&server.url), ip, now).await {
        Ok(identified) => identified,
        Err(Denial::Unavailable) => {
            // Saying "inactive" here would make a valid token look revoked; a 503 makes the
            // server retry instead.
            return answer(
                HttpResponse::ServiceUnavailable().insert_header((header::RETRY_AFTER, "5")),
                json!({"error": "temporarily_unavailable", "error_description": "try again shortly"}),
            );
        }
        // An inactive answer never says why (RFC 7662 §2.2).
        Err(_) => return inactive(),
    };
    // The policy: the audience names the server, but narrowing may have taken every scope
    // for it away.
    let mut scopes = identified.principal.effective.for_server(&server.name);
    let verdict = if scopes.is_empty() { Verdict::Need(format!("read:{}", server.name)) } else { Verdict::Allow };
    let label = format!("introspect {}", server.name);
    if guard.admit(&identified, &label, verdict).await.is_err() {
        return inactive();
    }
    identified.count(&label, Outcome::Ok);
    let (claims, principal) = (&identified.claims, &identified.principal);
    scopes.push(ACCESS.to_owned());
    answer(
        &mut HttpResponse::Ok(),
        json!({
            "active": true,
            "scope": scopes.join(" "),
            "client_id": &claims.client_id,
            "sub": claims.sub,
            "exp": principal.expires_at.timestamp().min(claims.exp),
            "iat": claims.iat,
            "nbf": claims.nbf,
            // Only the caller's own resource: the rest of the token's audience is none of its
            // business (and would tell it where else the token might be replayed).
            "aud": server.url,
            "iss": claims.iss,
            "token_type": "Bearer",
            "jti": claims.jti,
        }),
    )
}

/// The server whose credential came with the request, by `client_secret_basic` or
/// `client_secret_post` (one of them, RFC 6749 §2.3).
async fn authenticate(
    req: &HttpRequest,
    state: &ApiState,
    form: &IntrospectForm,
    now: chrono::DateTime<Utc>,
) -> Result<tessera_store::ServerRecord, ClientAuthError> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value.to_str().map_err(|_| ClientAuthError::Invalid)?)?),
        None => None,
    };
    let (client_id, secret) = match (basic, form.client_id.as_deref(), form.client_secret.as_deref()) {
        (Some(pair), None, None) => pair,
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        _ => return Err(ClientAuthError::Invalid),
    };
    match state.servers.authenticate(&client_id, &secret, now).await {
        Ok(server) => Ok(server),
        Err(ServerError::BadCredentials) => Err(ClientAuthError::Invalid),
        Err(e) => {
            tracing::warn!(error = %e, "introspection client lookup failed");
            Err(ClientAuthError::Unavailable)
        }
    }
}

/// `Basic base64(id:secret)`, each part form-urlencoded (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Result<(String, String), ClientAuthError> {
    let (scheme, encoded) = value.split_once(' ').ok_or(ClientAuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ClientAuthError::Invalid);
    }
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| ClientAuthError::Invalid)?;
    let decoded = String::from_utf8(decoded).map_err(|_| ClientAuthError::Invalid)?;
    let (id, secret) = decoded.split_once(':').ok_or(ClientAuthError::Invalid)?;
    Ok((form_decode(id)?, form_decode(secret)?))
}

fn form_decode(s: &str) -> Result<String, ClientAuthError> {
    let query = format!("v={s}");
    let mut pairs = web::Query::<std::collections::HashMap<String, String>>::from_query(&query)
        .map_err(|_| ClientAuthError::Invalid)?
        .into_inner();
    pairs.remove("v").ok_or(ClientAuthError::Invalid)
}

fn unauthorized() -> HttpResponse {
    answer(
        HttpResponse::Unauthorized().insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#)),
        json!({"error": "invalid_client", "error_description": "client authentication failed"}),
    )
}

fn inactive() -> HttpResponse {
    answer(&mut HttpResponse::Ok(), json!({"active": false}))
}

fn answer(res: &mut actix_web::HttpResponseBuilder, body: serde_json::Value) -> HttpResponse {
    res.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache")).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("a%3Ab:s+t"));
        let (id, secret) = parse_basic(&header).ok().unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("a:b", "s t"));
        assert!(parse_basic("Bearer x").is_err());
    }
}
