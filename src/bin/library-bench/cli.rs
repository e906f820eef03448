//! Command line. Every count has a default sized for a 2-core machine; every loop is bounded by
//! its count and by `--phase-budget-seconds`, so a stalled server cannot hang the bench.
use std::{str::FromStr, time::Duration};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

#[derive(Parser, Clone)]
#[command(
    name = "library-bench",
    about = "Benchmarks a running Library Service against direct database baselines"
)]
pub struct Args {
    /// The running server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// The database the server uses (postgres:// or sqlite://), for the baselines.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// The server's HS256 secret: the bench mints its own tokens.
    #[arg(
        long,
        env = "LIBRARY_JWT_SECRET",
        hide_env_values = true,
        required_unless_present = "jwt_private_key"
    )]
    pub jwt_secret: Option<String>,
    /// Sign the bench's tokens with this private key (PEM: Ed25519, P-256 or RSA) instead of
    /// the secret, for servers verifying with its public key (a file, or a JWKS URL).
    #[arg(long, requires = "jwt_kid")]
    pub jwt_private_key: Option<std::path::PathBuf>,
    /// `kid` to put in the header of tokens signed with --jwt-private-key.
    #[arg(long)]
    pub jwt_kid: Option<String>,
    /// `iss` claim to put in tokens, when the server requires one.
    #[arg(long, env = "LIBRARY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// `aud` claim to put in tokens, when the server requires one.
    #[arg(long, env = "LIBRARY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The server's process id, to sample its RSS during `stream` and `ratelimit`.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "record,record-batch,stream,stats,check-liked"
    )]
    pub scenario: Vec<Scenario>,
    /// HTTP/2 connections to the server; concurrent calls are spread over them.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Calls in flight at once in `record` (service and baseline alike).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Connections of the bench's own PostgreSQL pool for the baselines.
    #[arg(long, default_value_t = 64)]
    pub baseline_pool: u32,
    /// RecordPlay calls in `record`.
    #[arg(long, default_value_t = 20_000)]
    pub record_calls: usize,
    /// RecordPlays calls in `record-batch`.
    #[arg(long, default_value_t = 50)]
    pub batches: usize,
    /// Plays per RecordPlays call (the service accepts at most 1000).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Give every play of `record-batch` a request_id (idempotent sync), on both sides.
    #[arg(long)]
    pub batch_request_ids: bool,
    /// `overload`: how long calls are sent at twice the measured capacity, in seconds.
    #[arg(long, default_value_t = 10)]
    pub overload_seconds: u64,
    /// Plays of the one ImportHistory stream in `import`.
    #[arg(long, default_value_t = 1_000_000)]
    pub import_plays: usize,
    /// Plays seeded for the `stream`, `stats` and `export` user.
    #[arg(long, default_value_t = 1_000_000)]
    pub stream_plays: usize,
    /// Reuse this already seeded user for `stream`, `stats` and `export` instead of seeding a
    /// new one.
    #[arg(long)]
    pub stream_user: Option<Uuid>,
    /// RecordPlays calls in flight at once while seeding.
    #[arg(long, default_value_t = 2)]
    pub seed_concurrency: usize,
    /// Full reads of the history in `stream` and `export`, for the service and the baseline each.
    #[arg(long, default_value_t = 3)]
    pub stream_runs: usize,
    /// Plays read per call when comparing a resumed listing with one from the top.
    #[arg(long, default_value_t = 10_000)]
    pub resume_plays: u32,
    /// Calls of each kind when comparing a resumed listing with one from the top.
    #[arg(long, default_value_t = 20)]
    pub resume_runs: usize,
    /// GetLibraryStats calls per variant in `stats`.
    #[arg(long, default_value_t = 200)]
    pub stats_calls: usize,
    /// Direct recounts per variant in `stats` (each scans the user's plays, so keep it small).
    #[arg(long, default_value_t = 10)]
    pub stats_baseline_calls: usize,
    /// Only these `stats` variants (e.g. `stats-365d,top-week`); all when unset.
    #[arg(long, value_delimiter = ',')]
    pub stats_variants: Vec<String>,
    /// Liked tracks seeded for `check-liked`.
    #[arg(long, default_value_t = 10_000)]
    pub likes: usize,
    /// CheckLikedTracks calls in `check-liked`.
    #[arg(long, default_value_t = 2000)]
    pub check_calls: usize,
    /// Track ids per CheckLikedTracks call, half of them liked.
    #[arg(long, default_value_t = 100)]
    pub check_ids: usize,
    /// `ratelimit`: the server's read quota per caller per minute (its default is 600).
    #[arg(long, default_value_t = 600)]
    pub rate_quota_per_minute: u32,
    /// `ratelimit`: callers, each calling at four times the quota.
    #[arg(long, default_value_t = 50)]
    pub rate_callers: usize,
    /// `ratelimit`: how long the load runs, in seconds.
    #[arg(long, default_value_t = 30)]
    pub rate_seconds: u64,
    /// Longest any one timed phase may run; a phase stops early (and says so) when it is reached.
    #[arg(long, default_value_t = 600)]
    pub phase_budget_seconds: u64,
    /// A second replica on the same database: `watch` records through it and watches on
    /// `--addr`; `ratelimit` alternates each caller's calls between the two; `check-liked`
    /// alternates its calls between them and compares their latencies (e.g. keys from a file
    /// on `--addr`, from a JWKS URL on `--addr-b`). Without it, both are `--addr`.
    #[arg(long)]
    pub addr_b: Option<String>,
    /// CA certificate (PEM) that the servers' certificates chain to: addresses given as
    /// `https://` are reached over TLS trusting it.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Name the TLS servers' certificates are issued for.
    #[arg(long, default_value = "localhost")]
    pub tls_server_name: String,
    /// `tls`: CheckLikedTracks calls per phase (each side runs two phases, alternated).
    #[arg(long, default_value_t = 20_000)]
    pub tls_calls: usize,
    #[arg(long, default_value_t = 2000)]
    pub watch_plays: usize,
    #[arg(long, default_value_t = 1000)]
    pub idle_watchers: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Record,
    RecordBatch,
    Import,
    Overload,
    Stream,
    Stats,
    Export,
    CheckLiked,
    Ratelimit,
    Watch,
    Tls,
}

