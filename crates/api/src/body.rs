//! Request bodies: JSON objects only. serde reads a JSON array into a struct field by field
//! (`[null, null]` would be an empty `PATCH`), so every body is checked to be an object first.
//! Numbers follow JSON Schema, where `30.0` is the integer 30: our fields are integers, and a
//! client (or a generator) that writes them with a zero fraction means the same number.

use std::future::Future;
use std::pin::Pin;
use tessera_core::ErrorCode;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, invalid_json};

/// Largest optional body accepted (revoke's reason, rotate's grace period).
const SMALL_BODY_LIMIT: usize = 16 * 1024;

/// A JSON object body parsed into `T` (size limit and content type as for `web::Json`).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = json.await?;
            Ok(Self(object(value)?))
        })
    }
}

/// `value` as `T`, refusing anything but a JSON object.
pub fn object<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(ErrorCode::InvalidBody, "the request body must be a JSON object"));
    }
    integral_floats_to_integers(&mut value);
    serde_json::from_value(value).map_err(|e| invalid_json(&e))
}

/// Rewrites every float with no fractional part that fits an `i64` (`30.0`) as that integer.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && (-9.2e18..9.2e18).contains(&f)
            {
                // In range and integral, so the cast is exact.
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// A JSON body that may be absent (revoke, rotate): empty means the defaults.
pub async fn optional_body<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    let bytes = match payload.to_bytes_limited(SMALL_BODY_LIMIT).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read")),
        Err(_) => return Err(ApiError::PayloadTooLarge(format!("the body must be at most {SMALL_BODY_LIMIT} bytes"))),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| invalid_json(&e))?;
    optional_object(value)
}

/// An optional body's value: absent (`null`) means the defaults, otherwise an object.
pub fn optional_object<T: DeserializeOwned + Default>(value: Value) -> Result<T, ApiError> {
    if value.is_null() { Ok(T::default()) } else { object(value) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Days {
        days: Option<i64>,
    }

    #[test]
    fn an_integral_float_is_the_integer() {
        assert_eq!(object::<Days>(json!({"days": 30.0})).unwrap(), Days { days: Some(30) });
    }

    #[test]
    fn a_fractional_number_is_still_refused() {
        assert!(object::<Days>(json!({"days": 30.5})).is_err());
    }

    #[test]
    fn a_huge_float_is_refused_not_wrapped() {
        assert!(object::<Days>(json!({"days": 1e300})).is_err());
    }

    #[test]
    fn an_array_is_not_an_object() {
        assert!(object::<Days>(json!([null])).is_err());
    }

    #[test]
    fn null_is_an_absent_optional_body() {
        assert_eq!(optional_object::<Option<Days>>(Value::Null).unwrap(), None);
    }
}
