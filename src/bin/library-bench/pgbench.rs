//! The `record` baseline driven by pgbench, PostgreSQL's own C load generator: single-row
//! inserts into the bare plays table from 64 connections, each its own transaction. Its
//! per-transaction log gives the latencies.
use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, bail, ensure};

use crate::stats::Sample;

/// One play of one of `users` listeners (numbered UUIDs), as the service's bare baseline writes.
const SCRIPT: &str = "\\set u random(1, 1024)
\\set s random(0, 300)
INSERT INTO bench_bare_plays VALUES
    (('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid, now(), gen_random_uuid(),
     gen_random_uuid(), :s, :s > 150, 'album', :s > 150);
";

/// Whether pgbench can be run here (Debian's postgresql-client ships it).
pub fn available() -> bool {
    Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `transactions` single-play inserts over `clients` connections, after the bare table exists.
pub fn bare_inserts(url: &str, clients: usize, transactions: usize) -> anyhow::Result<Sample> {
    let dir = std::env::temp_dir().join(format!("library-bench-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating pgbench's directory")?;
    let result = run(url, clients, transactions, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(url: &str, clients: usize, transactions: usize, dir: &Path) -> anyhow::Result<Sample> {
    let script = dir.join("bare.sql");
    std::fs::write(&script, SCRIPT).context("writing pgbench's script")?;
    let clients = clients.max(1);
    let per_client = transactions.div_ceil(clients).max(1);
    let output = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2", "-l"])
        .arg(format!("--log-prefix={}", dir.join("log").display()))
        .arg(format!("-c{clients}"))
        .arg(format!("-t{per_client}"))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("pgbench printed no tps")?;
    // Each log line: client, transaction, latency in µs, script, epoch seconds, µs.
    let mut latencies = Vec::with_capacity(clients * per_client);
    for entry in std::fs::read_dir(dir).context("reading pgbench's logs")? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            continue;
        }
        let log = std::fs::read_to_string(&path).context("reading a pgbench log")?;
        for line in log.lines() {
            let micros: u64 = line
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("a pgbench log line: {line}"))?;
            latencies.push(Duration::from_micros(micros));
        }
    }
    let n = latencies.len();
    ensure!(n == clients * per_client, "pgbench logged {n} transactions");
    // pgbench's own rate excludes connecting, as the other phases do.
    let elapsed = Duration::from_secs_f64(n as f64 / tps);
    Ok(Sample::new(latencies, elapsed, n as u64))
}
