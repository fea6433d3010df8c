//! The key that seals upstream credentials: `TESSERA_SECRET_KEY`, else a key file in the
//! data directory, created (mode 0600) the first time a command needs it.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tessera_core::sealed::SealKey;

use crate::config::Settings;
use crate::error::CliError;

/// Name of the key file in `TESSERA_DATA_DIR`.
pub const KEY_FILE: &str = "secret.key";

/// The configured key, or the data directory's (created when missing).
pub fn load(settings: &Settings) -> Result<SealKey, CliError> {
    if let Some(text) = &settings.secret_key {
        return Ok(SealKey::parse(text.expose())?);
    }
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).map_err(|cause| file_error(dir, cause))?;
    let path = dir.join(KEY_FILE);
    let fresh = SealKey::generate();
    // `create_new` so two processes starting at once cannot both write a key: the loser
    // reads the winner's.
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", fresh.to_base64()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|cause| file_error(&path, cause))?;
            tracing::info!(path = %path.display(), "created the secret key file for upstream credentials");
            Ok(fresh)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|cause| file_error(&path, cause))?;
            Ok(SealKey::parse(&text)?)
        }
        Err(cause) => Err(file_error(&path, cause)),
    }
}

fn file_error(path: &Path, cause: std::io::Error) -> CliError {
    CliError::KeyFile { path: path.display().to_string(), cause }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        settings: Settings,
    }

    fn settings(dir: &Path) -> Settings {
        let mut s = Args::parse_from(["t"]).settings;
        s.data_dir = dir.to_owned();
        s.secret_key = None;
        s
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load(&settings(dir.path())).unwrap();
        let second = load(&settings(dir.path())).unwrap();
        assert_eq!(first.to_base64(), second.to_base64());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_environment_key_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::generate();
        let mut s = settings(dir.path());
        s.secret_key = Some(key.to_base64().into());
        assert_eq!(load(&s).unwrap().to_base64(), key.to_base64());
        assert!(!dir.path().join(KEY_FILE).exists());
    }
}
