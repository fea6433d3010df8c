//! Accounts vouched for by an OpenID provider: found by subject (or linked by email),
//! created just in time, with their group-derived teams and administrator status brought up
//! to date at every sign-in.

use serde_json::json;
use uuid::Uuid;

use crate::users::{USER_COLUMNS, User};
use crate::{Actor, AuditAction, Store, StoreError, audit};

/// A person as the provider vouches for them at this sign-in.
#[derive(Debug, Clone)]
pub struct IdpPerson<'a> {
    /// The provider's issuer.
    pub issuer: &'a str,
    /// Subject at the provider.
    pub subject: &'a str,
    /// Their (verified) email.
    pub email: &'a str,
    /// Their groups at the provider.
    pub groups: &'a [String],
    /// `Some(true/false)` when administrator groups are configured: whether they are in one.
    pub admin: Option<bool>,
}

/// What a sign-in through the provider did to the account.
#[derive(Debug, Clone)]
pub enum IdpSignIn {
    /// Signed in; `narrower` when a team or administrator status was taken away (their
    /// tokens must be narrowed).
    Account {
        /// The account, as it now is.
        user: User,
        /// Made by this sign-in.
        created: bool,
        /// Lost a group-derived team or group-derived administrator status.
        narrower: bool,
    },
    /// The account is deactivated.
    Disabled,
    /// The email belongs to an account linked to another identity at this provider.
    Conflict,
}

impl Store {
    /// Finds (by subject, else by an unlinked account with the same email) or creates the
    /// account of `person`, and brings its group-derived teams and administrator status up
    /// to date, in one transaction.
    pub async fn sign_in_from_idp(&self, person: &IdpPerson<'_>, actor: &Actor) -> Result<IdpSignIn, StoreError> {
        let mut tx = self.pool.begin().await?;
        let by_subject: Option<User> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2 FOR UPDATE"
        ))
        .bind(person.issuer)
        .bind(person.subject)
        .fetch_optional(&mut *tx)
        .await?;
        let (user, created) = match by_subject {
            Some(user) => {
                // The provider's email wins when no other account holds it.
                sqlx::query(
                    "UPDATE users SET email = $2 WHERE id = $1 AND lower(email) <> lower($2)
                     AND NOT EXISTS (SELECT 1 FROM users o WHERE lower(o.email) = lower($2) AND o.id <> $1)",
                )
                .bind(user.id)
                .bind(person.email)
                .execute(&mut *tx)
                .await?;
                (user, false)
            }
            None => {
                let by_email: Option<(Uuid, Option<String>)> =
                    sqlx::query_as("SELECT id, oidc_subject FROM users WHERE lower(email) = lower($1) FOR UPDATE")
                        .bind(person.email)
                        .fetch_optional(&mut *tx)
                        .await?;
                match by_email {
                    Some((_, Some(_))) => return Ok(IdpSignIn::Conflict),
                    Some((id, None)) => {
                        let user: User = sqlx::query_as(&format!(
                            "UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1 RETURNING {USER_COLUMNS}"
                        ))
                        .bind(id)
                        .bind(person.issuer)
                        .bind(person.subject)
                        .fetch_one(&mut *tx)
                        .await?;
                        let details = json!({"user_id": id, "linked": "oidc", "issuer": person.issuer});
                        audit::append(&mut tx, actor, AuditAction::UserCreate, None, details).await?;
                        (user, false)
                    }
                    None => {
                        let user: User = sqlx::query_as(&format!(
                            "INSERT INTO users (id, email, password_hash, is_admin, oidc_issuer, oidc_subject)
                             VALUES ($1, $2, NULL, false, $3, $4) RETURNING {USER_COLUMNS}"
                        ))
                        .bind(Uuid::now_v7())
                        .bind(person.email)
                        .bind(person.issuer)
                        .bind(person.subject)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(crate::error::conflict_on_unique("a user with this email"))?;
                        let details = json!({"user_id": user.id, "is_admin": false, "via": "oidc"});
                        audit::append(&mut tx, actor, AuditAction::UserCreate, None, details).await?;
                        (user, true)
                    }
                }
            }
        };
        if user.disabled_at.is_some() {
            return Ok(IdpSignIn::Disabled);
        }
        let lost_admin = match person.admin {
            Some(true) => {
                sqlx::query("UPDATE users SET is_admin = true, admin_from_idp = true WHERE id = $1 AND NOT is_admin")
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                false
            }
            Some(false) => {
                sqlx::query(
                    "UPDATE users SET is_admin = false, admin_from_idp = false WHERE id = $1 AND admin_from_idp",
                )
                .bind(user.id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0
            }
            None => false,
        };
        let mapped: Vec<Uuid> =
            sqlx::query_scalar("SELECT DISTINCT team_id FROM team_groups WHERE idp_group = ANY($1)")
                .bind(person.groups)
                .fetch_all(&mut *tx)
                .await?;
        let joined = sqlx::query(
            "INSERT INTO team_members (team_id, user_id, via_group) SELECT t, $2, true FROM unnest($1::uuid[]) t
             ON CONFLICT DO NOTHING",
        )
        .bind(&mapped)
        .bind(user.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let left = sqlx::query(
            "DELETE FROM team_members WHERE user_id = $1 AND via_group AND NOT (team_id = ANY($2::uuid[]))",
        )
        .bind(user.id)
        .bind(&mapped)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if joined > 0 || left > 0 || lost_admin {
            let details =
                json!({"user_id": user.id, "teams_joined": joined, "teams_left": left, "lost_admin": lost_admin});
            audit::append(&mut tx, actor, AuditAction::TeamChange, None, details).await?;
        }
        let user: User = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(user.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        // Joining a first team leaves `everyone`, which can narrow too.
        Ok(IdpSignIn::Account { user, created, narrower: left > 0 || lost_admin || joined > 0 })
    }
}
