//! `tessera token issue | list | revoke | rotate`.

use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use tessera_core::lifecycle::Requester;
use tessera_core::values::{
    Description, GRACE_MAX_SECS, Grace, LIFETIME_DEFAULT_DAYS, Lifetime, RATE_LIMIT_MAX, RATE_LIMIT_MIN, RateLimit,
    RevokeReason, TokenName,
};
use tessera_store::{TokenFilter, TokenStatus};
use tessera_tokens::{IssueInput, RevokeCause, TokenError};
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
        /// Token name, 1 to 100 characters (surrounding spaces are trimmed, as the API does).
        #[arg(long)]
        name: String,
        /// Space-separated scopes, e.g. "read:tasks execute:mcp read:github call:github/create_issue".
        /// The CLI may grant mcp:admin.
        #[arg(long)]
        scopes: String,
        /// Lifetime in days (1 to 365).
        #[arg(long, default_value_t = LIFETIME_DEFAULT_DAYS, allow_negative_numbers = true)]
        days: i64,
        /// Requests per hour (1 to 1000000); unlimited when omitted.
        #[arg(long, allow_negative_numbers = true)]
        rate_limit: Option<i64>,
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
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
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
    let service = |mints: bool| super::lifecycle(db, settings, mints);
    match cmd {
        TokenCommand::Issue { user, name, scopes, days, rate_limit, description } => {
            let scopes = tessera_tokens::catalog(&db.store).await?.grant(scopes.split_whitespace())?;
            let lifetime = Lifetime::from_days(days)?;
            let name = TokenName::parse(&name).map_err(|e| CliError::Usage(format!("--{e}")))?;
            let rate_limit = rate_limit
                .map(|n| {
                    RateLimit::new(n).map_err(|_| {
                        CliError::Usage(format!(
                            "--rate-limit must be between {RATE_LIMIT_MIN} and {RATE_LIMIT_MAX}, got {n}"
                        ))
                    })
                })
                .transpose()?;
            let description = description.as_deref().map(Description::parse).transpose()?;
            let owner =
                db.store.user_by_email(&user).await?.ok_or_else(|| CliError::Usage(format!("no user {user}")))?;
            let input = IssueInput { owner: owner.id, name, description, scopes, lifetime, rate_limit };
            let issued = service(true).await?.issue(&Requester::Cli, None, input, now).await?;
            println!("{}", issued.secret.expose());
            eprintln!(
                "issued token {} (expires {}); the secret above is shown only once",
                issued.record.id, issued.record.expires_at
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
                // An OAuth grant says so, after the scopes: existing columns keep their places.
                let via = match (&t.oauth_client_name, &t.oauth_client_id) {
                    (Some(name), _) => format!("  (via OAuth — {name})"),
                    (None, Some(id)) => format!("  (via OAuth — {id})"),
                    _ => String::new(),
                };
                println!(
                    "{:<36}  {:<8}  {:<20}  {:<24}  {}{via}",
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
            let reason = reason.as_deref().map(RevokeReason::parse).transpose()?.flatten();
            let revoked = service(false)
                .await?
                .revoke(&Requester::Cli, None, id, RevokeCause::Requested(reason), now)
                .await
                .map_err(not_found(id))?;
            println!("revoked {}", revoked.record.id);
            for child in revoked.also_revoked {
                println!("revoked {child} (minted by {id})");
            }
            Ok(())
        }
        TokenCommand::Rotate { id, grace_seconds } => {
            let grace = Grace::from_secs(grace_seconds).map_err(|_| {
                CliError::Usage(format!("--grace-seconds must be between 0 and {GRACE_MAX_SECS}, got {grace_seconds}"))
            })?;
            let issued =
                service(true).await?.rotate(&Requester::Cli, None, id, grace, now).await.map_err(not_found(id))?;
            println!("{}", issued.secret.expose());
            eprintln!("token {id} replaced by {}; the old one stops working in {grace_seconds} s", issued.record.id);
            Ok(())
        }
    }
}

fn not_found(id: Uuid) -> impl Fn(TokenError) -> CliError {
    move |e| match e {
        TokenError::NotFound => CliError::Usage(format!("no token {id}")),
        other => CliError::Token(other),
    }
}
