//! Starts one throw-away PostgreSQL for a whole test run, runs the given command with
//! `TEST_DATABASE_URL` pointing at it, then stops the server and deletes its files. While
//! the command runs, each test's database is dropped once the test's process has ended.
//!
//! Usage: `with-test-db <command> [args...]` (exit status is the command's).

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tessera_pgcluster::LocalCluster;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: with-test-db <command> [args...]");
        return ExitCode::from(2);
    };
    if let Ok(url) = std::env::var(tessera_testkit::TEST_DATABASE_URL) {
        eprintln!("with-test-db: using TEST_DATABASE_URL from the environment");
        return run(program, rest, &url, false);
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
    let code = run(program, rest, &cluster.url("postgres"), true);
    if let Err(e) = cluster.stop() {
        eprintln!("with-test-db: {e}");
    }
    code
}

fn run(program: &str, args: &[String], url: &str, reap: bool) -> ExitCode {
    let done = Arc::new(AtomicBool::new(false));
    let reaper = reap.then(|| spawn_reaper(url.to_owned(), Arc::clone(&done)));
    let status = Command::new(program).args(args).env(tessera_testkit::TEST_DATABASE_URL, url).status();
    done.store(true, Ordering::Relaxed);
    if let Some(reaper) = reaper {
        let _ = reaper.join();
    }
    match status {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
        Err(e) => {
            eprintln!("with-test-db: cannot run {program}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Every second, drops the databases of tests that have ended (the server is ours and on
/// this machine, so their process ids can be checked); stops when `done` is set.
fn spawn_reaper(url: String, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            if let Err(e) = runtime.block_on(tessera_testkit::drop_finished_databases(&url)) {
                eprintln!("with-test-db: could not drop finished test databases: {e}");
            }
        }
    })
}
