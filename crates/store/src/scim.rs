//! What SCIM provisioning (`/scim/v2`, docs/scim.md) reads and writes beside the accounts and
//! teams: userName, externalId, names and emails as the client sent them, soft deletion.
//! Deactivation and team membership go through the lifecycle and team services, never here.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::conflict_on_unique;
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// An account as SCIM shows it (never a deleted one).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimUserRecord {
    /// Stable id.
    pub id: Uuid,
    /// Login email.
    pub email: String,
    /// `userName`: its own, or the email for accounts made by the CLI or SSO.
    pub user_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `name`, as the client sent it.
    pub scim_name: Option<Value>,
    /// `emails`, as the client sent them.
    pub scim_emails: Option<Value>,
    /// Not deactivated.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed by SCIM (the creation time until then).
    pub updated_at: DateTime<Utc>,
}

/// The attributes a SCIM create or replace writes.
#[derive(Debug, Clone)]
pub struct ScimUserWrite {
    /// `userName`.
    pub user_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `name`.
    pub scim_name: Option<Value>,
    /// `emails`.
    pub scim_emails: Option<Value>,
    /// The login email these attributes give, if any (else the account keeps its own, or a
    /// new one gets a placeholder no one can receive mail at).
    pub email: Option<String>,
}

/// The one condition a SCIM `filter` may put on accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    /// Every account.
    All,
    /// `userName eq` (case-insensitive).
    UserName(String),
    /// `displayName eq` (case-insensitive).
    DisplayName(String),
    /// `externalId eq` (case-sensitive).
    ExternalId(String),
    /// `emails.value eq` / `emails eq` (case-insensitive, the login email).
    Email(String),
}

/// A team as SCIM shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimGroupRecord {
    /// Stable id.
    pub id: Uuid,
    /// `displayName`: the team's name.
    pub name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// Its members' ids (deleted accounts are in no team).
    pub members: Vec<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const SCIM_GROUP_SELECT: &str = "SELECT t.id, t.name, t.external_id,
        COALESCE(ARRAY(SELECT m.user_id FROM team_members m WHERE m.team_id = t.id ORDER BY m.user_id), '{}') AS members,
        t.created_at, t.updated_at
     FROM teams t";

const SCIM_USER_SELECT: &str = "SELECT id, email, COALESCE(user_name, email) AS user_name, external_id, display_name,
        scim_name, scim_emails, disabled_at IS NULL AS active, created_at, COALESCE(updated_at, created_at) AS updated_at
     FROM users";

/// A placeholder login email for an account SCIM made without one: `.invalid` is reserved
/// (RFC 2606), so it can never receive mail nor match a sign-in.
pub fn placeholder_email(id: Uuid) -> String {
    format!("{id}@scim.invalid")
}

