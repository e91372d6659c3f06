//! A throwaway PostgreSQL cluster from Debian's package: `initdb` and `pg_ctl` in a
//! temporary folder, on a free loopback port, stopped and removed when dropped.
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres`
//! user the package creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::free_port;

pub struct PostgresServer {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
}

fn options(port: u16, dir: &Path) -> String {
    format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.display()
    )
}

fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|_| panic!("no {} (run scripts/install-deps)", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an installed PostgreSQL with initdb")
}

fn is_root() -> bool {
    // The real uid of this process, from procfs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A PostgreSQL program, to run as `postgres` when this process is root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(program: &Path, args: &[&str]) {
    let output = command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PostgresServer {
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("canaryd-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster folder failed");
        }
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        run(
            &bin.join("initdb"),
            &[
                "-D",
                data,
                "-U",
                "canaryd",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let server = Self {
            port: free_port(),
            dir,
            bin,
        };
        server.start_again();
        server
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts it (again) on the same port and data.
    pub fn start_again(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options(self.port, self.dir.path()),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// A new, empty database on this cluster.
    pub fn database(&self, name: &str) -> String {
        run(
            &self.bin.join("createdb"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "canaryd",
                name,
            ],
        );
        format!("postgres://canaryd@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs each statement through `psql`, one at a time, outside any transaction.
    pub fn sql(&self, statements: &[&str]) {
        let port = self.port.to_string();
        let mut args = vec![
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "canaryd",
            "-d",
            "postgres",
        ];
        args.push("-v");
        args.push("ON_ERROR_STOP=1");
        for statement in statements {
            args.push("-c");
            args.push(statement);
        }
        run(&self.bin.join("psql"), &args);
    }

    /// Makes every transaction read-only from now on, in every session, as a database
    /// on a full disk or demoted to a standby refuses writes; `false` undoes it.
    pub fn set_read_only(&self, read_only: bool) {
        let setting = if read_only {
            "ALTER SYSTEM SET default_transaction_read_only = on"
        } else {
            "ALTER SYSTEM RESET default_transaction_read_only"
        };
        self.sql(&[setting, "SELECT pg_reload_conf()"]);
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = command(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
