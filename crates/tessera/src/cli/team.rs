//! `tessera team add | allow | member | list | show | remove`: who may hold which scopes.

use chrono::Utc;
use clap::Subcommand;
use tessera_store::{Actor, TeamRecord};
use tessera_tokens::TeamService;

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Team commands.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Make a team whose members may hold at most SCOPES (`write:S` brings `read:S`).
    Add {
        /// Team name (1-100 characters).
        name: String,
        /// The allowance: space-separated scopes ("" allows nothing). Never `mcp:admin`.
        #[arg(long)]
        allow: String,
        /// An identity-provider group mapped to the team (repeatable); stored for single sign-on,
        /// which does not apply it yet.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Replace a team's allowance; its people's tokens lose what falls outside at once.
    Allow {
        /// Team name (`everyone` bounds people in no team).
        name: String,
        /// The new allowance: space-separated scopes.
        scopes: String,
    },
    /// Add or remove a member.
    #[command(subcommand)]
    Member(MemberCommand),
    /// List the teams with their allowance and size.
    List,
    /// Show one team: allowance, groups, members.
    Show {
        /// Team name.
        name: String,
    },
    /// Remove a team; its members fall back to their other teams, or to `everyone`.
    Remove {
        /// Team name.
        name: String,
    },
}

/// Membership commands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add an account to a team (joining a narrow team can shrink what it may hold).
    Add {
        /// Team name.
        name: String,
        /// The account's email.
        email: String,
    },
    /// Remove an account from a team.
    Remove {
        /// Team name.
        name: String,
        /// The account's email.
        email: String,
    },
}

/// Runs a team command.
pub async fn run(cmd: TeamCommand, db: &Database, settings: &Settings) -> Result<(), CliError> {
    let teams = service(db, settings).await?;
    let (actor, now) = (Actor::cli(), Utc::now());
    let narrowed = |n: usize| {
        if n > 0 {
            println!("{n} token(s) narrowed to the new allowance");
        }
    };
    match cmd {
        TeamCommand::Add { name, allow, groups } => {
            teams.add(&actor, &name, &allow, &groups, now).await?;
            println!("team {name} added");
        }
        TeamCommand::Allow { name, scopes } => {
            narrowed(teams.allow(&actor, &name, &scopes, now).await?);
            println!("team {name} now allows: {}", show_allowance(&teams.get(&name).await?));
        }
        TeamCommand::Member(MemberCommand::Add { name, email }) => {
            narrowed(teams.set_member(&actor, &name, &email, true, now).await?);
            println!("{email} is in team {name}");
        }
        TeamCommand::Member(MemberCommand::Remove { name, email }) => {
            narrowed(teams.set_member(&actor, &name, &email, false, now).await?);
            println!("{email} left team {name}");
        }
        TeamCommand::List => {
            println!("{:<24}  {:>7}  ALLOWANCE", "NAME", "MEMBERS");
            for t in teams.list().await? {
                let members =
                    if t.name == tessera_store::EVERYONE { "-".to_owned() } else { t.members.len().to_string() };
                println!("{:<24}  {members:>7}  {}", t.name, show_allowance(&t));
            }
        }
        TeamCommand::Show { name } => {
            let t = teams.get(&name).await?;
            println!("name:      {}", t.name);
            println!("allowance: {}", show_allowance(&t));
            println!("groups:    {}", t.groups.join(", "));
            if t.name == tessera_store::EVERYONE {
                println!("members:   everyone in no team");
            } else {
                println!("members:");
                for m in &t.members {
                    println!("  {m}");
                }
            }
        }
        TeamCommand::Remove { name } => {
            narrowed(teams.remove(&actor, &name, now).await?);
            println!("removed team {name}");
        }
    }
    Ok(())
}

fn show_allowance(t: &TeamRecord) -> String {
    match &t.allowance {
        None => "every scope".to_owned(),
        Some(s) if s.is_empty() => "nothing".to_owned(),
        Some(s) => s.join(" "),
    }
}

async fn service(db: &Database, settings: &Settings) -> Result<TeamService, CliError> {
    Ok(TeamService::new(db.store.clone(), super::lifecycle(db, settings, false).await?))
}
