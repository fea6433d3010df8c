//! `/api/v2/teams`: teams and their allowances (administrators: session or `mcp:admin`
//! bearer). Shrinking an allowance narrows the people's tokens before the answer is sent.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_store::TeamRecord;
use tessera_tokens::TeamService;
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::{Access, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};

/// A team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    /// Its name.
    pub name: String,
    /// The scopes its members may hold; `null`: every scope (`everyone` until narrowed).
    pub allowance: Option<Vec<String>>,
    /// Identity-provider groups mapped to it.
    pub groups: Vec<String>,
    /// Members' emails (`everyone` lists none: it holds whoever is in no team).
    pub members: Vec<String>,
    /// Only in the answer to a change: how many tokens were narrowed to the new allowance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_narrowed: Option<usize>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<TeamRecord> for TeamView {
    fn from(t: TeamRecord) -> Self {
        Self {
            name: t.name,
            allowance: t.allowance,
            groups: t.groups,
            members: t.members,
            tokens_narrowed: None,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `POST /teams`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// 1-100 characters.
    pub name: String,
    /// Scopes its members may hold (`[]` allows nothing); never `mcp:admin`.
    pub allowance: Vec<String>,
    /// Identity-provider groups mapped to it.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `PATCH /teams/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTeamRequest {
    /// The new allowance.
    pub allowance: Vec<String>,
}

/// Most scopes an allowance request may name, and groups a team may map.
const MAX_ITEMS: usize = 500;

fn service(state: &ApiState) -> TeamService {
    TeamService::new(state.store.clone(), state.tokens.clone())
}

fn bounded(items: &[String], what: &str) -> Result<(), ApiError> {
    if items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            tessera_core::ErrorCode::InvalidBody,
            format!("at most {MAX_ITEMS} {what} per request"),
        ));
    }
    Ok(())
}

/// List the teams, `everyone` included.
#[utoipa::path(
    get, path = "/api/v2/teams", tag = "teams",
    responses(
        (status = 200, description = "Every team, by name", body = [TeamView]),
        (status = 403, description = "Not an administrator, or the token lacks `mcp:admin`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<Vec<TeamView>>, ApiError> {
    authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    Ok(web::Json(service(&state).list().await?.into_iter().map(TeamView::from).collect()))
}

/// Make a team.
#[utoipa::path(
    post, path = "/api/v2/teams", tag = "teams",
    request_body = CreateTeamRequest,
    responses(
        (status = 201, description = "Made; `Location` names it", body = TeamView),
        (status = 400, description = "A bad name, an unknown scope, or `mcp:admin` in the allowance", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 409, description = "The name is taken (`team_exists`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<CreateTeamRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    bounded(&body.allowance, "scopes")?;
    bounded(&body.groups, "groups")?;
    let teams = service(&state);
    teams.add(&caller.actor(), &body.name, &body.allowance.join(" "), &body.groups, now).await?;
    let view = TeamView::from(teams.get(&body.name).await?);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/teams/{}", urlencode(&view.name))))
        .json(view))
}

/// One team.
#[utoipa::path(
    get, path = "/api/v2/teams/{name}", tag = "teams",
    params(("name" = String, Path, description = "Team name")),
    responses(
        (status = 200, description = "The team", body = TeamView),
        (status = 403, description = "Not an administrator, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<web::Json<TeamView>, ApiError> {
    authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    Ok(web::Json(service(&state).get(&name).await?.into()))
}

/// Replace a team's allowance; its people's tokens lose what falls outside it at once.
#[utoipa::path(
    patch, path = "/api/v2/teams/{name}", tag = "teams",
    params(("name" = String, Path, description = "Team name")),
    request_body = PatchTeamRequest,
    responses(
        (status = 200, description = "The team, with `tokens_narrowed`", body = TeamView),
        (status = 400, description = "An unknown scope, or `mcp:admin`", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: JsonObject<PatchTeamRequest>,
) -> Result<web::Json<TeamView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    bounded(&body.allowance, "scopes")?;
    let teams = service(&state);
    let narrowed = teams.allow(&caller.actor(), &name, &body.allowance.join(" "), now).await?;
    let mut view = TeamView::from(teams.get(&name).await?);
    view.tokens_narrowed = Some(narrowed);
    Ok(web::Json(view))
}

/// Remove a team; its members fall back to their other teams, or to `everyone`.
#[utoipa::path(
    delete, path = "/api/v2/teams/{name}", tag = "teams",
    params(("name" = String, Path, description = "Team name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 409, description = "`everyone` cannot be removed (`builtin_team`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn remove(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    service(&state).remove(&caller.actor(), &name, now).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add an account (by email) to a team.
#[utoipa::path(
    put, path = "/api/v2/teams/{name}/members/{email}", tag = "teams",
    params(("name" = String, Path, description = "Team name"), ("email" = String, Path, description = "The account's email")),
    responses(
        (status = 200, description = "The team, with `tokens_narrowed`", body = TeamView),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such team or account", body = ErrorBody),
        (status = 409, description = "`everyone` has no members of its own (`builtin_team`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn add_member(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<TeamView>, ApiError> {
    set_member(req, state, path, true).await
}

/// Remove an account (by email) from a team.
#[utoipa::path(
    delete, path = "/api/v2/teams/{name}/members/{email}", tag = "teams",
    params(("name" = String, Path, description = "Team name"), ("email" = String, Path, description = "The account's email")),
    responses(
        (status = 200, description = "The team, with `tokens_narrowed`", body = TeamView),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such team or account", body = ErrorBody),
        (status = 409, description = "`everyone` has no members of its own (`builtin_team`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<TeamView>, ApiError> {
    set_member(req, state, path, false).await
}

async fn set_member(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
    member: bool,
) -> Result<web::Json<TeamView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    let (name, email) = path.into_inner();
    let teams = service(&state);
    let narrowed = teams.set_member(&caller.actor(), &name, &email, member, now).await?;
    let mut view = TeamView::from(teams.get(&name).await?);
    view.tokens_narrowed = Some(narrowed);
    Ok(web::Json(view))
}

/// `s` as one URL path segment: unreserved characters as they are, every other byte escaped.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
