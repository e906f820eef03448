//! A fresh database per test: a SQLite file in a temporary directory, or a new PostgreSQL
//! database (dropped again when the test ends) on the server LIBRARY_TEST_POSTGRES_URL names.
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

pub const POSTGRES_ENV: &str = "LIBRARY_TEST_POSTGRES_URL";

pub struct TestDb {
    url: String,
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("library.db").display());
    TestDb {
        url,
        postgres: None,
        _dir: Some(dir),
    }
}

/// `None`, after saying so, when LIBRARY_TEST_POSTGRES_URL is not set. When it is set, an
/// unreachable server fails the test: CI must never skip PostgreSQL silently.
pub async fn postgres() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipped: {POSTGRES_ENV} not set (PostgreSQL variant of this test)");
        return None;
    };
    let name = format!("library_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={admin_url} is unreachable: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    let url = with_database(&admin_url, &name);
    Some(TestDb {
        url,
        postgres: Some((admin_url, name)),
        _dir: None,
    })
}

/// Replaces the database name in a postgres URL, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl TestDb {
    /// A database someone else owns (a test's own cluster): used as it is, dropped with it.
    pub fn external(url: String) -> Self {
        Self {
            url,
            postgres: None,
            _dir: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
