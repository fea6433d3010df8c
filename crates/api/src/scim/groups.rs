//! `/scim/v2/Groups`: teams, matched by `displayName`. Every team is listed, `everyone`
//! included (it shows no members: it holds whoever is in no team) but never changed or
//! deleted through SCIM. `POST` with an existing team's name joins that team. Membership
//! changes go through the team service, so a removed member's tokens are narrowed at once.

use std::collections::BTreeSet;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tessera_store::{EVERYONE, ScimGroupRecord};
use tessera_tokens::TeamService;
use uuid::Uuid;

use super::patch::{self, Eq};
use super::{
    GROUP_SCHEMA, ListQuery, Projection, ScimError, authenticate, base_url, meta, read_object, resource_id, respond,
};
use crate::ApiState;
use crate::auth::Caller;

/// Most members one request may name.
const MAX_MEMBERS: usize = 10_000;

fn service(state: &ApiState) -> TeamService {
    TeamService::new(state.store.clone(), state.tokens.clone())
}

/// The SCIM representation of a team.
fn to_json(team: &ScimGroupRecord, base: &str) -> Value {
    let mut out = json!({
        "schemas": [GROUP_SCHEMA],
        "id": team.id,
        "displayName": team.name,
        "meta": meta("Group", format!("{base}/Groups/{}", team.id), team.created_at, team.updated_at),
    });
    if let Some(external) = &team.external_id {
        out["externalId"] = json!(external);
    }
    if !team.members.is_empty() {
        let members: Vec<Value> =
            team.members.iter().map(|id| json!({"value": id, "$ref": format!("{base}/Users/{id}")})).collect();
        out["members"] = json!(members);
    }
    out
}

/// What a create or replace asks for.
struct GroupInput {
    name: String,
    external_id: Option<String>,
    members: BTreeSet<Uuid>,
}

fn parse(body: Map<String, Value>) -> Result<GroupInput, ScimError> {
    let Value::Object(map) = patch::normalized(Value::Object(body)) else {
        return Err(ScimError::bad("invalidSyntax", "a Group is a JSON object"));
    };
    let name = match map.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(ScimError::bad("invalidValue", "displayName is required")),
    };
    let external_id = match map.get("externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if (1..=320).contains(&s.chars().count()) => Some(s.clone()),
        Some(_) => return Err(ScimError::bad("invalidValue", "externalId is a string of 1 to 320 characters")),
    };
    let members = match map.get("members") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(Value::Array(items)) if items.len() <= MAX_MEMBERS => items
            .iter()
            .map(|m| {
                m.get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<Uuid>().ok())
                    .ok_or_else(|| ScimError::bad("invalidValue", "each member is {\"value\": the id of a User}"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::bad("invalidValue", format!("members is a list of at most {MAX_MEMBERS}"))),
    };
    Ok(GroupInput { name, external_id, members })
}

/// `GET /Groups`.
pub(super) async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ScimError> {
    authenticate(&req, &state).await?;
    let query = ListQuery::parse(&req)?;
    let condition = query.filter.as_deref().map(Eq::parse).transpose()?;
    let matches = |team: &ScimGroupRecord| match &condition {
        None => Ok(true),
        Some(eq) => match (eq.attr.as_str(), eq.value.as_str()) {
            ("displayName", Some(v)) => Ok(team.name.eq_ignore_ascii_case(v) || team.name == v),
            ("externalId", Some(v)) => Ok(team.external_id.as_deref() == Some(v)),
            _ => Err(ScimError::bad("invalidFilter", "filter Groups by displayName or externalId")),
        },
    };
    let mut teams = Vec::new();
    for team in state.store.scim_groups().await? {
        if matches(&team)? {
            teams.push(team);
        }
    }
    let base = base_url(&state);
    let total = i64::try_from(teams.len()).unwrap_or(i64::MAX);
    let page = teams
        .iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.count).unwrap_or(0))
        .map(|t| to_json(t, &base))
        .collect();
    Ok(query.answer(total, page))
}

