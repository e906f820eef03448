//! Command line and environment. Every flag can also be set from the environment variable named
//! in its help. Secrets are never printed: `Debug` of `Cli` redacts them.
use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    auth::AuthConfig,
    grpc::{LimitSettings, limits},
};

#[derive(Parser)]
#[command(
    name = "library-service",
    version,
    about = "audiOhm Library Service: listening history, likes and stats over gRPC"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations, or roll the last one back.
    Migrate {
        /// Roll back the most recently applied migration instead.
        #[arg(long)]
        undo: bool,
    },
    /// Delete every listener's plays older than a cutoff (retention, for cron-style use), and
    /// print how many went.
    Purge(PurgeArgs),
    /// Mint a token signed with the HS256 secret (the development secret when none is configured).
    Token(TokenArgs),
}

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Database: `postgres://user@host/db` or `sqlite://path`. Default: `sqlite://<data-dir>/library.db`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Most database connections held open.
    #[arg(
        long,
        env = "LIBRARY_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,
    /// Directory for the embedded database and the development signing secret.
    #[arg(long, env = "LIBRARY_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// HS256 shared secret for verifying (and minting) tokens.
    #[arg(
        long,
        env = "LIBRARY_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Key id (`kid`) of the HS256 secret, when tokens name it.
    #[arg(long, env = "LIBRARY_JWT_SECRET_KID", global = true)]
    pub jwt_secret_kid: Option<String>,
    /// Public verification key: `[KID=]PATH` to a PEM (Ed25519, P-256 or RSA) or a JWKS file.
    /// Repeat, or separate with commas, for several keys (rotation).
    #[arg(
        long = "jwt-public-key",
        env = "LIBRARY_JWT_PUBLIC_KEYS",
        value_delimiter = ',',
        global = true
    )]
    pub jwt_public_keys: Vec<String>,
    /// Required `iss` claim, if set.
    #[arg(long, env = "LIBRARY_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set.
    #[arg(long, env = "LIBRARY_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 60).
    #[arg(long, env = "LIBRARY_JWT_LEEWAY_SECONDS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub jwt_leeway_seconds: u64,
    /// Log format.
    #[arg(long, env = "LIBRARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIBRARY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Browser origins allowed to call over gRPC-web (CORS), e.g. `http://localhost:5173`; `*`
    /// allows any. Repeat or separate with commas. Default: none (same-origin only).
    #[arg(
        long = "cors-allow-origin",
        env = "LIBRARY_CORS_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,
    /// Serve the gRPC reflection services (v1 and v1alpha).
    #[arg(long, env = "LIBRARY_REFLECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub reflection: bool,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), e.g. `0.0.0.0:9090`.
    /// Default: no endpoint.
    #[arg(long, env = "LIBRARY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Keep plays this many days; older ones are deleted by a background task. Default: forever.
    #[arg(long, env = "LIBRARY_HISTORY_RETENTION_DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36_600))]
    pub history_retention_days: Option<u32>,
    /// Seconds between two retention runs.
    #[arg(long, env = "LIBRARY_RETENTION_INTERVAL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_interval_seconds: u64,
    /// Seconds between two database probes of the health service.
    #[arg(long, env = "LIBRARY_HEALTH_PROBE_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub health_probe_seconds: u64,
    /// On SIGTERM, seconds that open streams get to finish before they end with UNAVAILABLE.
    /// Unary calls in flight always finish.
    #[arg(long, env = "LIBRARY_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
    /// A folder of static files (the built web page, `web/dist`) served to browsers on the same
    /// port for GET requests, so the page and its gRPC-web calls share one origin.
    /// Default: none.
    #[arg(long, env = "LIBRARY_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

