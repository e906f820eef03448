//! Builds and runs the tonic server: store, auth, health, reflection, gRPC-web, CORS, shutdown.
use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_web::GrpcWebLayer;
use tower::util::option_layer;

mod observe;
mod site;
mod tasks;
mod tls;
mod web;

use observe::ObserveLayer;
use site::SiteLayer;
use tls::Tls;
use web::{cors, reflection};

use crate::{
    auth::Authenticator,
    config::ServeArgs,
    grpc::{
        AdminApi, AuthInterceptor, DatabaseGate, Drain, KeyRefreshService, LibraryApi, Limits,
        QuotaService, SharedQuota,
    },
    pb::{
        library_admin_service_server::LibraryAdminServiceServer,
        library_service_server::LibraryServiceServer,
    },
    store::{Database, DatabaseKind, Store, StoreResult, Traced},
    with_store,
};

pub struct Settings {
    pub database_url: String,
    pub db_max_connections: u32,
    pub auth: Authenticator,
    pub serve: ServeArgs,
}

/// A server whose store is open and migrated and whose socket is bound, ready to run.
pub struct Application {
    addr: SocketAddr,
    listener: TcpListener,
    database: Database,
    site: Option<SiteLayer>,
    tls: Option<Tls>,
    health_listener: Option<TcpListener>,
    settings: Settings,
}

impl Application {
    /// Opens the store named by the URL (waiting for PostgreSQL while it is unreachable),
    /// applies pending migrations and prepares the services.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("reading the bound address")?;
        settings.serve.counting.rule().map_err(anyhow::Error::msg)?;
        let site = settings
            .serve
            .web_root
            .as_deref()
            .map(SiteLayer::new)
            .transpose()?;
        // Before the database: a bad certificate is a configuration error to report at once.
        let tls = Tls::load(&settings.serve.tls).await?;
        let health_listener = match settings.serve.tls.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding --health-listen {addr}"))?,
            ),
            None => None,
        };
        let (url, pool) = (&settings.database_url, settings.db_max_connections);
        let database = match DatabaseKind::of_url(url) {
            Some(DatabaseKind::Postgres) => {
                until_reachable("PostgreSQL", || Database::connect(url, pool)).await?
            }
            _ => Database::connect(url, pool)
                .await
                .context("opening the database")?,
        };
        database.set_stats_cache_bytes(settings.serve.stats_cache_mib as usize * (1 << 20));
        database
            .migrate()
            .await
            .with_context(|| format!("migrating the {:?} database", database.kind()))?;
        Ok(Self {
            addr,
            listener,
            database,
            site,
            tls,
            health_listener,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then refuses new calls, lets unary calls in flight
    /// finish, and ends open streams with UNAVAILABLE once the grace period is over.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            addr: _,
            listener,
            database,
            site,
            tls,
            health_listener,
            settings,
        } = self;
        let io = Incoming {
            listener,
            tls,
            health_listener,
        };
        let kind = database.kind();
        with_store!(database, store => serve(Traced::new(store, kind), settings, site, io, shutdown).await)
    }
}

/// Waits for the database while it is unreachable; other errors fail at once.
async fn until_reachable<T, F, Fut>(what: &str, connect: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    crate::backoff::until_available(connect, |e, delay| {
        if e.is_unavailable() {
            tracing::warn!(database = what, error = %crate::error::chain(e), retry_in_ms = delay.as_millis() as u64, "database unreachable; waiting for it");
        }
        e.is_unavailable()
    })
    .await
    .with_context(|| format!("connecting to {what}"))
}

/// `--health-listen`: the health service alone, in plaintext, for probes that cannot present
/// what the service port asks (TLS, a client certificate). It ends with the other background
/// tasks, after the service port has drained, so probes see NOT_SERVING during the drain.
fn health_port(
    listener: TcpListener,
    health: HealthServer<impl Health>,
) -> tokio::task::JoinHandle<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving gRPC health in plaintext");
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "the health port stopped");
        }
    })
}

