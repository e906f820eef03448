//! Command line and environment. Every flag can also be set from the environment variable named
//! in its help, and every default is written once, in its `#[arg]`. Secrets are held in
//! [`Secret`], which cannot be printed.
use std::{net::SocketAddr, path::PathBuf};

use clap::{
    Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, error::ErrorKind,
    parser::ValueSource,
};

use crate::{
    auth::{AuthConfig, JwksConfig, JwksSource, Secret},
    domain::CountingRule,
    grpc::LimitSettings,
};

/// `library-service [SERVE FLAGS]` is `library-service serve [SERVE FLAGS]`: the bare command
/// parses the same flags and environment as `serve`, and a serve flag given before another
/// subcommand (`--listen X migrate`) is refused rather than silently ignored.
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
    command: Option<Command>,
    /// `serve`'s flags, for the bare command.
    #[command(flatten)]
    serve: ServeArgs,
}

impl Cli {
    /// Parses the process's arguments and environment (exiting with clap's message on an
    /// error) into the common flags and the subcommand to run: `serve`, with the bare command's
    /// flags, when none was named.
    pub fn parse_command() -> (CommonArgs, Command) {
        Self::try_parse_command_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_parse_command_from<I, T>(args: I) -> Result<(CommonArgs, Command), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = <Self as CommandFactory>::command();
        let matches = command.try_get_matches_from_mut(args)?;
        // clap's own `args_conflicts_with_subcommands` would also refuse the global flags
        // (`--log-format json serve`), so the serve flags are checked here, by where they came
        // from: the environment feeds both places alike and is never a conflict.
        if let Some(name) = matches.subcommand_name() {
            let serve_flags = ServeArgs::augment_args(clap::Command::new("serve"));
            if let Some(flag) = serve_flags.get_arguments().find(|a| {
                matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine)
            }) {
                return Err(command.error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--{} is a flag of `serve`; give it after `serve`, or run without `{name}`",
                        flag.get_long().unwrap_or(flag.get_id().as_str())
                    ),
                ));
            }
        }
        let cli = Self::from_arg_matches(&matches)?;
        let run = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
        Ok((cli.common, run))
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    // Boxed: the serve flags outweigh every other subcommand's many times over.
    Serve(Box<ServeArgs>),
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
    /// Write one listener's whole library (every play and like) to stdout as NDJSON, read from
    /// the database directly (a subject-access request; the format is docs/EXPORT.md).
    Export(ExportArgs),
    /// Read an export file back into the library its header names. The whole file is checked
    /// first and refused, with nothing written, unless complete; importing it again stores
    /// nothing twice.
    Import(ImportArgs),
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
    pub jwt_secret: Option<Secret>,
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
    #[command(flatten)]
    pub jwks: JwksArgs,
    /// Log format.
    #[arg(long, env = "LIBRARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Keys fetched from the identity provider (the production setup): beside any --jwt-secret and
/// --jwt-public-key, refreshed in the background.
#[derive(Args, Clone, Debug, Default)]
pub struct JwksArgs {
    /// JWKS URL of the identity provider (https), e.g.
    /// `https://auth.audiohm.example/.well-known/jwks.json`. Fetched at start-up (waiting while
    /// unreachable), refreshed on --jwt-jwks-refresh-seconds or the provider's
    /// `Cache-Control: max-age` (kept between 1 min and 24 h), and early (at most once per
    /// 30 s) when a token names an unknown key id.
    #[arg(
        long,
        env = "LIBRARY_JWT_JWKS_URL",
        global = true,
        conflicts_with = "jwt_oidc_issuer"
    )]
    pub jwt_jwks_url: Option<String>,
    /// OpenID Connect issuer whose discovery document
    /// (`<issuer>/.well-known/openid-configuration`) names the JWKS URL. Tokens must then
    /// carry this `iss`, unless --jwt-issuer says otherwise.
    #[arg(long, env = "LIBRARY_JWT_OIDC_ISSUER", global = true)]
    pub jwt_oidc_issuer: Option<String>,
    /// PEM file of the CA certificates that sign the JWKS server's certificate, trusted
    /// instead of the system's roots.
    #[arg(long, env = "LIBRARY_JWT_JWKS_CA", global = true)]
    pub jwt_jwks_ca: Option<PathBuf>,
    /// Accept a plain `http://` JWKS or issuer URL. Development only: keys fetched without TLS
    /// can be replaced by anyone on the path.
    #[arg(long, env = "LIBRARY_JWT_JWKS_ALLOW_HTTP", global = true)]
    pub jwt_jwks_allow_http: bool,
    /// Seconds between two fetches of the JWKS when the provider sends no
    /// `Cache-Control: max-age` (60 to 86400).
    #[arg(long, env = "LIBRARY_JWT_JWKS_REFRESH_SECONDS", default_value_t = 300, global = true,
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub jwt_jwks_refresh_seconds: u64,
}

