//! Teams (issue #24): a name, an allowance (the scopes members may hold; `None` = every scope),
//! members and mapped identity-provider groups. The built-in team `everyone` bounds people in
//! no team and cannot be removed.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Actor, AuditAction};
use crate::error::conflict_on_unique;
use crate::{Store, StoreError};

/// The built-in team of people in no team.
pub const EVERYONE: &str = "everyone";

/// A team as listed and shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRecord {
    /// Stable id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Scopes its members may hold; `None`: every scope.
    pub allowance: Option<Vec<String>>,
    /// Members' emails, sorted (for `everyone`: empty; it holds whoever is in no team).
    pub members: Vec<String>,
    /// Identity-provider groups mapped to it.
    pub groups: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const TEAM_SELECT: &str = "SELECT t.id, t.name, t.allowance,
        COALESCE(ARRAY(SELECT u.email FROM team_members m JOIN users u ON u.id = m.user_id
                       WHERE m.team_id = t.id ORDER BY u.email), '{}') AS members,
        COALESCE(ARRAY(SELECT g.idp_group FROM team_groups g WHERE g.team_id = t.id ORDER BY g.idp_group), '{}') AS groups,
        t.created_at, t.updated_at
     FROM teams t";

impl Store {
    /// Every team, by name (`everyone` included).
    pub async fn teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        Ok(sqlx::query_as::<_, TeamRecord>(&format!("{TEAM_SELECT} ORDER BY t.name")).fetch_all(self.exec()).await?)
    }

    /// One team by name.
    pub async fn team(&self, name: &str) -> Result<Option<TeamRecord>, StoreError> {
        Ok(sqlx::query_as::<_, TeamRecord>(&format!("{TEAM_SELECT} WHERE t.name = $1"))
            .bind(name)
            .fetch_optional(self.exec())
            .await?)
    }

    /// Creates a team; a taken name is [`StoreError::Conflict`].
    pub async fn create_team(
        &self,
        actor: &Actor,
        name: &str,
        allowance: &[String],
        groups: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.create_team_allowing(actor, name, Some(allowance), groups, now).await
    }

    /// Creates a team whose allowance may be `None` (every scope but the administrators').
    pub async fn create_team_allowing(
        &self,
        actor: &Actor,
        name: &str,
        allowance: Option<&[String]>,
        groups: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO teams (id, name, allowance, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(id)
            .bind(name)
            .bind(allowance)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique("team"))?;
        for group in groups {
            sqlx::query("INSERT INTO team_groups (team_id, idp_group) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
        }
        let details = json!({"team": name, "allowance": allowance, "groups": groups});
        audit::append(&mut tx, actor, AuditAction::TeamChange, None, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renames a team (never `everyone`); false when there is no such team, a taken name is
    /// [`StoreError::Conflict`].
    pub async fn rename_team(
        &self,
        actor: &Actor,
        name: &str,
        new_name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if name == EVERYONE {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE teams SET name = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(new_name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique("team"))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::append(&mut tx, actor, AuditAction::TeamChange, None, json!({"team": new_name, "renamed_from": name}))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a team's allowance; false when there is no such team.
    pub async fn set_team_allowance(
        &self,
        actor: &Actor,
        name: &str,
        allowance: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE teams SET allowance = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(allowance)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::append(&mut tx, actor, AuditAction::TeamChange, None, json!({"team": name, "allowance": allowance}))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds (`member`) or removes a person; false when the team is unknown or is `everyone`.
    pub async fn set_team_member(
        &self,
        actor: &Actor,
        name: &str,
        user_id: Uuid,
        member: bool,
    ) -> Result<bool, StoreError> {
        if name == EVERYONE {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let Some(team_id) = team_id(&mut tx, name).await? else { return Ok(false) };
        if member {
            sqlx::query(
                // Added directly: a membership the identity provider gave becomes lasting.
                "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)
             ON CONFLICT (team_id, user_id) DO UPDATE SET via_group = false",
            )
            .bind(team_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        let details = json!({"team": name, "user_id": user_id, "member": member});
        audit::append(&mut tx, actor, AuditAction::TeamChange, None, details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a team (never `everyone`); its members fall back to their other teams, or to
    /// `everyone`. Returns the members it had, or `None` when there was no such team.
    pub async fn delete_team(&self, actor: &Actor, name: &str) -> Result<Option<Vec<Uuid>>, StoreError> {
        if name == EVERYONE {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let Some(team_id) = team_id(&mut tx, name).await? else { return Ok(None) };
        let members: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM team_members WHERE team_id = $1")
            .bind(team_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM teams WHERE id = $1").bind(team_id).execute(&mut *tx).await?;
        audit::append(&mut tx, actor, AuditAction::TeamChange, None, json!({"team": name, "removed": true})).await?;
        tx.commit().await?;
        Ok(Some(members))
    }

    /// The allowances bounding `user_id`: each of their teams', or `everyone`'s when they are
    /// in none. An inner `None` is a team allowing every scope.
    pub async fn allowances_of(&self, user_id: Uuid) -> Result<Vec<Option<Vec<String>>>, StoreError> {
        let own: Vec<Option<Vec<String>>> = sqlx::query_scalar(
            "SELECT t.allowance FROM teams t JOIN team_members m ON m.team_id = t.id WHERE m.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(self.exec())
        .await?;
        if !own.is_empty() {
            return Ok(own);
        }
        let everyone: Option<Option<Vec<String>>> = sqlx::query_scalar("SELECT allowance FROM teams WHERE name = $1")
            .bind(EVERYONE)
            .fetch_optional(self.exec())
            .await?;
        Ok(vec![everyone.flatten()])
    }

    /// The people a change of team `name` may narrow: its members, or for `everyone` every
    /// person in no team.
    pub async fn people_bound_by(&self, name: &str) -> Result<Vec<Uuid>, StoreError> {
        let query = if name == EVERYONE {
            "SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM team_members m WHERE m.user_id = u.id)"
        } else {
            "SELECT m.user_id FROM team_members m JOIN teams t ON t.id = m.team_id WHERE t.name = $1"
        };
        Ok(sqlx::query_scalar(query).bind(name).fetch_all(self.exec()).await?)
    }
}

async fn team_id(conn: &mut PgConnection, name: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM teams WHERE name = $1").bind(name).fetch_optional(&mut *conn).await?)
}
