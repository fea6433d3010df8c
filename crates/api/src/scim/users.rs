//! `/scim/v2/Users`: accounts. `userName` is any unique string (an account made on the CLI or
//! by SSO answers with its email); a primary email that is an email address becomes the login
//! email. `active: false` and `DELETE` go through the lifecycle service: every token, grant
//! and session of the account ends at once on every instance, and sign-in is refused.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tessera_store::{ScimUserRecord, ScimUserWrite, UserFilter, placeholder_email};
use uuid::Uuid;

use super::patch::{self, Eq};
use super::{
    ListQuery, Projection, ScimError, USER_SCHEMA, authenticate, base_url, meta, read_object, resource_id, respond,
};
use crate::ApiState;
use crate::auth::Caller;

/// Longest `userName`, `externalId`, `displayName` and email.
const MAX_TEXT: usize = 320;
/// Most `emails` one account keeps.
const MAX_EMAILS: usize = 50;

/// The SCIM representation of an account.
fn to_json(user: &ScimUserRecord, base: &str) -> Value {
    let location = format!("{base}/Users/{}", user.id);
    let mut out = json!({
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.user_name,
        "active": user.active,
        "meta": meta("User", location, user.created_at, user.updated_at),
    });
    let emails = match &user.scim_emails {
        Some(emails) => emails.clone(),
        // Never written by SCIM (a CLI or SSO account): its login email.
        None if user.email != placeholder_email(user.id) => json!([{"value": user.email, "primary": true}]),
        None => json!([]),
    };
    if emails.as_array().is_some_and(|e| !e.is_empty()) {
        out["emails"] = emails;
    }
    for (key, value) in [
        ("externalId", user.external_id.clone().map(Value::from)),
        ("displayName", user.display_name.clone().map(Value::from)),
        ("name", user.scim_name.clone()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            out[key] = value;
        }
    }
    out
}

/// What a create or replace asks for.
struct UserInput {
    write: ScimUserWrite,
    active: Option<bool>,
}

fn text(map: &Map<String, Value>, key: &str, required: bool) -> Result<Option<String>, ScimError> {
    match map.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s))
            if !s.trim().is_empty() && s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.trim().to_owned()))
        }
        _ => Err(ScimError::bad(
            "invalidValue",
            format!("{key} is {}a string of 1 to {MAX_TEXT} characters", if required { "required: " } else { "" }),
        )),
    }
}

fn is_email(s: &str) -> bool {
    (3..=MAX_TEXT).contains(&s.len())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
}

/// Reads a User body (attribute names in any case).
fn parse(body: Map<String, Value>, creating: bool) -> Result<UserInput, ScimError> {
    let Value::Object(map) = patch::normalized(Value::Object(body)) else {
        return Err(ScimError::bad("invalidSyntax", "a User is a JSON object"));
    };
    let user_name = text(&map, "userName", true)?.unwrap_or_default();
    let scim_name = match map.get("name") {
        None | Some(Value::Null) => None,
        Some(name @ Value::Object(_)) => Some(name.clone()),
        Some(_) => return Err(ScimError::bad("invalidValue", "name is an object")),
    };
    let emails = match map.get("emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items))
            if items.len() <= MAX_EMAILS && items.iter().all(|e| e.get("value").is_some_and(Value::is_string)) =>
        {
            items.clone()
        }
        Some(_) => {
            return Err(ScimError::bad("invalidValue", format!("emails is a list of at most {MAX_EMAILS} {{value}}")));
        }
    };
    let primary = emails.iter().find(|e| e["primary"] == json!(true)).or_else(|| emails.first());
    let email = match primary.and_then(|e| e["value"].as_str()).map(str::trim) {
        Some(address) if is_email(address) => Some(address.to_owned()),
        // A userName that is an address is the login email of an account made without one.
        None if creating && is_email(&user_name) => Some(user_name.clone()),
        _ => None,
    };
    let active = match map.get("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        // Entra has sent booleans as strings.
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => return Err(ScimError::bad("invalidValue", "active is a boolean")),
    };
    Ok(UserInput {
        write: ScimUserWrite {
            user_name,
            external_id: text(&map, "externalId", false)?,
            display_name: text(&map, "displayName", false)?,
            scim_name,
            scim_emails: Some(Value::Array(emails)),
            email,
        },
        active,
    })
}

