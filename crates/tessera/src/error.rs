//! The binary's one error type: every failure becomes one clear line on stderr.

use tessera_core::keys::KeyError;
use tessera_core::scope::ScopeError;
use tessera_core::sealed::SealError;
use tessera_core::values::InvalidValue;
use tessera_pgcluster::ClusterError;
use tessera_store::StoreError;
use tessera_tokens::{ServerError, TokenError};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The managed local PostgreSQL could not be used.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The database refused or could not be reached.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Bad scopes.
    #[error("{0}")]
    Scope(#[from] ScopeError),
    /// A value outside its bounds (name, lifetime, rate limit, grace, reason).
    #[error("{0}")]
    Value(#[from] InvalidValue),
    /// A lifecycle rule or the database refused the change.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The server registry refused the change.
    #[error("{0}")]
    Registry(#[from] ServerError),
    /// A team change was refused.
    #[error("{0}")]
    Team(#[from] tessera_tokens::TeamError),
    /// The secret key is malformed.
    #[error("TESSERA_SECRET_KEY: {0}")]
    Seal(#[from] SealError),
    /// The key file could not be read or created.
    #[error("secret key file {path}: {cause}")]
    KeyFile {
        /// Where.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// Bad signing configuration.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// Bad input on the command line.
    #[error("{0}")]
    Usage(String),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
}
