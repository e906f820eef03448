use std::process::ExitCode;

use anyhow::{Context, bail};
use library_service::{
    auth::{self, Authenticator, MintRequest},
    config::{Cli, Command, CommonArgs, ExportArgs, ImportArgs, PurgeArgs, ServeArgs, TokenArgs},
    domain::{Timestamp, UserId},
    export,
    server::{Application, Settings},
    store::{AdminStore, Database},
    telemetry, with_store,
};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let (common, command) = Cli::parse_command();
    // Only a serving process exports spans; the one-shot commands just log.
    let traces = match &command {
        Command::Serve(args) => Some(&args.traces),
        _ => None,
    };
    let traces = match telemetry::init(common.log_format, traces) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Serve(args) => serve(&common, *args).await,
        Command::Migrate { undo } => migrate(&common, undo).await,
        Command::Purge(args) => purge(&common, &args).await,
        Command::Token(args) => token(&common, &args),
        Command::Export(args) => export(&common, &args).await,
        Command::Import(args) => import(&common, &args).await,
    };
    traces.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(common: &CommonArgs, args: ServeArgs) -> anyhow::Result<()> {
    // Before the keys are fetched, so the fetches while the identity provider is down count.
    if let Some(addr) = args.metrics_listen {
        telemetry::install_metrics(addr)?;
    }
    let auth = Authenticator::connect(&common.auth_config())
        .await
        .context("loading verification keys")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let settings = Settings {
        database_url: common.database_url(),
        db_max_connections: common.db_max_connections,
        auth,
        serve: args,
    };
    Application::build(settings, listener)
        .await?
        .run_until(shutdown_signal())
        .await
}

/// SIGINT (Ctrl-C) or SIGTERM (Kubernetes) starts a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn migrate(common: &CommonArgs, undo: bool) -> anyhow::Result<()> {
    let database = Database::connect(&common.database_url(), 1).await?;
    if !undo {
        database.migrate().await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    match database.undo_last_migration().await? {
        Some(version) => tracing::info!(version, "migration rolled back"),
        None => tracing::info!("no migration to roll back"),
    }
    Ok(())
}

/// Retention for cron-style use: the same deletion the `--history-retention-days` task runs.
async fn purge(common: &CommonArgs, args: &PurgeArgs) -> anyhow::Result<()> {
    let cutoff = match (&args.before, args.older_than_days) {
        (Some(before), _) => {
            let t: jiff::Timestamp = before
                .parse()
                .with_context(|| format!("--before {before:?} is not an RFC 3339 time"))?;
            Timestamp::from_micros(t.as_microsecond()).context("--before is out of range")?
        }
        (None, Some(days)) => Timestamp::now().saturating_add_seconds(-i64::from(days) * 86_400),
        (None, None) => bail!("give --before or --older-than-days"),
    };
    if cutoff > Timestamp::now() {
        bail!("the cutoff must not be in the future");
    }
    let database = Database::connect(&common.database_url(), 2).await?;
    let deleted =
        with_store!(database, store => store.purge_plays_before(cutoff, args.dry_run).await?);
    let when = jiff::Timestamp::from_microsecond(cutoff.as_micros())
        .map(|t| t.to_string())
        .unwrap_or_default();
    if args.dry_run {
        println!("{deleted} plays played before {when} would be deleted (dry run)");
    } else {
        println!("deleted {deleted} plays played before {when}");
    }
    Ok(())
}

fn token(common: &CommonArgs, args: &TokenArgs) -> anyhow::Result<()> {
    let secret = match &common.jwt_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None if !common.jwt_public_keys.is_empty() || common.jwks.config().is_some() => {
            bail!(
                "tokens for public keys are minted by their issuer; `token` needs --jwt-secret or development mode"
            )
        }
        None => auth::development_secret(&common.data_dir)?,
    };
    let subject = args
        .sub
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = MintRequest {
        subject: subject.clone(),
        scopes: (!args.scopes.is_empty()).then(|| args.scopes.clone()),
        ttl_seconds: args.ttl,
        issuer: common.jwt_issuer.clone(),
        audience: common.jwt_audience.clone(),
        kid: common.jwt_secret_kid.clone(),
    };
    println!("{}", auth::mint_hs256(&secret, &request)?);
    eprintln!("token for subject {subject}, valid {} s", args.ttl);
    Ok(())
}

/// A subject-access export to stdout, straight from the database, page by page.
async fn export(common: &CommonArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let user = UserId::parse(&args.user)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--user {:?}", args.user))?;
    let database = Database::connect(&common.database_url(), 2).await?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::io::stdout());
    let counts = with_store!(database, store => export::file::write(store, user, &mut out).await)
        .context("writing the export to stdout")?;
    eprintln!(
        "exported {} plays and {} likes of {user}",
        counts.play_count, counts.like_count
    );
    Ok(())
}

/// An export file back into its listener's library: checked whole, then stored idempotently.
async fn import(common: &CommonArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let database = Database::connect(&common.database_url(), 4).await?;
    let (file, done) =
        with_store!(database, store => export::import::import(&store, &args.file).await?);
    eprintln!(
        "imported {} plays ({} already there) and restored {} likes ({} already there) of {}",
        done.plays_imported,
        done.plays_duplicate,
        done.likes_restored,
        done.likes_present,
        file.user
    );
    Ok(())
}