fn filter_of(query: &ListQuery) -> Result<UserFilter, ScimError> {
    let Some(raw) = &query.filter else { return Ok(UserFilter::All) };
    let eq = Eq::parse(raw)?;
    let Some(value) = eq.value.as_str().map(str::to_owned) else {
        return Err(ScimError::bad(
            "invalidFilter",
            "compare userName, displayName, externalId or emails with a string",
        ));
    };
    match eq.attr.as_str() {
        "userName" => Ok(UserFilter::UserName(value)),
        "displayName" => Ok(UserFilter::DisplayName(value)),
        "externalId" => Ok(UserFilter::ExternalId(value)),
        "emails" | "emails.value" => Ok(UserFilter::Email(value)),
        other => Err(ScimError::bad("invalidFilter", format!("filtering on {other} is not supported"))),
    }
}

/// `GET /Users`.
pub(super) async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ScimError> {
    authenticate(&req, &state).await?;
    let query = ListQuery::parse(&req)?;
    let (rows, total) = state.store.scim_users(&filter_of(&query)?, query.offset, query.count).await?;
    let base = base_url(&state);
    Ok(query.answer(total, rows.iter().map(|u| to_json(u, &base)).collect()))
}

async fn found(state: &ApiState, raw: &str) -> Result<ScimUserRecord, ScimError> {
    let id = resource_id(raw, "user")?;
    state.store.scim_user(id).await?.ok_or_else(|| ScimError::not_found(format!("no user {id}")))
}

/// `GET /Users/{id}`.
pub(super) async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    authenticate(&req, &state).await?;
    let user = found(&state, &id).await?;
    Ok(respond(StatusCode::OK, &Projection::of(&req)?.apply(to_json(&user, &base_url(&state)))))
}

/// `POST /Users`: a new account without a password.
pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let input = parse(read_object(&req, body).await?, true)?;
    let now = Utc::now();
    let mut user = state.store.create_scim_user(&caller.actor(), &input.write, now).await?;
    if input.active == Some(false) {
        state.tokens.set_owner_active(&caller.actor(), user.id, false, now).await?;
        user = state.store.scim_user(user.id).await?.ok_or_else(|| ScimError::not_found("the user vanished"))?;
    }
    let out = to_json(&user, &base_url(&state));
    let mut res = respond(StatusCode::CREATED, &out);
    if let Ok(location) = header::HeaderValue::from_str(out["meta"]["location"].as_str().unwrap_or_default()) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Stores `input` over `current` and applies its `active`.
async fn store(
    state: &ApiState,
    caller: &Caller,
    current: &ScimUserRecord,
    input: UserInput,
) -> Result<HttpResponse, ScimError> {
    let now = Utc::now();
    if input.active == Some(false) {
        not_self(caller, current.id)?;
    }
    state.store.update_scim_user(&caller.actor(), current.id, &input.write, now).await?;
    if let Some(active) = input.active.filter(|a| *a != current.active) {
        if !active {
            drop(state.servers.revoke_connections_of(current.id).await);
        }
        state.tokens.set_owner_active(&caller.actor(), current.id, active, now).await?;
    }
    let user = found(state, &current.id.to_string()).await?;
    Ok(respond(StatusCode::OK, &to_json(&user, &base_url(state))))
}

/// The provisioning token's own account is never deactivated or deleted through it (it
/// would revoke the token doing it).
fn not_self(caller: &Caller, id: Uuid) -> Result<(), ScimError> {
    if caller.user.id == id {
        return Err(ScimError::bad(
            "mutability",
            "the account whose token provisions cannot deactivate or delete itself",
        ));
    }
    Ok(())
}

/// `PUT /Users/{id}`.
pub(super) async fn replace(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let current = found(&state, &id).await?;
    let input = parse(read_object(&req, body).await?, false)?;
    store(&state, &caller, &current, input).await
}

/// `PATCH /Users/{id}`: the operations applied to the account's attributes, then stored
/// like a `PUT`.
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
        return Err(ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "the user could not be represented"));
    };
    resource.remove("meta");
    patch::apply(&mut resource, &body)?;
    let input = parse(resource, false)?;
    store(&state, &caller, &current, input).await
}

/// `DELETE /Users/{id}`: deactivated (every token, grant and session ends), then deleted:
/// the row stays for the audit trail but SCIM no longer sees it and it can never sign in.
pub(super) async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let caller = authenticate(&req, &state).await?;
    let current = found(&state, &id).await?;
    not_self(&caller, current.id)?;
    let now = Utc::now();
    drop(state.servers.revoke_connections_of(current.id).await);
    state.tokens.set_owner_active(&caller.actor(), current.id, false, now).await?;
    state.store.delete_scim_user(&caller.actor(), current.id, now).await?;
    // Leaving teams may narrow nothing (the account holds no token any more), so no rebound.
    Ok(HttpResponse::NoContent().finish())
}
