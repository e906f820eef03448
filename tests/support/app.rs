//! `spawn_app()`: the real server on 127.0.0.1:0 over a fresh database, plus the generated client
//! and real tokens.
use std::{net::SocketAddr, time::Duration};

use jsonwebtoken::{EncodingKey, Header};
use library_service::{
    auth::{AuthConfig, Authenticator},
    config::{LimitArgs, ServeArgs},
    pb::library_service_client::LibraryServiceClient,
    server::{Application, Settings},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Request,
    transport::{Channel, ClientTlsConfig, Endpoint},
};
use uuid::Uuid;

use super::db::{self, TestDb};

pub const SECRET: &str = "integration-test-secret-with-enough-entropy";
pub const ISSUER: &str = "https://auth.audiohm.test";
pub const AUDIENCE: &str = "library";

pub struct TestApp {
    pub addr: SocketAddr,
    /// The listener most tests act as.
    pub user: Uuid,
    pub client: LibraryServiceClient<Channel>,
    /// How `client` reached the server (with its TLS settings when the server serves TLS).
    endpoint: Endpoint,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _db: TestDb,
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::spawn(db::sqlite()).await
    }

    /// None (after saying so) when LIBRARY_TEST_POSTGRES_URL is not set.
    pub async fn postgres() -> Option<Self> {
        Some(Self::spawn(db::postgres().await?).await)
    }

    /// The functional suite calls far faster than any person would (a test pages through 300
    /// plays seven at a time), so its quotas are raised; the rate-limit tests use the defaults.
    pub async fn spawn(db: TestDb) -> Self {
        Self::spawn_with(
            db,
            ServeArgs {
                cors_allow_origins: vec!["https://app.audiohm.test".into()],
                limits: LimitArgs {
                    rate_reads_per_minute: 1_000_000,
                    rate_writes_per_minute: 1_000_000,
                    rate_streams_per_minute: 1_000_000,
                    rate_admin_per_minute: 1_000_000,
                    ..LimitArgs::default()
                },
                ..ServeArgs::default()
            },
        )
        .await
    }

    pub async fn spawn_with(db: TestDb, serve: ServeArgs) -> Self {
        Self::spawn_with_keys(db, serve, Vec::new()).await
    }

    /// With `public_keys` (`[KID=]PATH`) the server also verifies tokens signed by those keys.
    pub async fn spawn_with_keys(db: TestDb, serve: ServeArgs, public_keys: Vec<String>) -> Self {
        Self::start(
            db,
            serve,
            AuthConfig {
                public_keys,
                ..auth_config()
            },
            None,
        )
        .await
    }

    /// With keys configured as `auth` says (e.g. a JWKS URL).
    pub async fn spawn_with_auth(db: TestDb, serve: ServeArgs, auth: AuthConfig) -> Self {
        Self::start(db, serve, auth, None).await
    }

    /// A server with `serve.tls` set, and a client that trusts it through `client` (its CA, the
    /// name to expect, and its own certificate for mutual TLS).
    pub async fn spawn_tls(db: TestDb, serve: ServeArgs, client: ClientTlsConfig) -> Self {
        Self::start(db, serve, auth_config(), Some(client)).await
    }

    async fn start(
        db: TestDb,
        serve: ServeArgs,
        auth: AuthConfig,
        tls: Option<ClientTlsConfig>,
    ) -> Self {
        // The server's logs, when a failing test needs them: LIBRARY_TEST_LOGS=1.
        if std::env::var_os("LIBRARY_TEST_LOGS").is_some() {
            let _ =
                library_service::telemetry::init(library_service::config::LogFormat::Text, None);
        }
        let auth = Authenticator::connect(&auth).await.expect("test keys load");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let settings = Settings {
            database_url: db.url().to_string(),
            db_max_connections: 8,
            auth,
            serve,
        };
        let app = Application::build(settings, listener)
            .await
            .expect("server builds");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let endpoint = match tls {
            None => Channel::from_shared(format!("http://{addr}")).expect("valid uri"),
            Some(tls) => Channel::from_shared(format!("https://{addr}"))
                .expect("valid uri")
                .tls_config(tls)
                .expect("client tls settings"),
        }
        .connect_timeout(Duration::from_secs(5));
        let channel = endpoint.connect().await.expect("client connects");
        Self {
            addr,
            user: Uuid::new_v4(),
            client: LibraryServiceClient::new(channel),
            endpoint,
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
        }
    }

    /// A second server on the same database, acting as the same listener: another replica.
    /// It does not own the database; `self` does.
    pub async fn replica(&self) -> Self {
        let mut replica = Self::spawn(TestDb::external(self._db.url().to_string())).await;
        replica.user = self.user;
        replica
    }

    /// The database this server uses, for tests that also open it directly (the CLI, the store).
    pub fn database_url(&self) -> &str {
        self._db.url()
    }

    /// A new connection to the server, made as `client`'s was.
    pub async fn channel(&self) -> Channel {
        self.endpoint.connect().await.expect("connects")
    }

    /// A request as the default listener, with a session token (no scope claim).
    pub fn req<T>(&self, message: T) -> Request<T> {
        with_token(message, &session_token(self.user))
    }

    /// Stops the server the way SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server exits cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The tests' secret, issuer and audience.
pub fn auth_config() -> AuthConfig {
    AuthConfig {
        hs256_secret: Some(SECRET.into()),
        hs256_kid: None,
        public_keys: Vec::new(),
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        leeway_seconds: 5,
        data_dir: std::env::temp_dir(),
        jwks: None,
    }
}

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Signs arbitrary claims with the test secret (HS256).
pub fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signs")
}

pub fn valid_claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now_secs() + 600, "iss": ISSUER, "aud": AUDIENCE })
}

/// A listener's session token: no scope claim.
pub fn session_token(user: Uuid) -> String {
    sign(&valid_claims(&user.to_string()))
}

/// A service token with scopes.
pub fn service_token(sub: &str, scopes: &str) -> String {
    let mut claims = valid_claims(sub);
    claims["scope"] = json!(scopes);
    sign(&claims)
}

/// The services the server names through reflection v1 (`ListServices`), as `grpcurl list` shows
/// them.
pub async fn reflected_services(channel: Channel) -> Vec<String> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1 answers")
        .into_inner();
    let Some(Ok(v1::ServerReflectionResponse {
        message_response:
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)),
        ..
    })) = responses.next().await
    else {
        panic!("reflection v1 lists the services");
    };
    list.service.into_iter().map(|s| s.name).collect()
}
