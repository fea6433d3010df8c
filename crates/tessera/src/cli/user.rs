//! `tessera user add | promote | list`.

use std::io::BufRead;

use clap::Subcommand;
use tessera_core::password::{Password, hash_password};
use tessera_store::Actor;

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
    /// Make an existing account an administrator.
    Promote {
        /// The account's email.
        email: String,
    },
    /// List accounts.
    List,
}

/// Runs an account command.
pub async fn run(cmd: UserCommand, db: &Database) -> Result<(), CliError> {
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
        UserCommand::Promote { email } => {
            let user = db.store.promote_user(&email, &Actor::cli()).await?;
            println!("{} is now an administrator", user.email);
            Ok(())
        }
        UserCommand::List => {
            println!("{:<36}  {:<5}  {:<20}  EMAIL", "ID", "ADMIN", "CREATED");
            for u in db.store.list_users().await? {
                let admin = if u.is_admin { "yes" } else { "no" };
                println!("{:<36}  {:<5}  {:<20}  {}", u.id, admin, u.created_at.format("%Y-%m-%d %H:%M:%S"), u.email);
            }
            Ok(())
        }
    }
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
