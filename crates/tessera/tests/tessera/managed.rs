//! `tessera serve` with no DATABASE_URL: it creates, starts and stops its own PostgreSQL.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn tessera(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.env("TESSERA_DATA_DIR", data_dir).env("TESSERA_BIND", "127.0.0.1:0").env("TESSERA_LOG_FORMAT", "json");
    cmd
}

fn data_dir() -> tempfile::TempDir {
    // Under /tmp: the unprivileged postgres user must be able to reach it.
    tempfile::Builder::new().prefix("tessera-managed-").tempdir_in("/tmp").unwrap()
}

/// Starts `tessera serve` and waits for its "listening" log line; returns the child and port.
fn serve(dir: &Path) -> (Child, u16) {
    let mut child = tessera(dir).arg("serve").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["fields"]["message"] == "tessera listening" {
                    let _ = tx.send(v["fields"]["port"].as_u64().unwrap() as u16);
                }
            } else {
                eprintln!("serve: {line}");
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(90)).expect("tessera serve did not start");
    (child, port)
}

fn get(port: u16, path: &str) -> u16 {
    let url = format!("http://127.0.0.1:{port}{path}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(&url).await.unwrap().status().as_u16() })
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "tessera did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn postgres_running_in(dir: &Path) -> bool {
    let pgdata = dir.join("pgdata");
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains("postgres") && cmdline.contains(pgdata.to_str().unwrap())
    })
}

#[test]
fn serve_without_database_url_runs_and_stops_its_own_postgres() {
    let dir = data_dir();
    let (child, port) = serve(dir.path());
    assert_eq!(get(port, "/health"), 200);
    assert_eq!(get(port, "/ready"), 200);
    assert!(postgres_running_in(dir.path()));
    let status = stop(child);
    assert!(status.success(), "{status:?}");
    assert!(!postgres_running_in(dir.path()), "postgres left running after shutdown");
    assert!(!dir.path().join("pgdata/postmaster.pid").exists());
}

#[test]
fn serve_recovers_after_a_crash_left_a_stale_pid_file() {
    let dir = data_dir();
    let (child, _) = serve(dir.path());
    // Simulate a crash of everything: kill tessera and the postmaster without warning.
    let pid_file = dir.path().join("pgdata/postmaster.pid");
    let postmaster: i32 = std::fs::read_to_string(&pid_file).unwrap().lines().next().unwrap().parse().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while postgres_running_in(dir.path()) {
        assert!(Instant::now() < deadline, "postgres children did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pid file now names a process id that may belong to anything: use our own.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let (child, port) = serve(dir.path());
    assert_eq!(get(port, "/ready"), 200);
    assert!(stop(child).success());
    assert!(!postgres_running_in(dir.path()));
}

#[test]
fn data_dir_owned_by_someone_else_is_refused() {
    let dir = data_dir();
    let foreign = dir.path().join("theirs");
    std::fs::create_dir(&foreign).unwrap();
    let me = std::fs::metadata(dir.path()).unwrap().uid();
    // Someone who is neither us nor the postgres user.
    nix::unistd::chown(&foreign, Some(nix::unistd::Uid::from_raw(me + 4242)), None).unwrap();
    let out = tessera(&foreign).args(["user", "list"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap();
    assert!(last.starts_with("error: ") && last.contains("owned by uid"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