const DEFAULT_MAX_IN_FLIGHT: usize = 512;
const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Protection against overload and abuse.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct LimitArgs {
    /// Reads (likes, stats, checks) per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_READS_PER_MINUTE", default_value_t = limits::DEFAULT_READS_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_reads_per_minute: u32,
    /// Writes (plays, deletes, likes) per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_WRITES_PER_MINUTE", default_value_t = limits::DEFAULT_WRITES_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_writes_per_minute: u32,
    /// Streams (ListHistory, ImportHistory) started per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_STREAMS_PER_MINUTE", default_value_t = limits::DEFAULT_STREAMS_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_streams_per_minute: u32,
    /// Admin calls per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_ADMIN_PER_MINUTE", default_value_t = limits::DEFAULT_ADMIN_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_admin_per_minute: u32,
    /// Service callers (scope library:any_user) get this many times each quota.
    #[arg(long, env = "LIBRARY_RATE_SERVICE_MULTIPLIER", default_value_t = limits::DEFAULT_SERVICE_MULTIPLIER,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_service_multiplier: u32,
    /// Streams one caller may have open at once.
    #[arg(long, env = "LIBRARY_MAX_STREAMS_PER_CALLER", default_value_t = limits::DEFAULT_MAX_STREAMS_PER_CALLER)]
    pub max_streams_per_caller: usize,
    /// Streams open at once on this server.
    #[arg(long, env = "LIBRARY_MAX_STREAMS", default_value_t = limits::DEFAULT_MAX_STREAMS)]
    pub max_streams: usize,
    /// Calls in flight at once before new ones are refused with UNAVAILABLE.
    #[arg(long, env = "LIBRARY_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "LIBRARY_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
}

impl Default for LimitArgs {
    fn default() -> Self {
        Self {
            rate_reads_per_minute: limits::DEFAULT_READS_PER_MINUTE,
            rate_writes_per_minute: limits::DEFAULT_WRITES_PER_MINUTE,
            rate_streams_per_minute: limits::DEFAULT_STREAMS_PER_MINUTE,
            rate_admin_per_minute: limits::DEFAULT_ADMIN_PER_MINUTE,
            rate_service_multiplier: limits::DEFAULT_SERVICE_MULTIPLIER,
            max_streams_per_caller: limits::DEFAULT_MAX_STREAMS_PER_CALLER,
            max_streams: limits::DEFAULT_MAX_STREAMS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl LimitArgs {
    pub fn settings(&self) -> LimitSettings {
        LimitSettings {
            reads_per_minute: self.rate_reads_per_minute,
            writes_per_minute: self.rate_writes_per_minute,
            streams_per_minute: self.rate_streams_per_minute,
            admin_per_minute: self.rate_admin_per_minute,
            service_multiplier: self.rate_service_multiplier,
            max_streams_per_caller: self.max_streams_per_caller,
            max_streams: self.max_streams,
        }
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            cors_allow_origins: Vec::new(),
            reflection: true,
            metrics_listen: None,
            history_retention_days: None,
            retention_interval_seconds: 3600,
            health_probe_seconds: 5,
            shutdown_grace: 10,
            web_root: None,
            limits: LimitArgs::default(),
        }
    }
}

#[derive(Args, Clone)]
pub struct PurgeArgs {
    /// Delete plays played before this instant (RFC 3339, e.g. `2025-01-01T00:00:00Z`).
    #[arg(
        long,
        conflicts_with = "older_than_days",
        required_unless_present = "older_than_days"
    )]
    pub before: Option<String>,
    /// Delete plays played more than this many days ago.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_600))]
    pub older_than_days: Option<u32>,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Clone)]
pub struct TokenArgs {
    /// Subject (`sub`): a listener's UUID. Default: a new random UUID.
    #[arg(long)]
    pub sub: Option<String>,
    /// Scopes to grant (repeatable): library:read, library:write, library:any_user, library:admin.
    /// None: a listener session token (own library, read and write).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl CommonArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("library.db").display()))
    }

    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            hs256_secret: self.jwt_secret.clone(),
            hs256_kid: self.jwt_secret_kid.clone(),
            public_keys: self.jwt_public_keys.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_seconds: self.jwt_leeway_seconds,
            data_dir: self.data_dir.clone(),
        }
    }
}
