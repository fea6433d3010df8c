//! Starts one throw-away PostgreSQL for a whole test run, runs the given command with
//! `TEST_DATABASE_URL` pointing at it, then stops the server and deletes its files.
//!
//! Usage: `with-test-db <command> [args...]` (exit status is the command's).

use std::process::{Command, ExitCode};

use tessera_pgcluster::LocalCluster;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: with-test-db <command> [args...]");
        return ExitCode::from(2);
    };
    if let Ok(url) = std::env::var(tessera_testkit::TEST_DATABASE_URL) {
        eprintln!("with-test-db: using TEST_DATABASE_URL from the environment");
        return run(program, rest, &url);
    }
    // Under /tmp so the unprivileged postgres user can reach it, and the socket path stays short.
    let dir = match tempfile::Builder::new().prefix("tessera-test-pg-").tempdir_in("/tmp") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("with-test-db: cannot create a temp dir: {e}");
            return ExitCode::from(1);
        }
    };
    let mut cluster = match LocalCluster::new(dir.path()) {
        Ok(c) => c.throwaway(),
        Err(e) => {
            eprintln!("with-test-db: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = cluster.start("postgres") {
        eprintln!("with-test-db: {e}");
        return ExitCode::from(1);
    }
    eprintln!("with-test-db: PostgreSQL running in {}", dir.path().display());
    let code = run(program, rest, &cluster.url("postgres"));
    if let Err(e) = cluster.stop() {
        eprintln!("with-test-db: {e}");
    }
    code
}

fn run(program: &str, args: &[String], url: &str) -> ExitCode {
    match Command::new(program).args(args).env(tessera_testkit::TEST_DATABASE_URL, url).status() {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
        Err(e) => {
            eprintln!("with-test-db: cannot run {program}: {e}");
            ExitCode::from(1)
        }
    }
}