impl JwksArgs {
    pub fn config(&self) -> Option<JwksConfig> {
        let source = match (&self.jwt_jwks_url, &self.jwt_oidc_issuer) {
            (Some(url), _) => JwksSource::Url(url.clone()),
            (None, Some(issuer)) => JwksSource::OidcIssuer(issuer.clone()),
            (None, None) => return None,
        };
        Some(JwksConfig {
            source,
            ca_file: self.jwt_jwks_ca.clone(),
            allow_http: self.jwt_jwks_allow_http,
            refresh: std::time::Duration::from_secs(self.jwt_jwks_refresh_seconds),
        })
    }
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
    /// Minutes that library events are kept, so that a WatchLibrary client can resume from its
    /// cursor after a disconnect (at least 10).
    #[arg(long, env = "LIBRARY_EVENT_RETENTION_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(10..=1440))]
    pub event_retention_minutes: u32,
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
    /// MiB of memory for period snapshots kept decoded between statistics calls (0: none).
    /// The database stays the source of truth: a read checks every snapshot it uses.
    #[arg(long, env = "LIBRARY_STATS_CACHE_MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub stats_cache_mib: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub counting: CountingArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub traces: TraceArgs,
}

/// TLS on the service port. Without `--tls-cert` the port speaks plaintext (behind a mesh or a
/// gateway that terminates TLS).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first). Re-read when it changes, so a
    /// renewed certificate needs no restart. Default: plaintext.
    #[arg(long, env = "LIBRARY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Re-read with it.
    #[arg(long, env = "LIBRARY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: callers must present a client certificate issued by a CA in this PEM file.
    /// Re-read when it changes. Default: no client certificate asked for.
    #[arg(long, env = "LIBRARY_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Seconds between two checks of the TLS files for changes.
    #[arg(long, env = "LIBRARY_TLS_RELOAD_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tls_reload_seconds: u64,
    /// A second port, always plaintext, serving only the gRPC health service, e.g.
    /// `0.0.0.0:50052`: for probes that cannot speak TLS or hold no client certificate (the
    /// kubelet's gRPC probe). Default: none.
    #[arg(long, env = "LIBRARY_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
}

impl Default for TlsArgs {
    fn default() -> Self {
        defaults()
    }
}

/// What counts as a play: decided when a play is written and stored with it, so changing these
/// never rewrites history.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct CountingArgs {
    /// A play that did not complete counts once it lasted this many seconds, whatever the
    /// track's duration.
    #[arg(long, env = "LIBRARY_COUNT_AFTER_SECONDS", default_value_t = 240)]
    pub count_after_seconds: u32,
    /// ...and never before this many seconds.
    #[arg(long, env = "LIBRARY_COUNT_MIN_SECONDS", default_value_t = 30)]
    pub count_min_seconds: u32,
    /// ...or once it lasted this percentage of the track's duration, when the player gives it.
    #[arg(long, env = "LIBRARY_COUNT_FRACTION_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count_fraction_percent: u32,
}

impl CountingArgs {
    pub fn rule(&self) -> Result<CountingRule, String> {
        CountingRule::new(
            self.count_after_seconds,
            self.count_min_seconds,
            self.count_fraction_percent,
        )
        .map_err(|why| format!("--count-min-seconds / --count-after-seconds: {why}"))
    }
}

impl Default for CountingArgs {
    fn default() -> Self {
        defaults()
    }
}

/// Distributed tracing: a span per call and per store query, exported over OTLP/gRPC. Only
/// `serve` exports; the other commands never do.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct TraceArgs {
    /// OpenTelemetry collector to export spans to over OTLP/gRPC, e.g. `http://otel-collector:4317`
    /// (plain http: an in-cluster collector). Default: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = otlp_endpoint)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "library-service")]
    pub otlp_service_name: String,
    /// Fraction of the traces this service starts (calls without a `traceparent`) that are
    /// exported, 0 to 1. A call with a `traceparent` follows its caller's sampled flag.
    #[arg(long, env = "LIBRARY_OTLP_SAMPLE_RATIO", default_value_t = 1.0, value_parser = ratio)]
    pub otlp_sample_ratio: f64,
}

impl Default for TraceArgs {
    fn default() -> Self {
        defaults()
    }
}