impl Store {
    /// A page of the accounts matching `filter` (deleted ones never), oldest first, and how
    /// many match in all.
    pub async fn scim_users(
        &self,
        filter: &UserFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ScimUserRecord>, i64), StoreError> {
        let (condition, value) = match filter {
            UserFilter::All => ("TRUE", None),
            UserFilter::UserName(v) => ("lower(COALESCE(user_name, email)) = lower($3)", Some(v)),
            UserFilter::DisplayName(v) => ("lower(display_name) = lower($3)", Some(v)),
            UserFilter::ExternalId(v) => ("external_id = $3", Some(v)),
            UserFilter::Email(v) => ("lower(email) = lower($3)", Some(v)),
        };
        let rows = sqlx::query_as::<_, ScimUserRecord>(&format!(
            "{SCIM_USER_SELECT} WHERE deleted_at IS NULL AND {condition} ORDER BY created_at, id OFFSET $1 LIMIT $2"
        ))
        .bind(offset)
        .bind(limit)
        .bind(value)
        .fetch_all(self.exec())
        .await?;
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM users WHERE deleted_at IS NULL AND {}",
            condition.replace("$3", "$1")
        ))
        .bind(value)
        .fetch_one(self.exec())
        .await?;
        Ok((rows, total))
    }

    /// One account that is not deleted.
    pub async fn scim_user(&self, id: Uuid) -> Result<Option<ScimUserRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ScimUserRecord>(&format!("{SCIM_USER_SELECT} WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(self.exec())
            .await?)
    }

    /// Makes an account without a password (it signs in through SSO, if at all); a taken
    /// userName or email is [`StoreError::Conflict`].
    pub async fn create_scim_user(
        &self,
        actor: &Actor,
        user: &ScimUserWrite,
        now: DateTime<Utc>,
    ) -> Result<ScimUserRecord, StoreError> {
        let id = Uuid::now_v7();
        let email = user.email.clone().unwrap_or_else(|| placeholder_email(id));
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, is_admin, created_at, user_name, external_id, display_name,
                                scim_name, scim_emails, updated_at)
             VALUES ($1, $2, NULL, false, $3, $4, $5, $6, $7, $8, $3)",
        )
        .bind(id)
        .bind(&email)
        .bind(now)
        .bind(&user.user_name)
        .bind(&user.external_id)
        .bind(&user.display_name)
        .bind(&user.scim_name)
        .bind(&user.scim_emails)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("a user with this userName or email"))?;
        let details = json!({"user_id": id, "is_admin": false, "user_name": user.user_name, "via": "scim"});
        audit::append(&mut tx, actor, AuditAction::UserCreate, None, details).await?;
        tx.commit().await?;
        self.scim_user(id).await?.ok_or(StoreError::NotFound("user"))
    }

    /// Replaces an account's SCIM attributes (and its login email when `user.email` is set).
    pub async fn update_scim_user(
        &self,
        actor: &Actor,
        id: Uuid,
        user: &ScimUserWrite,
        now: DateTime<Utc>,
    ) -> Result<ScimUserRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET user_name = $2, external_id = $3, display_name = $4, scim_name = $5, scim_emails = $6,
                    email = COALESCE($7, email), updated_at = $8
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(&user.user_name)
        .bind(&user.external_id)
        .bind(&user.display_name)
        .bind(&user.scim_name)
        .bind(&user.scim_emails)
        .bind(&user.email)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("a user with this userName or email"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        let details = json!({"user_id": id, "user_name": user.user_name, "email_changed": user.email.is_some()});
        audit::append(&mut tx, actor, AuditAction::UserUpdate, None, details).await?;
        tx.commit().await?;
        self.scim_user(id).await?.ok_or(StoreError::NotFound("user"))
    }

    /// Deletes an account as far as it can go: the row stays (tokens, grants and audit rows
    /// name it) but loses its password, teams, userName and externalId, and its email is
    /// released (replaced by a placeholder), so it can never sign in and the same person can
    /// be provisioned again. Deactivate it first (its tokens and sessions end there).
    pub async fn delete_scim_user(&self, actor: &Actor, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let email: Option<String> =
            sqlx::query_scalar("SELECT email FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(email) = email else { return Err(StoreError::NotFound("user")) };
        sqlx::query(
            "UPDATE users SET deleted_at = $2, disabled_at = COALESCE(disabled_at, $2), password_hash = NULL,
                    user_name = NULL, external_id = NULL, email = $3, updated_at = $2
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(format!("{id}@deleted.invalid"))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM team_members WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        audit::append(&mut tx, actor, AuditAction::UserDelete, None, json!({"user_id": id, "email": email})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every team as a SCIM Group, by name.
    pub async fn scim_groups(&self) -> Result<Vec<ScimGroupRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ScimGroupRecord>(&format!("{SCIM_GROUP_SELECT} ORDER BY t.name"))
            .fetch_all(self.exec())
            .await?)
    }

    /// One team as a SCIM Group.
    pub async fn scim_group(&self, id: Uuid) -> Result<Option<ScimGroupRecord>, StoreError> {
        Ok(sqlx::query_as::<_, ScimGroupRecord>(&format!("{SCIM_GROUP_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(self.exec())
            .await?)
    }

    /// Sets a team's external id (SCIM's `externalId`).
    pub async fn set_team_external_id(
        &self,
        id: Uuid,
        external_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE teams SET external_id = $2, updated_at = $3 WHERE id = $1 AND external_id IS DISTINCT FROM $2",
        )
        .bind(id)
        .bind(external_id)
        .bind(now)
        .execute(self.exec())
        .await?;
        Ok(())
    }

    /// The ids of the teams `user_id` belongs to.
    pub async fn teams_of(&self, user_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar("SELECT team_id FROM team_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(self.exec())
            .await?)
    }
}
