//! `tessera user add | promote | demote | limit | list | disable | enable`.

use std::io::BufRead;

use clap::Subcommand;
use tessera_core::password::{Password, hash_password};
use tessera_store::Actor;

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// Login email (unique, case-insensitive).
        #[arg(long)]
        email: String,
        /// Read the password (one line, at least 8 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the account an administrator (sees and manages every token).
        #[arg(long)]
        admin: bool,
    },
    /// Set (or replace) an account's password, read as one line from standard input; e.g. for
    /// an account made by single sign-on, which has none.
    Password {
        /// The account's email.
        email: String,
    },
    /// Make an existing account an administrator (also `tessera user admin`).
    #[command(alias = "admin")]
    Promote {
        /// The account's email.
        email: String,
    },
    /// Make an administrator an ordinary user again: their tokens and grants lose `mcp:admin`,
    /// `scim` and whatever else their teams do not allow, at once.
    Demote {
        /// The account's email.
        email: String,
    },
    /// Set the requests per hour all of an account's tokens share (on top of each token's
    /// own limit), or clear it with `off`.
    Limit {
        /// The account's email.
        email: String,
        /// Requests per hour (1..=1000000), or `off` (also `none`) to remove the limit.
        per_hour: String,
    },
    /// List accounts.
    List,
    /// Deactivate an account: its sessions end, every token and grant it holds is revoked at
    /// once on every instance, and it can no longer sign in.
    Disable {
        /// The account's email.
        email: String,
    },
    /// Reactivate an account (its revoked tokens stay revoked).
    Enable {
        /// The account's email.
        email: String,
    },
}

/// Runs an account command.
pub async fn run(cmd: UserCommand, db: &Database, settings: &Settings) -> Result<(), CliError> {
    match cmd {
        UserCommand::Add { email, password_stdin, admin } => {
            let email = valid_email(&email)?;
            let hash = if password_stdin {
                let password = read_password()?;
                let hashed = tokio::task::spawn_blocking(move || hash_password(&password))
                    .await
                    .map_err(|e| CliError::Usage(format!("password hashing was interrupted: {e}")))?
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                Some(hashed)
            } else {
                None
            };
            let user = db.store.create_user(&email, hash.as_deref(), admin, &Actor::cli()).await?;
            if hash.is_none() {
                eprintln!("note: {email} has no password, so it cannot sign in to the web UI (use --password-stdin)");
            }
            println!("{}", user.id);
            Ok(())
        }
        UserCommand::Password { email } => {
            let password = read_password()?;
            let hashed = tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| CliError::Usage(format!("password hashing was interrupted: {e}")))?
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let user = db.store.set_user_password(&email, &hashed, &Actor::cli()).await?;
            println!("{} has a new password", user.email);
            Ok(())
        }
        UserCommand::Promote { email } => {
            let tokens = super::lifecycle(db, settings, false).await?;
            let user = tokens.set_admin(&Actor::cli(), &email, true, chrono::Utc::now()).await?;
            println!("{} is now an administrator", user.email);
            Ok(())
        }
        UserCommand::Demote { email } => {
            let tokens = super::lifecycle(db, settings, false).await?;
            let user = tokens.set_admin(&Actor::cli(), &email, false, chrono::Utc::now()).await?;
            println!("{} is no longer an administrator; their tokens were narrowed to their allowance", user.email);
            Ok(())
        }
        UserCommand::Limit { email, per_hour } => {
            let limit = parse_limit(&per_hour)?;
            let user = db.store.user_by_email(&email).await?.ok_or(tessera_store::StoreError::NotFound("user"))?;
            let user = db.store.set_user_rate_limit(user.id, limit, &Actor::cli()).await?;
            match user.rate_limit_per_hour {
                Some(n) => println!("{}'s tokens now share {n} requests per hour", user.email),
                None => println!("{} has no per-user rate limit now", user.email),
            }
            Ok(())
        }
        UserCommand::Disable { email } => set_active(db, settings, &email, false).await,
        UserCommand::Enable { email } => set_active(db, settings, &email, true).await,
        UserCommand::List => {
            println!("{:<36}  {:<5}  {:<20}  {:<10}  EMAIL", "ID", "ADMIN", "CREATED", "LIMIT/H");
            for u in db.store.list_users().await? {
                let admin = if u.is_admin { "yes" } else { "no" };
                let limit = u.rate_limit_per_hour.map_or_else(|| "-".to_owned(), |n| n.to_string());
                println!(
                    "{:<36}  {:<5}  {:<20}  {:<10}  {}",
                    u.id,
                    admin,
                    u.created_at.format("%Y-%m-%d %H:%M:%S"),
                    limit,
                    u.email
                );
            }
            Ok(())
        }
    }
}

/// Deactivates or reactivates the account `email`.
async fn set_active(db: &Database, settings: &Settings, email: &str, active: bool) -> Result<(), CliError> {
    let user = db.store.user_by_email(email).await?.ok_or(tessera_store::StoreError::NotFound("user"))?;
    let tokens = super::lifecycle(db, settings, false).await?;
    if !active {
        // Their connected accounts' upstream grants are revoked (a key is needed only if any).
        if let Ok(key) = crate::secret_key::load(settings) {
            let servers = tessera_tokens::ServerService::new(db.store.clone(), key);
            if let Some(revoking) = servers.revoke_connections_of(user.id).await {
                let _ = revoking.await;
            }
        }
    }
    let user = tokens.set_owner_active(&Actor::cli(), user.id, active, chrono::Utc::now()).await?;
    if active {
        println!("{} is active again (tokens revoked when it was deactivated stay revoked)", user.email);
    } else {
        println!("{} is deactivated: its sessions ended and its tokens are revoked", user.email);
    }
    Ok(())
}

/// `off`/`none` → no limit; otherwise a number in the token limit's range.
fn parse_limit(arg: &str) -> Result<Option<i32>, CliError> {
    let arg = arg.trim();
    if arg.eq_ignore_ascii_case("off") || arg.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let n: i64 =
        arg.parse().map_err(|_| CliError::Usage(format!("`{arg}` is not a number of requests per hour or `off`")))?;
    let limit = tessera_core::values::RateLimit::new(n).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Some(limit.to_stored()))
}

/// Trims and checks an email address enough to catch typos.
pub fn valid_email(email: &str) -> Result<String, CliError> {
    let email = email.trim();
    let ok = (3..=320).contains(&email.len())
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok { Ok(email.to_owned()) } else { Err(CliError::Usage(format!("`{email}` is not a valid email address"))) }
}

fn read_password() -> Result<Password, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    let chars = password.chars().count();
    if !(8..=1024).contains(&chars) {
        return Err(CliError::Usage("the password must be 8 to 1024 characters long".to_owned()));
    }
    Ok(Password::new(password))
}
