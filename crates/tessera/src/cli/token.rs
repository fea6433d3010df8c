//! `tessera token issue | list | revoke | rotate`.

use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use tessera_core::mint::expiry_from_days;
use tessera_core::scope::ScopeSet;
use tessera_store::{Actor, IssueRequest, StoreError, TokenFilter, TokenStatus};
use uuid::Uuid;

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print its secret alone on stdout (shown only this once).
    Issue {
        /// Owner's email.
        #[arg(long)]
        user: String,
        /// Token name.
        #[arg(long)]
        name: String,
        /// Space-separated scopes, e.g. "read:tasks execute:mcp". The CLI may grant mcp:admin.
        #[arg(long)]
        scopes: String,
        /// Lifetime in days (1 to 365).
        #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
        days: i64,
        /// Requests per hour (1 to 1000000); unlimited when omitted.
        #[arg(long)]
        rate_limit: Option<i32>,
        /// Optional description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens, newest first.
    List {
        /// Only this owner's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Only tokens in this status.
        #[arg(long, value_enum, default_value = "all")]
        status: StatusArg,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Revoke a token now (idempotent).
    Revoke {
        /// Token id.
        id: Uuid,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace a token with a new one and print the new secret; the old one works until the grace ends.
    Rotate {
        /// Token id.
        id: Uuid,
        /// Seconds the old token keeps working (0 to 86400).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
    },
}

/// Status filter for `token list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// Every token.
    All,
    /// Usable now.
    Active,
    /// Revoked or rotated.
    Revoked,
    /// Past expiry.
    Expired,
}

/// Runs a token command.
pub async fn run(cmd: TokenCommand, db: &Database, settings: &Settings) -> Result<(), CliError> {
    let now = Utc::now();
    match cmd {
        TokenCommand::Issue { user, name, scopes, days, rate_limit, description } => {
            let scopes = ScopeSet::parse_grant(&scopes)?;
            let expires_at = expiry_from_days(now, days)?;
            check_name(&name)?;
            if let Some(limit) = rate_limit.filter(|l| !(1..=1_000_000).contains(l)) {
                return Err(CliError::Usage(format!("--rate-limit must be between 1 and 1000000, got {limit}")));
            }
            let owner =
                db.store.user_by_email(&user).await?.ok_or_else(|| CliError::Usage(format!("no user {user}")))?;
            let ring = db.key_ring(settings).await?;
            let req = IssueRequest {
                user_id: owner.id,
                name,
                description,
                scopes,
                expires_at,
                rate_limit_per_hour: rate_limit,
                issuer: settings.issuer(),
                audience: vec![settings.mcp_resource()],
            };
            let issued = db.store.issue_token(&ring, &req, now, &Actor::cli()).await?;
            println!("{}", issued.secret.expose());
            eprintln!(
                "issued token {} (expires {}); the secret above is shown only once",
                issued.record.id, expires_at
            );
            Ok(())
        }
        TokenCommand::List { user, status, limit } => {
            let user_id = match user {
                Some(email) => Some(
                    db.store
                        .user_by_email(&email)
                        .await?
                        .ok_or_else(|| CliError::Usage(format!("no user {email}")))?
                        .id,
                ),
                None => None,
            };
            let status = match status {
                StatusArg::All => None,
                StatusArg::Active => Some(TokenStatus::Active),
                StatusArg::Revoked => Some(TokenStatus::Revoked),
                StatusArg::Expired => Some(TokenStatus::Expired),
            };
            let page = db.store.list_tokens(&TokenFilter { user_id, status, q: None, limit, after: None, now }).await?;
            println!("{:<36}  {:<8}  {:<20}  {:<24}  SCOPES", "ID", "STATUS", "EXPIRES", "NAME");
            for t in page.items {
                let status = serde_json::to_value(t.status(now))
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                println!(
                    "{:<36}  {:<8}  {:<20}  {:<24}  {}",
                    t.id,
                    status,
                    t.expires_at.format("%Y-%m-%d %H:%M:%S"),
                    t.name,
                    t.scopes.join(" ")
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, reason } => {
            let record =
                db.store.revoke_token(id, reason.as_deref(), now, &Actor::cli()).await.map_err(not_found(id))?;
            println!("revoked {}", record.id);
            Ok(())
        }
        TokenCommand::Rotate { id, grace_seconds } => {
            if !(0..=86_400).contains(&grace_seconds) {
                return Err(CliError::Usage(format!(
                    "--grace-seconds must be between 0 and 86400, got {grace_seconds}"
                )));
            }
            let ring = db.key_ring(settings).await?;
            let issued = db
                .store
                .rotate_token(
                    &ring,
                    &settings.issuer(),
                    id,
                    chrono::Duration::seconds(grace_seconds),
                    now,
                    &Actor::cli(),
                )
                .await
                .map_err(not_found(id))?;
            println!("{}", issued.secret.expose());
            eprintln!("token {id} replaced by {}; the old one stops working in {grace_seconds} s", issued.record.id);
            Ok(())
        }
    }
}

fn check_name(name: &str) -> Result<(), CliError> {
    let len = name.trim().chars().count();
    if (1..=100).contains(&len) && len == name.chars().count() {
        Ok(())
    } else {
        Err(CliError::Usage("--name must be 1 to 100 characters without leading or trailing spaces".to_owned()))
    }
}

fn not_found(id: Uuid) -> impl Fn(StoreError) -> CliError {
    move |e| match e {
        StoreError::NotFound(_) => CliError::Usage(format!("no token {id}")),
        other => CliError::Store(other),
    }
}
