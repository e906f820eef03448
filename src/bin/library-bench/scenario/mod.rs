//! One module per scenario; each prints its line and records its targets.
pub mod check_liked;
pub mod export;
pub mod import;
pub mod overload;
pub mod ratelimit;
pub mod record;
pub mod record_batch;
pub mod recount;
pub mod stats;
pub mod stream;
pub mod tls;
pub mod watch;

use library_service::store::Database;

use crate::{cli::Args, client::Api, db::Db};

/// What every scenario needs: the settings, the server, and the database behind it, both as
/// plain SQL connections (recounts, seeding) and through the service's own store (write
/// baselines).
pub struct Ctx {
    pub args: Args,
    pub api: Api,
    pub db: Db,
    pub store: Database,
}
