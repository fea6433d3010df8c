//! Finding PostgreSQL's server binaries (Debian keeps them off PATH).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ClusterError;

/// The directory holding `initdb` and `pg_ctl`: `TESSERA_PG_BINDIR`, then `pg_config --bindir`,
/// then the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("TESSERA_PG_BINDIR").map(PathBuf::from) {
        return if has_server(&dir) { Ok(dir) } else { Err(ClusterError::BinariesNotFound) };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| has_server(d))
        .ok_or(ClusterError::BinariesNotFound)
}