/// An `http://HOST:PORT` URL: the exporter is built without TLS.
fn otlp_endpoint(value: &str) -> Result<String, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected http://HOST:PORT"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(value.to_string()),
        (Some("https"), _) => Err(
            "https is not supported (the exporter is built without TLS): give the collector's \
             plain http:// endpoint inside the cluster"
                .into(),
        ),
        _ => Err("expected http://HOST:PORT".into()),
    }
}

fn ratio(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// Protection against overload and abuse.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct LimitArgs {
    /// Reads (likes, stats, checks) per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_READS_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_reads_per_minute: u32,
    /// Writes (plays, deletes, likes) per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_WRITES_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_writes_per_minute: u32,
    /// Streams (ListHistory, ImportHistory, ExportLibrary) started per minute per caller. (The
    /// old service's guide: 60 history listings a minute.)
    #[arg(long, env = "LIBRARY_RATE_STREAMS_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_streams_per_minute: u32,
    /// Admin calls per minute per caller.
    #[arg(long, env = "LIBRARY_RATE_ADMIN_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_admin_per_minute: u32,
    /// Service callers (scope library:any_user) get this many times each quota.
    #[arg(long, env = "LIBRARY_RATE_SERVICE_MULTIPLIER", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_service_multiplier: u32,
    /// Streams one caller may have open at once.
    #[arg(long, env = "LIBRARY_MAX_STREAMS_PER_CALLER", default_value_t = 4)]
    pub max_streams_per_caller: usize,
    /// Streams open at once on this server.
    #[arg(long, env = "LIBRARY_MAX_STREAMS", default_value_t = 256)]
    pub max_streams: usize,
    /// Unary calls in flight at once before new ones are refused with UNAVAILABLE (streams
    /// are capped by --max-streams).
    #[arg(long, env = "LIBRARY_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "LIBRARY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Redis (`redis://[:PASSWORD@]HOST:PORT[/DB]`) that keeps the per-caller quotas and open
    /// streams for every replica sharing it, so that a caller gets one quota, not one per
    /// replica. While it is
    /// unreachable each replica limits on its own. Default: each replica on its own.
    #[arg(long, env = "LIBRARY_RATE_LIMIT_REDIS_URL", hide_env_values = true)]
    pub rate_limit_redis_url: Option<Secret>,
    /// Prefix of this service's keys in that Redis (deployments sharing one Redis choose
    /// different ones).
    #[arg(
        long,
        env = "LIBRARY_RATE_LIMIT_REDIS_PREFIX",
        default_value = "audiohm:library"
    )]
    pub rate_limit_redis_prefix: String,
}

impl Default for LimitArgs {
    fn default() -> Self {
        defaults()
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
        defaults()
    }
}

