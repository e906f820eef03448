//! The API conformance suite: every test drives the real server through the generated client, and
//! runs once per backend (SQLite always; PostgreSQL when LIBRARY_TEST_POSTGRES_URL is set).
#[path = "../support/mod.rs"]
mod support;

/// Expands each `async fn name(app: TestApp)` into a test on SQLite and one on PostgreSQL.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::app::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::support::app::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

mod admin;
mod aggregates;
mod attacks;
mod auth;
mod export;
mod figures;
mod helpers;
mod history;
mod import;
mod likes;
mod live;
mod plays;
mod recount;
mod server;
mod site;
mod stats;
mod validation;