impl Args {
    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.phase_budget_seconds)
    }

    /// The bench generates heavy load: it only ever aims at this machine.
    pub fn check(&self) -> anyhow::Result<()> {
        for addr in std::iter::once(&self.addr).chain(&self.addr_b) {
            let uri = http::Uri::from_str(addr).with_context(|| format!("address {addr}"))?;
            if !is_loopback(uri.host().unwrap_or_default()) {
                bail!(
                    "--addr and --addr-b must be loopback addresses (127.0.0.1, ::1 or localhost)"
                );
            }
        }
        if self.database_url.starts_with("postgres") {
            let options =
                PgConnectOptions::from_str(&self.database_url).context("parsing --database-url")?;
            let host = options.get_host();
            if !host.starts_with('/') && !is_loopback(host) {
                bail!("--database-url must point at a loopback PostgreSQL or a local socket");
            }
        }
        if !(1..=1000).contains(&self.batch_size) {
            bail!("--batch-size must be between 1 and 1000 (the service's limit)");
        }
        if self.check_ids < 2 || self.check_ids > 500 {
            bail!("--check-ids must be between 2 and 500 (the service's limit)");
        }
        for addr in std::iter::once(&self.addr).chain(&self.addr_b) {
            if addr.starts_with("https://") && self.tls_ca.is_none() {
                bail!("{addr} is https: give --tls-ca, the CA its certificate chains to");
            }
        }
        if self.concurrency == 0 || self.connections == 0 || self.seed_concurrency == 0 {
            bail!("--concurrency, --connections and --seed-concurrency must be at least 1");
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
