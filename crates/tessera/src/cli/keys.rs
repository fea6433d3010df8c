//! `tessera keys list | rotate`.

use chrono::Utc;
use clap::Subcommand;
use tessera_store::Actor;

use crate::config::Settings;
use crate::database::Database;
use crate::error::CliError;

/// Signing key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keys that verify tokens and the one that signs.
    List,
    /// Add a new signing key; the old ones keep verifying until their tokens expire.
    Rotate,
}

/// Runs a key command.
pub async fn run(cmd: KeysCommand, db: &Database, settings: &Settings) -> Result<(), CliError> {
    if settings.jwt_secret.is_some() {
        return Err(CliError::Usage(
            "TESSERA_JWT_SECRET is set: tokens are signed with that HS256 secret; change the secret to rotate"
                .to_owned(),
        ));
    }
    let now = Utc::now();
    match cmd {
        KeysCommand::List => {
            let set = db.store.load_or_create_keys(now).await?;
            println!("{:<24}  {:<6}  {:<8}  {:<20}  RETIRED", "KID", "ALG", "SIGNS", "CREATED");
            for (key, (created, retired)) in set.keys.iter().zip(set.lifetimes.iter()) {
                let signs = if key.kid == set.signing_kid { "yes" } else { "no" };
                let retired = retired.map(|r| r.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
                println!(
                    "{:<24}  {:<6}  {:<8}  {:<20}  {}",
                    key.kid,
                    key.alg.as_str(),
                    signs,
                    created.format("%Y-%m-%d %H:%M:%S"),
                    retired
                );
            }
            Ok(())
        }
        KeysCommand::Rotate => {
            db.store.load_or_create_keys(now).await?;
            let kid = db.store.rotate_keys(now, &Actor::cli()).await?;
            println!("{kid}");
            eprintln!("new signing key {kid}; running servers pick it up on restart, older keys keep verifying");
            Ok(())
        }
    }
}
