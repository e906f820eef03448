//! `library-bench`: measures a running Library Service and, in the same run, the database it
//! uses doing the same work directly, so that every figure comes with the baseline it should be
//! judged by. How to run it and the last figures: BENCHMARKS.md at the top of the repository.
mod cli;
mod client;
mod db;
mod load;
mod pgbench;
mod report;
mod rss;
mod scenario;
mod seed;
mod stats;
mod thin;

use anyhow::Context;
use clap::Parser;

use cli::Scenario;
use scenario::Ctx;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    args.check()?;
    let db = db::Db::connect(&args.database_url, args.baseline_pool).await?;
    let store = library_service::store::Database::connect(&args.database_url, args.baseline_pool)
        .await
        .context("opening the store (--database-url)")?;
    let api = client::Api::connect(&args).await?;
    header(&args, &db).await?;
    let ctx = Ctx {
        args,
        api,
        db,
        store,
    };

    let mut report = report::Report::default();
    // Seeded once and shared: `stream`, `stats` and `export` read the same big history.
    let mut big_user = None;
    for scenario in ctx.args.scenario.clone() {
        match scenario {
            Scenario::Record => scenario::record::run(&ctx, &mut report).await,
            Scenario::RecordBatch => scenario::record_batch::run(&ctx, &mut report).await,
            Scenario::Import => scenario::import::run(&ctx, &mut report).await,
            Scenario::Overload => scenario::overload::run(&ctx, &mut report).await,
            Scenario::Stream | Scenario::Stats | Scenario::Export => {
                let user = match big_user {
                    Some(user) => user,
                    None => {
                        let user = seed::big_user(
                            &ctx.api,
                            &ctx.db,
                            ctx.args.stream_user,
                            ctx.args.stream_plays,
                            ctx.args.seed_concurrency,
                            ctx.args.budget(),
                        )
                        .await
                        .context("seeding the stream user")?;
                        *big_user.insert(user)
                    }
                };
                match scenario {
                    Scenario::Stream => scenario::stream::run(&ctx, user, &mut report).await,
                    Scenario::Export => scenario::export::run(&ctx, user, &mut report).await,
                    _ => scenario::stats::run(&ctx, user, &mut report).await,
                }
            }
            Scenario::CheckLiked => scenario::check_liked::run(&ctx, &mut report).await,
            Scenario::Ratelimit => scenario::ratelimit::run(&ctx, &mut report).await,
            Scenario::Watch => scenario::watch::run(&ctx, &mut report).await,
            Scenario::Tls => scenario::tls::run(&ctx, &mut report).await,
        }
        .with_context(|| format!("scenario {scenario:?}"))?;
    }
    report.print();
    Ok(())
}

/// The machine, the backend and the date: figures mean little without them.
async fn header(args: &cli::Args, db: &db::Db) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown cpu".into());
    let pid = args
        .server_pid
        .map_or("no --server-pid".to_string(), |p| format!("server pid {p}"));
    println!(
        "library-bench {} | nproc {cpus} ({model}), {:.1} GiB RAM | backend {} | server {} ({pid})",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        mem_kib as f64 / 1024.0 / 1024.0,
        db.describe().await?,
        args.addr,
    );
    Ok(())
}
