//! Teams and allowances (issue #24): who may hold which scopes. Changing a team re-bounds its
//! people at once: whatever their tokens and grants hold beyond their new allowance is taken
//! out (see [`TokenService::narrow_to_allowance`]).

use chrono::{DateTime, Utc};
use tessera_core::scope::{ScopeError, ScopeSet};
use tessera_store::{Actor, EVERYONE, Store, StoreError, TeamRecord};
use uuid::Uuid;

use crate::{TokenError, TokenService, catalog};

/// Longest team name (SCIM clients send UUIDs and display names).
const MAX_TEAM_NAME: usize = 100;
/// Longest identity-provider group name.
const MAX_GROUP_NAME: usize = 256;

/// Why a team operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    /// No team of that name.
    #[error("no team {0}")]
    NotFound(String),
    /// No account with that email.
    #[error("no account {0}")]
    NoUser(String),
    /// The name is taken.
    #[error("a team named {0} already exists")]
    Conflict(String),
    /// An empty, too long or control-character name.
    #[error("a team name is 1 to {MAX_TEAM_NAME} characters, without control characters")]
    BadName,
    /// An identity-provider group name that is empty, too long or has control characters.
    #[error("a group name is 1 to {MAX_GROUP_NAME} characters, without control characters")]
    BadGroup,
    /// `everyone` has no members of its own and is never removed.
    #[error("`everyone` holds whoever is in no team: it has no members to change and cannot be removed")]
    BuiltIn,
    /// `mcp:admin` (and `scim`) belong to administrators, never to an allowance.
    #[error("mcp:admin is never in an allowance, nor is scim: only administrators hold them")]
    AdminScope,
    /// A scope the catalog does not have.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// Narrowing the people's tokens failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Teams over the store, narrowing tokens through the lifecycle.
#[derive(Debug, Clone)]
pub struct TeamService {
    store: Store,
    tokens: TokenService,
}

impl TeamService {
    /// The teams of `store`, re-bounding tokens through `tokens`.
    pub fn new(store: Store, tokens: TokenService) -> Self {
        Self { store, tokens }
    }

    /// Every team, `everyone` included.
    pub async fn list(&self) -> Result<Vec<TeamRecord>, TeamError> {
        Ok(self.store.teams().await?)
    }

    /// One team.
    pub async fn get(&self, name: &str) -> Result<TeamRecord, TeamError> {
        known_shape(name)?;
        self.store.team(name).await?.ok_or_else(|| TeamError::NotFound(name.to_owned()))
    }

    /// Makes a team allowing `allow` (space-separated scopes), mapped to `groups`.
    pub async fn add(
        &self,
        actor: &Actor,
        name: &str,
        allow: &str,
        groups: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), TeamError> {
        check_name(name)?;
        if !groups.iter().all(|g| fits(g, MAX_GROUP_NAME)) {
            return Err(TeamError::BadGroup);
        }
        let allowance = self.allowance(allow).await?;
        match self.store.create_team(actor, name, &allowance.to_vec(), groups, now).await {
            Err(StoreError::Conflict(_)) => Err(TeamError::Conflict(name.to_owned())),
            other => Ok(other?),
        }
    }

    /// Replaces a team's allowance; its people's tokens lose what falls outside at once.
    /// Returns how many tokens were narrowed.
    pub async fn allow(&self, actor: &Actor, name: &str, allow: &str, now: DateTime<Utc>) -> Result<usize, TeamError> {
        known_shape(name)?;
        let allowance = self.allowance(allow).await?;
        if !self.store.set_team_allowance(actor, name, &allowance.to_vec(), now).await? {
            return Err(TeamError::NotFound(name.to_owned()));
        }
        self.rebound(&self.store.people_bound_by(name).await?, now).await
    }

