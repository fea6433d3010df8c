//! The binary's one error type: every failure becomes one clear line on stderr.

use tessera_core::keys::KeyError;
use tessera_core::mint::ExpiryError;
use tessera_core::scope::ScopeError;
use tessera_pgcluster::ClusterError;
use tessera_store::StoreError;

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
    /// Bad expiry.
    #[error("{0}")]
    Expiry(#[from] ExpiryError),
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
