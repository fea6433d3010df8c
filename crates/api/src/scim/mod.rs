//! `/scim/v2`: SCIM 2.0 provisioning (RFC 7643, RFC 7644; docs/scim.md). Users are accounts,
//! Groups are teams. A caller is a bearer Tessera token carrying `scim` whose owner is an
//! administrator, admitted and rate limited by the same guard as `/api/v2`. Every error has
//! SCIM's error shape; `openapi.json` does not describe this protocol (RFC 7643 does).

mod discovery;
mod error;
mod groups;
mod patch;
mod users;

use actix_web::http::{StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tessera_auth::Verdict;
use tessera_core::scope::SCIM;

pub use error::ScimError;

use crate::ApiState;
use crate::auth::{Caller, Via, client_ip, guarded};
use crate::error::ApiError;

/// The media type of every SCIM body (`application/json` is accepted too).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";
/// Largest request body accepted (larger: 413).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Most resources one list answers (`count` above it is lowered to it).
pub const MAX_RESULTS: i64 = 200;

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Mounts `/scim/v2` on `cfg`.
pub fn configure(cfg: &mut ServiceConfig, state: &ApiState) {
    cfg.service(
        web::scope("/scim/v2")
            .app_data(web::Data::new(state.clone()))
            // Counts each admitted call in the token's usage and sends its RateLimit headers,
            // as on `/api/v2`.
            .wrap(from_fn(crate::auth::count_bearer_use))
            .service(web::resource("/Users").route(web::get().to(users::list)).route(web::post().to(users::create)))
            .service(
                web::resource("/Users/{id}")
                    .route(web::get().to(users::get))
                    .route(web::put().to(users::replace))
                    .route(web::patch().to(users::patch))
                    .route(web::delete().to(users::delete)),
            )
            .service(web::resource("/Groups").route(web::get().to(groups::list)).route(web::post().to(groups::create)))
            .service(
                web::resource("/Groups/{id}")
                    .route(web::get().to(groups::get))
                    .route(web::put().to(groups::replace))
                    .route(web::patch().to(groups::patch))
                    .route(web::delete().to(groups::delete)),
            )
            .service(discovery::resource("/ServiceProviderConfig", discovery::service_provider_config))
            .service(discovery::resource("/ResourceTypes", discovery::resource_types))
            .service(discovery::resource("/ResourceTypes/{id}", discovery::resource_type))
            .service(discovery::resource("/Schemas", discovery::schemas))
            .service(discovery::resource("/Schemas/{id}", discovery::schema))
            .service(web::resource("/.search").to(|| async {
                Err::<HttpResponse, _>(ScimError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    None,
                    "searching every resource type at once is not supported",
                ))
            }))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ScimError::not_found("no such SCIM endpoint"))
            })),
    );
}

/// The caller of a SCIM request: a token carrying `scim` whose owner is still an
/// administrator (demotion takes `scim` out of their tokens too; this is the second lock).
pub(crate) async fn authenticate(req: &HttpRequest, state: &ApiState) -> Result<Caller, ScimError> {
    let now = Utc::now();
    let ip = client_ip(req);
    let principal = guarded(req, state, now, ip.clone(), |p| Verdict::require(p, [SCIM]), ApiError::Denied).await?;
    let user = state.store.user_by_id(principal.user_id).await?;
    match user {
        Some(user) if user.is_admin => Ok(Caller { user, via: Via::Token(principal), ip }),
        _ => Err(ScimError::new(StatusCode::FORBIDDEN, None, "only an administrator's token may provision")),
    }
}

/// The JSON object a request carries: `application/scim+json` or `application/json` (or no
/// content type), at most [`BODY_LIMIT`] bytes.
pub(crate) async fn read_object(req: &HttpRequest, mut payload: web::Payload) -> Result<Map<String, Value>, ScimError> {
    if let Some(kind) = req.headers().get(header::CONTENT_TYPE) {
        let essence =
            kind.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence != SCIM_MEDIA_TYPE && essence != "application/json" {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send application/scim+json (or application/json)",
            ));
        }
    }
    let too_large = || ScimError::new(StatusCode::PAYLOAD_TOO_LARGE, None, "the body is larger than 1 MiB");
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ScimError::bad("invalidSyntax", format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ScimError::bad("invalidSyntax", "the body must be a JSON object")),
        Err(e) => Err(ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}"))),
    }
}

