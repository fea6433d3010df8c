//! A local PostgreSQL cluster that Tessera manages itself when no `DATABASE_URL` is given.
//!
//! The cluster listens only on a unix socket in a private directory (no TCP port, so no
//! clash with other servers and no exposure to other local users), is created with
//! `initdb` on first use, recovers from a crash (stale `postmaster.pid`), and is stopped by
//! whoever started it. PostgreSQL refuses to run as root, so when we are root the server
//! runs as the unprivileged `postgres` OS user in directories that user owns.

mod binaries;
mod error;
mod owner;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

pub use binaries::find_bin_dir;
pub use error::ClusterError;
use owner::RunAs;

/// Name of the superuser role `initdb` creates; also the default database name.
pub const SUPERUSER: &str = "tessera";
/// Port number that names the socket file; TCP is disabled, so it never clashes.
const SOCKET_PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

/// A PostgreSQL cluster under one directory, started and stopped by this process.
#[derive(Debug)]
pub struct LocalCluster {
    root: PathBuf,
    bin_dir: PathBuf,
    run_as: RunAs,
    started_by_us: bool,
    durable: bool,
}

impl LocalCluster {
    /// Prepares (but does not start) a cluster rooted at `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, ClusterError> {
        let bin_dir = find_bin_dir()?;
        fs::create_dir_all(dir).map_err(|e| ClusterError::io("create the data directory", dir, e))?;
        let root = fs::canonicalize(dir).map_err(|e| ClusterError::io("resolve", dir, e))?;
        let run_as = RunAs::detect()?;
        let cluster = Self { root, bin_dir, run_as, started_by_us: false, durable: true };
        if cluster.socket_path().as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ClusterError::PathTooLong(cluster.root.clone()));
        }
        Ok(cluster)
    }

    /// A cluster whose data may be lost in a crash (no fsync): for test runs, whose databases
    /// are thrown away anyway and which otherwise wait on the disk for every `CREATE DATABASE`
    /// and for the shutdown checkpoint. Applies when the cluster is created.
    pub fn throwaway(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Directory holding the cluster's files (`PGDATA`).
    pub fn pgdata(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    /// Directory holding the server's unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn socket_path(&self) -> PathBuf {
        self.socket_dir().join(format!(".s.PGSQL.{SOCKET_PORT}"))
    }

    /// A connection URL for `database` over the cluster's unix socket.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@localhost:{SOCKET_PORT}/{database}?host={}", self.socket_dir().display())
    }

    /// Whether this handle started the server (and so must stop it).
    pub fn started_by_us(&self) -> bool {
        self.started_by_us
    }

    /// Creates the cluster if needed, recovers from a crash, starts it, and makes sure
    /// `database` exists. A server already running on this directory is adopted as is.
    pub fn start(&mut self, database: &str) -> Result<(), ClusterError> {
        self.prepare_dirs()?;
        let fresh = !self.pgdata().join("PG_VERSION").exists();
        if fresh {
            self.initdb()?;
        }
        if self.is_running() {
            tracing::info!(dir = %self.root.display(), "adopting the local PostgreSQL that is already running");
        } else {
            self.clear_stale_lock()?;
            self.pg_ctl_start()?;
            self.started_by_us = true;
        }
        self.create_database(database)
    }

    /// Stops the server if this handle started it (fast shutdown: sessions are ended).
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if !self.started_by_us {
            return Ok(());
        }
        let pgdata = self.pgdata();
        let out = self.run(
            &self.bin("pg_ctl"),
            &["stop".as_ref(), "-D".as_ref(), pgdata.as_os_str(), "-m".as_ref(), "fast".as_ref(), "-w".as_ref()],
        )?;
        self.started_by_us = false;
        check("pg_ctl stop", out)
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn prepare_dirs(&self) -> Result<(), ClusterError> {
        for dir in [self.root.clone(), self.pgdata(), self.socket_dir()] {
            fs::create_dir_all(&dir).map_err(|e| ClusterError::io("create", &dir, e))?;
            self.run_as.take_ownership(&dir)?;
        }
        self.run_as.check_reachable(&self.pgdata())
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        tracing::info!(dir = %self.pgdata().display(), "creating a local PostgreSQL cluster");
        let pgdata = self.pgdata();
        let out = self.run(
            &self.bin("initdb"),
            &[
                "-D".as_ref(),
                pgdata.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        check("initdb", out)?;
        // Socket only, in a directory only the server's user (and root) can enter.
        let durability = if self.durable {
            "fsync = on\n"
        } else {
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        };
        let conf = format!(
            "\n# managed by tessera\nlisten_addresses = ''\nunix_socket_directories = '{}'\nunix_socket_permissions = 0700\nport = {SOCKET_PORT}\nmax_connections = 200\n{durability}",
            self.socket_dir().display()
        );
        let path = pgdata.join("postgresql.auto.conf");
        let mut existing = fs::read_to_string(&path).unwrap_or_default();
        existing.push_str(&conf);
        fs::write(&path, existing).map_err(|e| ClusterError::io("write", &path, e))?;
        self.run_as.take_ownership(&path)
    }

    fn is_running(&self) -> bool {
        let pgdata = self.pgdata();
        self.run(&self.bin("pg_ctl"), &["status".as_ref(), "-D".as_ref(), pgdata.as_os_str()])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// After a crash `postmaster.pid` may name a process id now used by something else,
    /// which makes PostgreSQL refuse to start; `pg_ctl status` already said no server runs.
    fn clear_stale_lock(&self) -> Result<(), ClusterError> {
        let pid_file = self.pgdata().join("postmaster.pid");
        if pid_file.exists() {
            tracing::warn!(file = %pid_file.display(), "removing stale postmaster.pid left by a crash");
            fs::remove_file(&pid_file).map_err(|e| ClusterError::io("remove", &pid_file, e))?;
        }
        for stale in [self.socket_path(), self.socket_path().with_extension(format!("{SOCKET_PORT}.lock"))] {
            if stale.exists() {
                fs::remove_file(&stale).map_err(|e| ClusterError::io("remove", &stale, e))?;
            }
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), ClusterError> {
        let pgdata = self.pgdata();
        let log = self.root.join("postgres.log");
        if !log.exists() {
            fs::write(&log, b"").map_err(|e| ClusterError::io("create", &log, e))?;
        }
        self.run_as.take_ownership(&log)?;
        let out = self.run(
            &self.bin("pg_ctl"),
            &[
                "start".as_ref(),
                "-D".as_ref(),
                pgdata.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
            ],
        )?;
        check("pg_ctl start", out).map_err(|e| e.with_log_hint(&log))
    }

    fn create_database(&self, database: &str) -> Result<(), ClusterError> {
        let socket = self.socket_dir();
        let out = self.run(
            &self.bin("createdb"),
            &[
                "-h".as_ref(),
                socket.as_os_str(),
                "-p".as_ref(),
                SOCKET_PORT.to_string().as_ref(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                database.as_ref(),
            ],
        )?;
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already exists") {
            return Ok(());
        }
        check("createdb", out)
    }

    fn run(&self, program: &Path, args: &[&std::ffi::OsStr]) -> Result<Output, ClusterError> {
        let mut cmd = self.run_as.command(program);
        cmd.args(args).current_dir("/").env("LC_ALL", "C").env_remove("PGDATA");
        cmd.output().map_err(|e| ClusterError::io("run", program, e))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "could not stop the local PostgreSQL");
        }
    }
}

fn check(what: &'static str, out: Output) -> Result<(), ClusterError> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let detail = stderr.lines().chain(stdout.lines()).rfind(|l| !l.trim().is_empty()).unwrap_or("no output");
    Err(ClusterError::Command { what, detail: detail.trim().to_owned() })
}
