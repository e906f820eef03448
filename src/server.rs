//! Builds and runs the tonic server: store, auth, health, reflection, gRPC-web, CORS, shutdown.
use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use anyhow::{Context, bail};
use http::{HeaderName, HeaderValue, Method};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_web::GrpcWebLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    auth::Authenticator,
    config::ServeArgs,
    grpc::{AdminApi, AuthInterceptor, LibraryApi},
    pb::{
        self, library_admin_service_server::LibraryAdminServiceServer,
        library_service_server::LibraryServiceServer,
    },
    store::{DatabaseKind, PgStore, SqliteStore, Store},
};

const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Runner = Box<dyn FnOnce(BoxFuture<()>) -> BoxFuture<anyhow::Result<()>> + Send>;

pub struct Settings {
    pub database_url: String,
    pub db_max_connections: u32,
    pub auth: Authenticator,
    pub serve: ServeArgs,
}

/// A server whose store is open and migrated and whose socket is bound, ready to run.
pub struct Application {
    addr: SocketAddr,
    runner: Runner,
}

impl Application {
    /// Opens the store named by the URL, applies pending migrations and prepares the services.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("reading the bound address")?;
        let url = settings.database_url.as_str();
        let runner = match DatabaseKind::of_url(url) {
            Some(DatabaseKind::Postgres) => {
                let store = PgStore::connect(url, settings.db_max_connections)
                    .await
                    .context("connecting to PostgreSQL")?;
                store
                    .migrate()
                    .await
                    .context("migrating the PostgreSQL database")?;
                runner(store, settings, listener)
            }
            Some(DatabaseKind::Sqlite) => {
                let store = SqliteStore::connect(url, settings.db_max_connections)
                    .await
                    .context("opening the SQLite database")?;
                store
                    .migrate()
                    .await
                    .context("migrating the SQLite database")?;
                runner(store, settings, listener)
            }
            None => bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite:"),
        };
        Ok(Self { addr, runner })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight calls finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        (self.runner)(Box::pin(shutdown)).await
    }
}

fn runner<S: Store>(store: S, settings: Settings, listener: TcpListener) -> Runner {
    Box::new(move |shutdown| Box::pin(serve(store, settings, listener, shutdown)))
}

async fn serve<S: Store>(
    store: S,
    settings: Settings,
    listener: TcpListener,
    shutdown: BoxFuture<()>,
) -> anyhow::Result<()> {
    store.housekeeping().await.context("preparing the store")?;
    let upkeep = tokio::spawn(housekeeping(store.clone()));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<LibraryServiceServer<LibraryApi<S>>>()
        .await;
    health
        .set_serving::<LibraryAdminServiceServer<AdminApi<S>>>()
        .await;

    let admin = LibraryAdminServiceServer::with_interceptor(
        AdminApi::new(store.clone()),
        AuthInterceptor::new(settings.auth.clone()),
    );
    let library = LibraryServiceServer::with_interceptor(
        LibraryApi::new(store),
        AuthInterceptor::new(settings.auth.clone()),
    );
    let enabled = settings.serve.reflection;
    let reflection_v1 = enabled
        .then(|| reflection().build_v1())
        .transpose()
        .context("building reflection v1")?;
    let reflection_v1alpha = enabled
        .then(|| reflection().build_v1alpha())
        .transpose()
        .context("building reflection v1alpha")?;

    let reporter = health.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: refusing new calls, finishing in-flight ones");
        reporter
            .set_not_serving::<LibraryServiceServer<LibraryApi<S>>>()
            .await;
        reporter
            .set_not_serving::<LibraryAdminServiceServer<AdminApi<S>>>()
            .await;
    };

    tracing::info!(addr = %listener.local_addr()?, "serving gRPC and gRPC-web");
    let served = Server::builder()
        .accept_http1(true)
        .layer(cors(&settings.serve.cors_allow_origins)?)
        .layer(GrpcWebLayer::new())
        .add_service(health_service)
        .add_service(library)
        .add_service(admin)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .context("serving gRPC");
    upkeep.abort();
    served
}

/// Daily upkeep; a failure is logged and retried at the next round, since the partitions are
/// prepared months ahead and writes create a missing one themselves.
async fn housekeeping<S: Store>(store: S) {
    let mut every = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = store.housekeeping().await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }
}

/// Both reflection versions are served: grpcurl and buf speak v1, Python's grpcio client only
/// v1alpha.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Browsers call over gRPC-web; they must be able to send the token and read the gRPC status
/// from the response headers and trailers.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).with_context(|| format!("invalid CORS origin {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(list)
    };
    let headers = |names: &[&'static str]| {
        names
            .iter()
            .map(|n| HeaderName::from_static(n))
            .collect::<Vec<_>>()
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST])
        .allow_headers(headers(&[
            "authorization",
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
        ]))
        .expose_headers(headers(&[
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
        ]))
        .max_age(Duration::from_secs(24 * 60 * 60)))
}
