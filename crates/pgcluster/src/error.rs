//! Errors of the local cluster, each a single line a person can act on.

use std::path::{Path, PathBuf};

/// Why the local PostgreSQL could not be prepared, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the `postgresql` package, set TESSERA_PG_BINDIR, or set DATABASE_URL"
    )]
    BinariesNotFound,
    /// We run as root and there is no unprivileged user to run PostgreSQL as.
    #[error(
        "PostgreSQL refuses to run as root and there is no `{0}` OS user to run it as: install the `postgresql` package or run as a normal user"
    )]
    NoServiceUser(String),
    /// The data directory belongs to a user other than the one that must run PostgreSQL.
    #[error(
        "data directory {path} is owned by uid {owner}, not by the user that runs PostgreSQL (uid {expected}): choose another TESSERA_DATA_DIR"
    )]
    ForeignOwner { path: PathBuf, owner: u32, expected: u32 },
    /// The PostgreSQL user cannot reach the data directory through its parents.
    #[error(
        "the `{user}` OS user cannot reach {path} (a parent directory is closed to it): choose a TESSERA_DATA_DIR it can reach, e.g. /var/lib/tessera"
    )]
    Unreachable { user: String, path: PathBuf },
    /// The socket path would be longer than the kernel allows.
    #[error("data directory path {0} is too long for a unix socket: choose a shorter TESSERA_DATA_DIR")]
    PathTooLong(PathBuf),
    /// A file-system or process operation failed.
    #[error("could not {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A PostgreSQL program exited with an error.
    #[error("{what} failed: {detail}")]
    Command { what: &'static str, detail: String },
}

impl ClusterError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { action, path: path.to_path_buf(), source }
    }

    pub(crate) fn with_log_hint(self, log: &Path) -> Self {
        match self {
            Self::Command { what, detail } => {
                Self::Command { what, detail: format!("{detail} (see {})", log.display()) }
            }
            other => other,
        }
    }
}
