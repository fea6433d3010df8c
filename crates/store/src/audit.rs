//! The append-only audit log.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Store, StoreError};

/// Who performed a management action (a person, a token used as credential, or the CLI).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The acting user, if known.
    pub user_id: Option<Uuid>,
    /// The token used as API credential, if any.
    pub token_id: Option<Uuid>,
    /// The client address, if the action came over HTTP.
    pub ip: Option<String>,
}

impl Actor {
    /// The administrator at the command line.
    pub fn cli() -> Self {
        Self { user_id: None, token_id: None, ip: Some("cli".to_owned()) }
    }
}

/// What an audit row records; stored as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A token was issued.
    TokenIssue,
    /// A token was replaced by rotation.
    TokenRotate,
    /// A token's name, description, limit, scopes or expiry changed.
    TokenPatch,
    /// A token was revoked.
    TokenRevoke,
    /// A user account was created.
    UserCreate,
    /// A user became an administrator.
    UserPromote,
    /// An administrator became an ordinary user.
    UserDemote,
    /// A user's shared rate limit was set or cleared.
    UserLimit,
    /// A SCIM client changed an account's names or email (`/scim/v2`).
    UserUpdate,
    /// A SCIM client deleted an account (it is kept, deactivated and hidden).
    UserDelete,
    /// An account was deactivated: its sessions ended, its tokens revoked.
    UserDisable,
    /// An account was reactivated (its old tokens stay revoked).
    UserEnable,
    /// A signing key was created.
    KeyCreate,
    /// The signing key was rotated.
    KeyRotate,
    /// Someone signed in.
    Login,
    /// A sign-in failed.
    LoginFailed,
    /// Someone signed out.
    Logout,
    /// A user approved an OAuth client's request (the grant's token is issued on exchange).
    OAuthConsent,
    /// A user denied an OAuth client's request.
    OAuthDeny,
    /// An OAuth grant's refresh token was used to get a new access token.
    OAuthRefresh,
    /// A used refresh token or authorization code came back: the grant was revoked.
    OAuthReuse,
    /// A client registered itself (RFC 7591).
    OAuthRegister,
    /// An upstream server was registered.
    ServerCreate,
    /// An upstream server's URL, description or headers changed.
    ServerUpdate,
    /// An upstream server was removed (and its scopes taken out of tokens).
    ServerRemove,
    /// A tool's class was overridden.
    ServerToolAccess,
    /// An admin approved a held tool's served definition (issue #26).
    ServerToolApprove,
    /// A team was made, removed, or its allowance or members changed.
    TeamChange,
    /// A person connected their own credential to a server, or disconnected it.
    ServerConnection,
}

impl AuditAction {
    /// The stored name, e.g. `token.issue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenIssue => "token.issue",
            Self::TokenRotate => "token.rotate",
            Self::TokenPatch => "token.patch",
            Self::TokenRevoke => "token.revoke",
            Self::UserCreate => "user.create",
            Self::UserPromote => "user.promote",
            Self::UserDemote => "user.demote",
            Self::UserLimit => "user.limit",
            Self::UserUpdate => "user.update",
            Self::UserDelete => "user.delete",
            Self::UserDisable => "user.disable",
            Self::UserEnable => "user.enable",
            Self::KeyCreate => "key.create",
            Self::KeyRotate => "key.rotate",
            Self::Login => "auth.login",
            Self::LoginFailed => "auth.login_failed",
            Self::Logout => "auth.logout",
            Self::OAuthConsent => "oauth.consent",
            Self::OAuthDeny => "oauth.deny",
            Self::OAuthRefresh => "oauth.refresh",
            Self::OAuthReuse => "oauth.reuse_detected",
            Self::OAuthRegister => "oauth.register",
            Self::ServerCreate => "server.create",
            Self::ServerUpdate => "server.update",
            Self::ServerRemove => "server.remove",
            Self::ServerToolAccess => "server.tool_access",
            Self::ServerToolApprove => "server.tool_approve",
            Self::TeamChange => "team.change",
            Self::ServerConnection => "server.connection",
        }
    }
}

/// One row of `audit_events`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    /// Monotonic id.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Acting user.
    pub actor_user_id: Option<Uuid>,
    /// Acting token.
    pub actor_token_id: Option<Uuid>,
    /// What happened, e.g. `token.issue`.
    pub action: String,
    /// The token acted on.
    pub token_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<String>,
    /// Extra facts (never a secret).
    pub details: serde_json::Value,
}

pub(crate) async fn append(
    conn: &mut PgConnection,
    actor: &Actor,
    action: AuditAction,
    token_id: Option<Uuid>,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (actor_user_id, actor_token_id, action, token_id, ip, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor.user_id)
    .bind(actor.token_id)
    .bind(action.as_str())
    .bind(token_id)
    .bind(actor.ip.as_deref())
    .bind(details)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Appends an audit row outside any other change (logins, logouts, failed logins).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: AuditAction,
        token_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, actor, action, token_id, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit rows about one token, oldest first.
    pub async fn audit_for_token(&self, token_id: Uuid, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(sqlx::query_as::<_, AuditEvent>(
            "SELECT id, at, actor_user_id, actor_token_id, action, token_id, ip, details
             FROM audit_events WHERE token_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(token_id)
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }

    /// The newest audit rows, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(sqlx::query_as::<_, AuditEvent>(
            "SELECT id, at, actor_user_id, actor_token_id, action, token_id, ip, details
             FROM audit_events ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.exec())
        .await?)
    }
}
