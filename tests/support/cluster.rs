//! A PostgreSQL cluster of the test's own, on a free port, which the test may stop and start
//! again: health and fault tests must never disturb the shared server the other tests use. It
//! runs when LIBRARY_TEST_POSTGRES_URL is set (CI always sets it), from the server binaries
//! installed beside that server.
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

use super::db::POSTGRES_ENV;

pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

fn server_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("{POSTGRES_ENV} is set but no PostgreSQL server binaries (initdb) are installed")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn check(cmd: &mut Command) {
    let out = cmd.output().expect("a PostgreSQL tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// `None`, after saying so, when LIBRARY_TEST_POSTGRES_URL is not set.
    pub fn start() -> Option<Self> {
        if std::env::var(POSTGRES_ENV).is_err() {
            eprintln!("skipped: {POSTGRES_ENV} not set (test with its own PostgreSQL cluster)");
            return None;
        }
        let bin = server_bin();
        let dir = tempfile::tempdir().expect("a temporary directory");
        if is_root() {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
            );
        }
        check(
            as_owner(&bin.join("initdb"))
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(dir.path().join("data")),
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self { dir, bin, port };
        cluster.start_again();
        Some(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = as_owner(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.dir.path().join("data"));
        cmd
    }

    /// Stops the server the way a failover or a restart does: fast, connections cut.
    pub fn stop(&self) {
        check(self.pg_ctl().args(["-m", "fast", "-w", "stop"]));
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        check(
            self.pg_ctl()
                .args(["-w", "-t", "60", "-l"])
                .arg(self.dir.path().join("server.log"))
                .args(["-o", &options, "start"]),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl().args(["-m", "immediate", "stop"]).output();
    }
}