async fn found(state: &ApiState, raw: &str) -> Result<ScimGroupRecord, ScimError> {
    let id = resource_id(raw, "group")?;
    state.store.scim_group(id).await?.ok_or_else(|| ScimError::not_found(format!("no group {id}")))
}

/// `GET /Groups/{id}`.
pub(super) async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    authenticate(&req, &state).await?;
    let team = found(&state, &id).await?;
    Ok(respond(StatusCode::OK, &Projection::of(&req)?.apply(to_json(&team, &base_url(&state)))))
}

/// Every member must be an account SCIM can see.
async fn check_members(state: &ApiState, members: &BTreeSet<Uuid>) -> Result<(), ScimError> {
    for id in members {
        if state.store.scim_user(*id).await?.is_none() {
            return Err(ScimError::bad("invalidValue", format!("no user {id}")));
        }
    }
    Ok(())
}

/// `POST /Groups`: makes the team, or joins the team of that name (200 instead of 201), and
/// adds the members named.
pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let input = parse(read_object(&req, body).await?)?;
    check_members(&state, &input.members).await?;
    let now = Utc::now();
    let teams = service(&state);
    if input.name == EVERYONE && !input.members.is_empty() {
        return Err(ScimError::bad("mutability", "`everyone` holds whoever is in no team: it has no members to add"));
    }
    let created = teams.ensure(&caller.actor(), &input.name, now).await?;
    let team = teams.get(&input.name).await?;
    for member in &input.members {
        teams.set_member_id(&caller.actor(), &team.name, *member, true, now).await?;
    }
    if input.external_id.is_some() {
        state.store.set_team_external_id(team.id, input.external_id.as_deref(), now).await?;
    }
    let out = to_json(&found(&state, &team.id.to_string()).await?, &base_url(&state));
    let mut res = respond(if created { StatusCode::CREATED } else { StatusCode::OK }, &out);
    if let Ok(location) = header::HeaderValue::from_str(out["meta"]["location"].as_str().unwrap_or_default()) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Makes `current` what `input` says: its name, external id and members.
async fn store(
    state: &ApiState,
    caller: &Caller,
    current: &ScimGroupRecord,
    input: GroupInput,
) -> Result<HttpResponse, ScimError> {
    let now = Utc::now();
    let before: BTreeSet<Uuid> = current.members.iter().copied().collect();
    let changes_name = input.name != current.name;
    if current.name == EVERYONE && (changes_name || input.members != before) {
        return Err(ScimError::bad("mutability", "`everyone` is built in: it cannot be renamed and has no members"));
    }
    check_members(state, &input.members).await?;
    let teams = service(state);
    let actor = caller.actor();
    if changes_name {
        teams.rename(&actor, &current.name, &input.name, now).await?;
    }
    for added in input.members.difference(&before) {
        teams.set_member_id(&actor, &input.name, *added, true, now).await?;
    }
    for removed in before.difference(&input.members) {
        teams.set_member_id(&actor, &input.name, *removed, false, now).await?;
    }
    state.store.set_team_external_id(current.id, input.external_id.as_deref(), now).await?;
    let team = found(state, &current.id.to_string()).await?;
    Ok(respond(StatusCode::OK, &to_json(&team, &base_url(state))))
}

/// `PUT /Groups/{id}`.
pub(super) async fn replace(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let current = found(&state, &id).await?;
    let input = parse(read_object(&req, body).await?)?;
    store(&state, &caller, &current, input).await
}

/// `PATCH /Groups/{id}`: the operations applied to the team's attributes, then stored like a
/// `PUT` (members added and removed one by one).
pub(super) async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let current = found(&state, &id).await?;
    let body = read_object(&req, body).await?;
    let Value::Object(mut resource) = to_json(&current, "") else {
        return Err(ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "the group could not be represented"));
    };
    resource.remove("meta");
    patch::apply(&mut resource, &body)?;
    let input = parse(resource)?;
    store(&state, &caller, &current, input).await
}

/// `DELETE /Groups/{id}`: the team goes; its members fall back to their other teams or
/// `everyone`, and their tokens are narrowed to that at once.
pub(super) async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let current = found(&state, &id).await?;
    service(&state).remove(&caller.actor(), &current.name, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
