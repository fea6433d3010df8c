//! stdio servers (issue #26): an MCP server Tessera runs as a child process and speaks to over
//! its stdin and stdout. The rules of its command line, its declared environment and its
//! per-user placeholder live here; running it is the gateway's.

use std::fmt;
use std::time::Duration;

/// Longest command line, as typed.
pub const COMMAND_MAX_LEN: usize = 4096;
/// Most `--env` values.
pub const ENV_MAX: usize = 32;
/// Longest environment value.
pub const ENV_VALUE_MAX_LEN: usize = 4096;
/// Expanded in arguments and environment values to a per-user directory (`--per-user`).
pub const USER_DIR: &str = "{user_dir}";
/// Idle per-user processes stop after this long unless told otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// Why a stdio server's definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCommand {
    /// Empty, unbalanced quotes, control characters, or too long.
    #[error(
        "command must be a program and its arguments (quotes respected, no shell runs it), at most {COMMAND_MAX_LEN} characters"
    )]
    Command,
    /// Not `KEY=VALUE` with a portable name.
    #[error("an environment value must be KEY=VALUE, KEY of letters, digits and _ (not starting with a digit)")]
    Env,
    /// A name Tessera sets itself or never passes on.
    #[error(
        "the environment variable `{0}` cannot be declared: PATH and HOME are set by Tessera, and no Tessera setting (TESSERA_*, DATABASE_URL) reaches a child"
    )]
    ReservedEnv(String),
    /// The same name twice.
    #[error("the environment variable `{0}` is given twice")]
    DuplicateEnv(String),
    /// Too many values.
    #[error("at most {ENV_MAX} environment values")]
    TooManyEnv,
    /// Not an absolute directory path.
    #[error("cwd must be an absolute path")]
    Cwd,
    /// A URL or headers for a stdio server.
    #[error("a stdio server has no URL or headers: remove it and add it again to change what it runs")]
    NotHttp,
    /// Not a duration between a minute and a day.
    #[error("idle timeout must be between 1 minute and 24 hours, e.g. 10m")]
    Idle,
}

/// A declared environment value (`--env KEY=VALUE`): stored sealed, never shown. `Debug`
/// hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    name: String,
    value: String,
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVar").field("name", &self.name).field("value", &"[redacted]").finish()
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

impl EnvVar {
    /// Parses `KEY=VALUE`.
    pub fn parse(line: &str) -> Result<Self, InvalidCommand> {
        let (name, value) = line.split_once('=').ok_or(InvalidCommand::Env)?;
        Self::new(name, value)
    }

    /// A value from its name and value.
    pub fn new(name: &str, value: &str) -> Result<Self, InvalidCommand> {
        let portable = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !portable || value.len() > ENV_VALUE_MAX_LEN || value.contains('\0') {
            return Err(InvalidCommand::Env);
        }
        let upper = name.to_ascii_uppercase();
        if upper == "PATH" || upper == "HOME" || upper == "DATABASE_URL" || upper.starts_with("TESSERA_") {
            return Err(InvalidCommand::ReservedEnv(name.to_owned()));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value, for sealing or for the child's environment only.
    pub fn expose_value(&self) -> &str {
        &self.value
    }
}

/// Checks a set of declared values: no name twice, not too many.
pub fn check_env(env: &[EnvVar]) -> Result<(), InvalidCommand> {
    if env.len() > ENV_MAX {
        return Err(InvalidCommand::TooManyEnv);
    }
    for (i, v) in env.iter().enumerate() {
        if env[..i].iter().any(|w| w.name == v.name) {
            return Err(InvalidCommand::DuplicateEnv(v.name.clone()));
        }
    }
    Ok(())
}

/// A program and its arguments, split like a shell would (quotes respected) though no shell
/// ever runs it: `$VAR`, `;`, `|` and globs are passed on literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    program: String,
    args: Vec<String>,
}

impl CommandLine {
    /// Splits `line`.
    pub fn parse(line: &str) -> Result<Self, InvalidCommand> {
        if line.len() > COMMAND_MAX_LEN || line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(InvalidCommand::Command);
        }
        let mut words = shell_words::split(line).map_err(|_| InvalidCommand::Command)?.into_iter();
        let program = words.next().filter(|p| !p.is_empty()).ok_or(InvalidCommand::Command)?;
        Ok(Self { program, args: words.collect() })
    }

