//! Who runs PostgreSQL: ourselves, or (when we are root) the unprivileged `postgres` user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Uid, User, chown};

use crate::ClusterError;

const SERVICE_USER: &str = "postgres";

/// The identity PostgreSQL's programs run under.
#[derive(Debug)]
pub(crate) enum RunAs {
    /// We are an ordinary user: run the programs directly.
    Current { uid: u32 },
    /// We are root: run the programs through `runuser` as this user.
    Service { name: String, uid: u32, gid: u32 },
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self, ClusterError> {
        if !Uid::effective().is_root() {
            return Ok(Self::Current { uid: Uid::effective().as_raw() });
        }
        match User::from_name(SERVICE_USER) {
            Ok(Some(u)) => Ok(Self::Service { name: u.name, uid: u.uid.as_raw(), gid: u.gid.as_raw() }),
            _ => Err(ClusterError::NoServiceUser(SERVICE_USER.to_owned())),
        }
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        match self {
            Self::Current { .. } => Command::new(program),
            Self::Service { name, .. } => {
                let mut cmd = Command::new("runuser");
                cmd.arg("-u").arg(name).arg("--").arg(program);
                cmd
            }
        }
    }

    /// Gives `path` to the server's user (as root), or checks that we own it (otherwise).
    pub(crate) fn take_ownership(&self, path: &Path) -> Result<(), ClusterError> {
        let meta = std::fs::metadata(path).map_err(|e| ClusterError::io("inspect", path, e))?;
        match self {
            Self::Service { uid, gid, .. } => {
                if meta.uid() != *uid && meta.uid() != 0 {
                    // Someone else's directory: never take it over.
                    return Err(ClusterError::ForeignOwner {
                        path: path.to_path_buf(),
                        owner: meta.uid(),
                        expected: *uid,
                    });
                }
                if meta.uid() != *uid {
                    chown(path, Some(Uid::from_raw(*uid)), Some(nix::unistd::Gid::from_raw(*gid)))
                        .map_err(|e| ClusterError::io("change the owner of", path, e.into()))?;
                }
            }
            Self::Current { uid } => {
                if meta.uid() != *uid {
                    return Err(ClusterError::ForeignOwner {
                        path: path.to_path_buf(),
                        owner: meta.uid(),
                        expected: *uid,
                    });
                }
            }
        }
        if meta.is_dir() && meta.mode() & 0o777 != 0o700 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ClusterError::io("restrict the permissions of", path, e))?;
        }
        Ok(())
    }

    /// Checks that the server's user can enter `dir` (all parents must be traversable).
    pub(crate) fn check_reachable(&self, dir: &Path) -> Result<(), ClusterError> {
        let Self::Service { name, .. } = self else { return Ok(()) };
        let ok = self.command(Path::new("test")).arg("-w").arg(dir).status().map(|s| s.success()).unwrap_or(false);
        if ok { Ok(()) } else { Err(ClusterError::Unreachable { user: name.clone(), path: dir.to_path_buf() }) }
    }
}