/// A SCIM answer.
pub(crate) fn respond(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, SCIM_MEDIA_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

/// `{public}/scim/v2`.
pub(crate) fn base_url(state: &ApiState) -> String {
    format!("{}/scim/v2", state.config.public_url)
}

/// A resource's `meta`.
pub(crate) fn meta(kind: &str, location: String, created: DateTime<Utc>, modified: DateTime<Utc>) -> Value {
    json!({
        "resourceType": kind,
        "created": created.to_rfc3339_opts(SecondsFormat::Millis, true),
        "lastModified": modified.to_rfc3339_opts(SecondsFormat::Millis, true),
        "location": location,
    })
}

/// The list query of `GET /Users` and `GET /Groups`.
pub(crate) struct ListQuery {
    /// `filter`, as sent.
    pub filter: Option<String>,
    /// Zero-based offset (`startIndex` - 1).
    pub offset: i64,
    /// Page size.
    pub count: i64,
    /// Which attributes to return.
    pub projection: Projection,
}

impl ListQuery {
    /// Reads `filter`, `startIndex`, `count`, `attributes` and `excludedAttributes`.
    pub fn parse(req: &HttpRequest) -> Result<Self, ScimError> {
        let params = query_params(req)?;
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            params.iter().find(|(k, _)| k == name).map_or(Ok(default), |(_, v)| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::bad("invalidValue", format!("{name} must be an integer")))
            })
        };
        let start = number("startIndex", 1)?.max(1);
        Ok(Self {
            filter: params.iter().find(|(k, _)| k == "filter").map(|(_, v)| v.clone()),
            offset: start - 1,
            count: number("count", MAX_RESULTS)?.clamp(0, MAX_RESULTS),
            projection: Projection::from_params(&params),
        })
    }

    /// The `ListResponse` of one page.
    pub fn answer(&self, total: i64, resources: Vec<Value>) -> HttpResponse {
        let page: Vec<Value> = resources.into_iter().map(|r| self.projection.apply(r)).collect();
        respond(
            StatusCode::OK,
            &json!({
                "schemas": [LIST_SCHEMA],
                "totalResults": total,
                "startIndex": self.offset + 1,
                "itemsPerPage": page.len(),
                "Resources": page,
            }),
        )
    }
}

/// The query string's pairs, decoded.
fn query_params(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the query string is malformed: {e}")))
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), on top-level attributes.
#[derive(Debug, Default)]
pub(crate) struct Projection {
    only: Option<Vec<String>>,
    except: Vec<String>,
}

impl Projection {
    fn from_params(params: &[(String, String)]) -> Self {
        let names = |key: &str| -> Option<Vec<String>> {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.split(',').map(|a| top_level(a.trim())).filter(|a| !a.is_empty()).collect::<Vec<_>>())
        };
        Self { only: names("attributes"), except: names("excludedAttributes").unwrap_or_default() }
    }

    /// The query's projection of a single-resource request.
    pub fn of(req: &HttpRequest) -> Result<Self, ScimError> {
        Ok(Self::from_params(&query_params(req)?))
    }

    /// `resource` with only the asked attributes (`id` and `schemas` always stay).
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(map) = resource else { return resource };
        let kept = map
            .into_iter()
            .filter(|(k, _)| {
                let key = k.to_ascii_lowercase();
                if key == "id" || key == "schemas" {
                    return true;
                }
                let listed = self.only.as_ref().is_none_or(|only| only.contains(&key));
                listed && !self.except.contains(&key)
            })
            .collect();
        Value::Object(kept)
    }
}

/// The lowercased top-level attribute of `name.sub` or `urn:...:User:name.sub`.
fn top_level(path: &str) -> String {
    let path = strip_schema(path);
    path.split(['.', '[']).next().unwrap_or_default().to_ascii_lowercase()
}

/// `path` without the core schema URN some clients prefix (`urn:...:User:userName`).
pub(crate) fn strip_schema(path: &str) -> &str {
    for urn in [USER_SCHEMA, GROUP_SCHEMA] {
        if path.len() > urn.len()
            && path.is_char_boundary(urn.len())
            && path[..urn.len()].eq_ignore_ascii_case(urn)
            && path[urn.len()..].starts_with(':')
        {
            return &path[urn.len() + 1..];
        }
    }
    path
}

/// A resource id from the path: not a UUID is no such resource.
pub(crate) fn resource_id(raw: &str, what: &str) -> Result<uuid::Uuid, ScimError> {
    raw.parse().map_err(|_| ScimError::new(StatusCode::NOT_FOUND, None, format!("no {what} {raw}")))
}