    /// Adds or removes a member by email; either may shrink what they may hold (joining a
    /// narrow team leaves `everyone`). Returns how many of their tokens were narrowed.
    pub async fn set_member(
        &self,
        actor: &Actor,
        name: &str,
        email: &str,
        member: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, TeamError> {
        if name == EVERYONE {
            return Err(TeamError::BuiltIn);
        }
        known_shape(name)?;
        // PostgreSQL cannot hold NUL: such an address names no account, so say so, not 500.
        if email.contains('\0') {
            return Err(TeamError::NoUser(email.replace('\0', "")));
        }
        let user = self.store.user_by_email(email).await?.ok_or_else(|| TeamError::NoUser(email.to_owned()))?;
        self.set_member_id(actor, name, user.id, member, now).await
    }

    /// [`TeamService::set_member`] for an account known by id (SCIM names members by id).
    pub async fn set_member_id(
        &self,
        actor: &Actor,
        name: &str,
        user_id: Uuid,
        member: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, TeamError> {
        if name == EVERYONE {
            return Err(TeamError::BuiltIn);
        }
        if !self.store.set_team_member(actor, name, user_id, member).await? {
            return Err(TeamError::NotFound(name.to_owned()));
        }
        self.rebound(&[user_id], now).await
    }

    /// Makes a team SCIM pushed, unless one has that name: returns whether it was made. A new
    /// team allows what `everyone` allows at that moment, so joining it neither widens nor
    /// narrows anyone until an administrator sets its allowance.
    pub async fn ensure(&self, actor: &Actor, name: &str, now: DateTime<Utc>) -> Result<bool, TeamError> {
        check_name(name)?;
        if self.store.team(name).await?.is_some() {
            return Ok(false);
        }
        let everyone = self.store.team(EVERYONE).await?.and_then(|t| t.allowance);
        match self.store.create_team_allowing(actor, name, everyone.as_deref(), &[], now).await {
            // Made by someone else in the meantime: joined all the same.
            Err(StoreError::Conflict(_)) => Ok(false),
            other => other.map(|()| true).map_err(TeamError::from),
        }
    }

    /// Renames a team (never `everyone`).
    pub async fn rename(&self, actor: &Actor, name: &str, new_name: &str, now: DateTime<Utc>) -> Result<(), TeamError> {
        if name == EVERYONE {
            return Err(TeamError::BuiltIn);
        }
        check_name(new_name)?;
        match self.store.rename_team(actor, name, new_name, now).await {
            Err(StoreError::Conflict(_)) => Err(TeamError::Conflict(new_name.to_owned())),
            Ok(false) => Err(TeamError::NotFound(name.to_owned())),
            other => other.map(|_| ()).map_err(TeamError::from),
        }
    }

    /// Removes a team; its members fall back to their other teams or `everyone`.
    pub async fn remove(&self, actor: &Actor, name: &str, now: DateTime<Utc>) -> Result<usize, TeamError> {
        if name == EVERYONE {
            return Err(TeamError::BuiltIn);
        }
        known_shape(name)?;
        let members = self.store.delete_team(actor, name).await?.ok_or_else(|| TeamError::NotFound(name.to_owned()))?;
        self.rebound(&members, now).await
    }

    async fn rebound(&self, people: &[Uuid], now: DateTime<Utc>) -> Result<usize, TeamError> {
        let mut narrowed = 0;
        for person in people {
            narrowed += self.tokens.narrow_to_allowance(*person, now).await?;
        }
        Ok(narrowed)
    }

    /// An allowance as written: scopes of the catalog (registered servers and their tools
    /// included), never `mcp:admin` or `scim`; empty allows nothing.
    async fn allowance(&self, allow: &str) -> Result<ScopeSet, TeamError> {
        if allow.split_whitespace().next().is_none() {
            return Ok(ScopeSet::default());
        }
        let scopes = catalog(&self.store).await?.grant(allow.split_whitespace())?;
        if !scopes.admin_only().is_empty() {
            return Err(TeamError::AdminScope);
        }
        Ok(scopes)
    }
}

/// A name no team can have (blank, too long, control characters, NUL) names none: answered
/// as unknown before it reaches the database.
fn known_shape(name: &str) -> Result<(), TeamError> {
    if fits(name, MAX_TEAM_NAME) { Ok(()) } else { Err(TeamError::NotFound(name.replace('\0', ""))) }
}

fn check_name(name: &str) -> Result<(), TeamError> {
    if fits(name, MAX_TEAM_NAME) { Ok(()) } else { Err(TeamError::BadName) }
}

/// Not blank, at most `max` characters (and so at most 4 × `max` bytes), no control characters.
fn fits(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}
