//! Redis for the shared-quota tests: the one LIBRARY_TEST_REDIS_URL names (CI starts it), and
//! redis-servers of a test's own, which it can stop and start again to play an outage.
use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const REDIS_ENV: &str = "LIBRARY_TEST_REDIS_URL";

/// `None`, after saying so, when LIBRARY_TEST_REDIS_URL is not set. When it is set, an
/// unreachable Redis fails the test: CI must never skip these silently.
pub fn url() -> Option<String> {
    let Ok(url) = std::env::var(REDIS_ENV) else {
        eprintln!("skipped: {REDIS_ENV} not set (shared rate limits through Redis)");
        return None;
    };
    let address = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    if TcpStream::connect_timeout(
        &address
            .parse()
            .unwrap_or_else(|e| panic!("{REDIS_ENV}={url}: {e}")),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!("{REDIS_ENV}={url} is unreachable");
    }
    Some(url)
}

/// A key prefix no other test uses.
pub fn prefix() -> String {
    format!("library-test:{}", uuid::Uuid::new_v4().simple())
}

/// A redis-server of the test's own on `port`, without persistence; stopped when dropped.
pub struct OwnRedis {
    pub port: u16,
    child: Child,
}

impl OwnRedis {
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (an outage, not a clean shutdown) and waits until the port is closed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