/// Where connections come from: the service socket, TLS when configured, and the health-only
/// socket when asked for.
struct Incoming {
    listener: TcpListener,
    tls: Option<Tls>,
    health_listener: Option<TcpListener>,
}

async fn serve<S: Store>(
    store: S,
    settings: Settings,
    site: Option<SiteLayer>,
    io: Incoming,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let serve = &settings.serve;
    if let Some(addr) = serve.metrics_listen {
        crate::telemetry::install_metrics(addr)?;
    }
    store.housekeeping().await.context("preparing the store")?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let services = tasks::Services::new(health);
    services.set_serving(true).await;
    let gate = DatabaseGate::default();

    let (drain_trigger, drain) = Drain::new();
    let shared = match &serve.limits.rate_limit_redis_url {
        Some(url) => {
            let prefix = &serve.limits.rate_limit_redis_prefix;
            tracing::info!(prefix, "rate limits shared across replicas through redis");
            Some(SharedQuota::new(url.expose(), prefix)?)
        }
        None => None,
    };
    let limits = Limits::with_shared(serve.limits.settings(), shared);
    let mut background = tasks::spawn_all(
        store.clone(),
        serve,
        services.clone(),
        gate.clone(),
        limits.clone(),
    );
    let interceptor = AuthInterceptor::new(settings.auth.clone());
    let max_message = serve.limits.max_message_bytes;
    let admin = InterceptedService::new(
        QuotaService::new(
            LibraryAdminServiceServer::new(AdminApi::new(
                store.clone(),
                drain.clone(),
                limits.clone(),
            ))
            .max_decoding_message_size(max_message),
            limits.clone(),
            gate.clone(),
        ),
        interceptor.clone(),
    );
    let library = InterceptedService::new(
        QuotaService::new(
            LibraryServiceServer::new(LibraryApi::new(
                store,
                drain,
                limits.clone(),
                serve.counting.rule().map_err(anyhow::Error::msg)?,
            ))
            .max_decoding_message_size(max_message),
            limits,
            gate,
        ),
        interceptor,
    );
    // Outside the interceptor: where a token of a just-rotated key may wait for its JWKS fetch.
    let (admin, library) = (
        KeyRefreshService::new(admin, settings.auth.clone()),
        KeyRefreshService::new(library, settings.auth.clone()),
    );
    let enabled = serve.reflection;
    let reflection_v1 = enabled
        .then(|| reflection().build_v1())
        .transpose()
        .context("building reflection v1")?;
    let reflection_v1alpha = enabled
        .then(|| reflection().build_v1alpha())
        .transpose()
        .context("building reflection v1alpha")?;

    let grace = Duration::from_secs(serve.shutdown_grace);
    let on_shutdown = services.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: refusing new calls, finishing in-flight ones"
        );
        on_shutdown.shutting_down().await;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::info!("grace period over: ending open streams");
            drain_trigger.end_streams();
        });
    };

    if let Some(listener) = io.health_listener {
        background.push(health_port(listener, health_service.clone()));
    }
    let addr = io.listener.local_addr()?;
    let router = Server::builder()
        .accept_http1(true)
        .layer(option_layer(site))
        .layer(cors(&serve.cors_allow_origins)?)
        .layer(GrpcWebLayer::new())
        .layer(ObserveLayer::new(serve.limits.max_in_flight))
        .add_service(health_service)
        .add_service(library)
        .add_service(admin)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha);
    let served = match io.tls {
        None => {
            tracing::info!(%addr, "serving gRPC and gRPC-web");
            // Without TCP_NODELAY a response written in two pieces waits ~40 ms for the client's
            // delayed ACK (Nagle); tonic sets it only on the sockets it binds itself.
            let incoming = TcpIncoming::from(io.listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        Some(tls) => {
            tracing::info!(%addr, mutual = tls.mutual(), "serving gRPC and gRPC-web over TLS");
            background.push(tokio::spawn(tls.clone().watch()));
            let incoming = tls.incoming(io.listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    }
    .context("serving gRPC");
    for task in background {
        task.abort();
    }
    tracing::info!("stopped");
    served
}
