//! Short-lived cookies sealed with the server's secret key, carrying a browser flow's state
//! across a cross-site round trip (single sign-on, connecting an upstream account): any
//! replica can finish a flow another began, and an anonymous visitor costs no row.

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::sealed::{SealKey, Sealed};

/// Sealed cookies longer than this are not read.
const MAX_COOKIE: usize = 4096;

/// `value` sealed for `context`, as a cookie value.
pub(crate) fn seal<T: Serialize>(key: &SealKey, context: &[u8], value: &T) -> Option<String> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(value).ok()?);
    let sealed = key.seal(&plain, context);
    Some(URL_SAFE_NO_PAD.encode([sealed.nonce, sealed.ciphertext].concat()))
}

/// Cookie `name`'s value opened for `context`, if this server sealed it.
pub(crate) fn open<T: DeserializeOwned>(req: &HttpRequest, name: &str, key: &SealKey, context: &[u8]) -> Option<T> {
    let value = crate::auth::cookie(req, name)?;
    if value.len() > MAX_COOKIE {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    if bytes.len() <= 24 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    let sealed = Sealed { nonce: nonce.to_vec(), ciphertext: ciphertext.to_vec() };
    let plain = zeroize::Zeroizing::new(key.open(&sealed, context).ok()?);
    serde_json::from_slice(&plain).ok()
}

/// The `Set-Cookie` of a `SameSite=Lax` flow cookie scoped to `path` (empty `value` and 0
/// clear it). Lax: the other site sends the browser back with a cross-site navigation,
/// which a `Strict` cookie would not follow.
pub(crate) fn header(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={max_age}{secure}")
}