/// The `#[arg]` defaults of a group of flags, as if none were given and the environment were
/// empty: what `..ServeArgs::default()` means in code and tests, from the one place the defaults
/// are written.
fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let parsed = command
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches));
    match parsed {
        Ok(defaults) => defaults,
        // Only a flag without a default that is required could get here; none is.
        Err(e) => panic!("the flags' defaults do not parse: {e}"),
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
pub struct ExportArgs {
    /// The listener to export (a UUID).
    #[arg(long, env = "LIBRARY_EXPORT_USER")]
    pub user: String,
}

#[derive(Args, Clone)]
pub struct ImportArgs {
    /// The export file (NDJSON, as `export` writes it).
    #[arg(env = "LIBRARY_IMPORT_FILE")]
    pub file: PathBuf,
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
            jwks: self.jwks.config(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(CommonArgs, Command), clap::Error> {
        Cli::try_parse_command_from(std::iter::once("library-service").chain(args.iter().copied()))
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        match parse(args) {
            Ok((_, Command::Serve(serve))) => *serve,
            Ok(_) => panic!("{args:?} is not serve"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn the_bare_command_takes_the_flags_of_serve() {
        let bare = serve_args(&["--listen", "127.0.0.1:1", "--max-streams", "7"]);
        let serve = serve_args(&["serve", "--listen", "127.0.0.1:1", "--max-streams", "7"]);
        assert_eq!(bare.listen, SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(bare.limits, serve.limits);
        assert_eq!(bare.limits.max_streams, 7);
    }

    #[test]
    fn common_flags_go_before_or_after_the_subcommand() {
        for args in [
            &["--log-format", "json", "serve"][..],
            &["serve", "--log-format", "json"][..],
            &["--log-format", "json"][..],
        ] {
            let (common, _) = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(common.log_format, LogFormat::Json, "{args:?}");
        }
    }

    #[test]
    fn tls_flags_that_need_each_other_are_refused_alone() {
        for (args, missing) in [
            (&["--tls-cert", "c.pem"][..], "--tls-key"),
            (&["serve", "--tls-key", "k.pem"][..], "--tls-cert"),
            (&["--tls-client-ca", "ca.pem"][..], "--tls-cert"),
        ] {
            let refused = parse(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(refused.contains(missing), "{args:?}: {refused}");
        }
        let both = serve_args(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert_eq!(both.tls.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(ServeArgs::default().tls.tls_cert, None);
        assert_eq!(TlsArgs::default().tls_reload_seconds, 10);
    }

    #[test]
    fn a_serve_flag_before_another_subcommand_is_a_usage_error() {
        let refused = parse(&["--listen", "127.0.0.1:1", "migrate"]).err();
        assert_eq!(refused.map(|e| e.kind()), Some(ErrorKind::ArgumentConflict));
    }

    #[test]
    fn a_jwks_url_or_an_oidc_issuer_names_where_keys_are_fetched() {
        let (common, _) = parse(&["--jwt-jwks-url", "https://idp.test/jwks.json"]).unwrap();
        let jwks = common.auth_config().jwks.expect("a jwks source");
        assert!(matches!(jwks.source, JwksSource::Url(u) if u == "https://idp.test/jwks.json"));
        assert_eq!(jwks.refresh, std::time::Duration::from_secs(300));
        assert!(!jwks.allow_http);

        let (common, _) = parse(&["serve", "--jwt-oidc-issuer", "https://idp.test"]).unwrap();
        let jwks = common.auth_config().jwks.expect("a jwks source");
        assert!(matches!(jwks.source, JwksSource::OidcIssuer(i) if i == "https://idp.test"));
        let (common, _) = parse(&[]).unwrap();
        assert!(common.auth_config().jwks.is_none());
    }

    #[test]
    fn a_jwks_url_and_an_oidc_issuer_together_or_a_refresh_under_a_minute_are_refused() {
        let both = parse(&[
            "--jwt-jwks-url",
            "https://a/j",
            "--jwt-oidc-issuer",
            "https://a",
        ]);
        assert_eq!(
            both.err().map(|e| e.kind()),
            Some(ErrorKind::ArgumentConflict)
        );
        let fast = parse(&[
            "--jwt-jwks-url",
            "https://a/j",
            "--jwt-jwks-refresh-seconds",
            "5",
        ]);
        assert_eq!(
            fast.err().map(|e| e.kind()),
            Some(ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn traces_are_exported_only_to_a_plain_http_endpoint_that_is_given() {
        let traces = TraceArgs::default();
        assert_eq!(traces.otlp_endpoint, None);
        assert_eq!(traces.otlp_service_name, "library-service");
        assert_eq!(traces.otlp_sample_ratio, 1.0);
        let given = serve_args(&["serve", "--otlp-endpoint", "http://collector:4317"]);
        assert_eq!(
            given.traces.otlp_endpoint.as_deref(),
            Some("http://collector:4317")
        );
        for (flag, value) in [
            ("--otlp-endpoint", "https://collector:4317"),
            ("--otlp-endpoint", "collector:4317"),
            ("--otlp-sample-ratio", "1.5"),
        ] {
            let refused = parse(&["serve", flag, value]).err().map(|e| e.to_string());
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(flag)),
                "{flag} {value}: {refused:?}"
            );
        }
    }

    #[test]
    fn defaults_in_code_are_the_documented_defaults_of_the_flags() {
        let serve = ServeArgs::default();
        assert_eq!(serve.listen, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert!(serve.reflection);
        assert_eq!(
            (serve.retention_interval_seconds, serve.health_probe_seconds),
            (3600, 5)
        );
        assert_eq!((serve.shutdown_grace, serve.web_root), (10, None));
        assert_eq!(serve.stats_cache_mib, 256);
        assert_eq!(serve.counting.rule(), Ok(CountingRule::DEFAULT));
        let limits = LimitArgs::default();
        assert_eq!(
            (
                limits.rate_reads_per_minute,
                limits.rate_writes_per_minute,
                limits.rate_streams_per_minute,
                limits.rate_admin_per_minute,
                limits.rate_service_multiplier
            ),
            (600, 600, 60, 60, 20)
        );
        assert_eq!(
            (
                limits.max_streams_per_caller,
                limits.max_streams,
                limits.max_in_flight,
                limits.max_message_bytes
            ),
            (4, 256, 256, 4 * 1024 * 1024)
        );
    }
}