    /// A command line from stored parts.
    pub fn from_parts(program: String, args: Vec<String>) -> Self {
        Self { program, args }
    }

    /// The program (a name looked up in `PATH`, or a path).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The line quoted back so that it splits to the same words (for display).
    pub fn display(&self) -> String {
        shell_words::join(std::iter::once(&self.program).chain(&self.args))
    }
}

/// Checks a working directory.
pub fn check_cwd(cwd: &str) -> Result<(), InvalidCommand> {
    if cwd.starts_with('/') && cwd.len() <= 1024 && !cwd.contains('\0') { Ok(()) } else { Err(InvalidCommand::Cwd) }
}

/// Parses an idle timeout such as `90s`, `10m`, `2h` (a bare number is seconds).
pub fn parse_idle(text: &str) -> Result<Duration, InvalidCommand> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().map_err(|_| InvalidCommand::Idle)?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or(InvalidCommand::Idle)?;
    check_idle(Duration::from_secs(secs))
}

/// Checks an idle timeout's bounds.
pub fn check_idle(idle: Duration) -> Result<Duration, InvalidCommand> {
    if (60..=86_400).contains(&idle.as_secs()) { Ok(idle) } else { Err(InvalidCommand::Idle) }
}

/// `text` with every `{user_dir}` replaced by `dir`.
pub fn expand_user_dir(text: &str, dir: &str) -> String {
    text.replace(USER_DIR, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_split_like_a_shell_would_but_nothing_is_interpreted() {
        let c = CommandLine::parse(r#"npx -y "@scope/server x" '$HOME' a;b"#).unwrap();
        assert_eq!(c.program(), "npx");
        assert_eq!(c.args(), ["-y", "@scope/server x", "$HOME", "a;b"]);
        assert_eq!(CommandLine::parse(&c.display()), Ok(c));
        for bad in ["", "   ", "\"unbalanced", "a\nb"] {
            assert_eq!(CommandLine::parse(bad), Err(InvalidCommand::Command), "{bad:?}");
        }
    }

    #[test]
    fn tessera_settings_path_and_home_cannot_be_declared() {
        for name in ["PATH", "HOME", "DATABASE_URL", "TESSERA_SECRET_KEY", "tessera_x"] {
            assert!(matches!(EnvVar::new(name, "x"), Err(InvalidCommand::ReservedEnv(_))), "{name}");
        }
        assert!(EnvVar::parse("MEMORY_FILE_PATH={user_dir}/m.json").is_ok());
        for bad in ["NOEQUALS", "=x", "1A=x", "A-B=x"] {
            assert_eq!(EnvVar::parse(bad), Err(InvalidCommand::Env), "{bad}");
        }
        let twice = [EnvVar::new("A", "1"), EnvVar::new("A", "2")].map(Result::unwrap);
        assert_eq!(check_env(&twice), Err(InvalidCommand::DuplicateEnv("A".into())));
    }

    #[test]
    fn idle_timeouts_read_units_and_stay_within_bounds() {
        assert_eq!(parse_idle("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_idle("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_idle("90"), Ok(Duration::from_secs(90)));
        for bad in ["5s", "25h", "m", "10x", ""] {
            assert_eq!(parse_idle(bad), Err(InvalidCommand::Idle), "{bad}");
        }
    }

    #[test]
    fn the_user_dir_placeholder_is_expanded_everywhere_it_appears() {
        assert_eq!(expand_user_dir("{user_dir}/m.json:{user_dir}", "/d/u"), "/d/u/m.json:/d/u");
    }
}
