//! The service binary as operators run it: a child process on a free port.
use std::{
    io::Read,
    net::TcpListener,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use tonic::transport::Channel;

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_library-service"))
}

/// Runs a command to completion and asserts it succeeded.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("binary runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `serve`, with its stderr (the logs) captured. A thread keeps reading them, so a
/// chatty server never blocks on a full pipe.
pub struct Served {
    pub child: Child,
    pub port: u16,
    logs: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Served {
    /// Starts `serve` on a free port with the extra arguments, and waits until it accepts calls.
    pub async fn start(mut cmd: Command, extra: &[&str]) -> (Self, Channel) {
        let port = free_port();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra);
        Self::start_on(cmd, port).await
    }

    /// Starts `cmd` as it is (told by its own arguments or environment to listen on `port`), and
    /// waits until it accepts calls there.
    pub async fn start_on(mut cmd: Command, port: u16) -> (Self, Channel) {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let reader = child.stderr.take().map(|mut pipe| {
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut logs) = logs.lock() {
                        logs.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    }
                }
            })
        });
        let mut served = Self {
            child,
            port,
            logs,
            reader,
        };
        // Generous: CI builds and runs many test binaries on two shared cores.
        for _ in 0..300 {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("the server exited early ({status}): {}", served.logs());
            }
            if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .expect("uri")
                .connect()
                .await
            {
                return (served, channel);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = served.child.kill();
        panic!(
            "the server accepted no connection within 30 s: {}",
            served.logs()
        );
    }

    pub fn sigterm(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to exit; its exit status and everything it logged.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("server exits");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.logs())
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
