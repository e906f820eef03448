//! `check-liked`: CheckLikedTracks of 100 ids (half liked) for a listener with 10,000 likes, as the
//! heart icons of a track list ask, against the same lookup run directly. With `--addr-b`, the
//! calls alternate between two servers on the same database instead, and their latencies are
//! compared: e.g. one verifying tokens with a key file, the other with the same key from a JWKS
//! URL, for the cost of verifying with a fetched (cached) key set.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use library_service::pb;
use rand::seq::{IndexedRandom, SliceRandom};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::Ctx;
use crate::{
    client::{Bearer, Client},
    db::Db,
    load,
    report::{self, Report},
    seed,
    stats::Sample,
};

const P99_GOAL: Duration = Duration::from_millis(5);
/// `--addr-b`'s p50 may be this much above `--addr`'s.
const AB_P50_GOAL: Duration = Duration::from_micros(200);
const WARM_UP_CALLS: usize = 50;

/// `n` ids, half of them liked, shuffled, with which of them are liked.
pub(super) fn pick(liked: &[Uuid], n: usize) -> (Vec<Uuid>, Vec<bool>) {
    let mut rng = rand::rng();
    let mut ids: Vec<(Uuid, bool)> = liked
        .choose_multiple(&mut rng, n / 2)
        .map(|t| (*t, true))
        .collect();
    ids.extend((ids.len()..n).map(|_| (Uuid::new_v4(), false)));
    ids.shuffle(&mut rng);
    ids.into_iter().unzip()
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let user = Uuid::new_v4();
    eprintln!(
        "check-liked: seeding {} likes, then {} CheckLikedTracks calls of {} ids...",
        args.likes, args.check_calls, args.check_ids
    );
    let liked = Arc::new(seed::likes(&ctx.db, user, args.likes).await?);
    ctx.db.analyze().await?;
    let bearer = ctx.api.session(user)?;
    let n = args.check_ids;
    if let Some(b) = &args.addr_b {
        let channel = crate::client::endpoint(args, b)?
            .connect()
            .await
            .with_context(|| format!("connecting to {b}"))?;
        let b = pb::library_service_client::LibraryServiceClient::new(channel);
        return compare(ctx, report, &liked, &bearer, b).await;
    }

    let call = {
        let (api, liked) = (ctx.api.clone(), liked.clone());
        move |_| {
            let (ids, expected) = pick(&liked, n);
            let request = bearer.request(pb::CheckLikedTracksRequest {
                user_id: String::new(),
                track_ids: ids.iter().map(Uuid::to_string).collect(),
            });
            let mut client = api.client(0);
            async move {
                let answer = client
                    .check_liked_tracks(request)
                    .await
                    .context("CheckLikedTracks")?
                    .into_inner();
                ensure!(
                    answer.liked == expected,
                    "CheckLikedTracks answered wrongly"
                );
                Ok(())
            }
        }
    };
    for i in 0..WARM_UP_CALLS {
        call(i).await?;
    }
    let service = load::run(args.check_calls, 1, 1, args.budget(), call).await?;

    let call = {
        let (db, liked) = (ctx.db.clone(), liked.clone());
        move |_| {
            let (ids, expected) = pick(&liked, n);
            let db = db.clone();
            async move {
                let found = lookup(&db, user, &ids).await?;
                let got: Vec<bool> = ids.iter().map(|t| found.contains(t)).collect();
                ensure!(got == expected, "the direct lookup answered wrongly");
                Ok(())
            }
        }
    };
    for i in 0..WARM_UP_CALLS {
        call(i).await?;
    }
    let baseline = load::run(args.check_calls, 1, 1, args.budget(), call).await?;

    report::emit(report::line(
        "check-liked",
        "ops/s",
        &service,
        &baseline,
        &format!(
            "{} calls of {n} ids (half liked), sequential, {} likes",
            service.calls(),
            args.likes
        ),
    ));
    report.at_most("check-liked", "p99 <= 5 ms", service.p99(), P99_GOAL);
    Ok(())
}

/// The same calls alternating between `--addr` (A) and `--addr-b` (B), so that both see the
/// same machine at the same moments; sequential, one call in flight.
async fn compare(
    ctx: &Ctx,
    report: &mut Report,
    liked: &[Uuid],
    bearer: &Bearer,
    b: Client,
) -> anyhow::Result<()> {
    let args = &ctx.args;
    let n = args.check_ids;
    let clients = [ctx.api.client(0), b];
    let call = |side: usize| {
        let (ids, expected) = pick(liked, n);
        let request = bearer.request(pb::CheckLikedTracksRequest {
            user_id: String::new(),
            track_ids: ids.iter().map(Uuid::to_string).collect(),
        });
        let mut client = clients[side].clone();
        async move {
            let answer = client
                .check_liked_tracks(request)
                .await
                .with_context(|| format!("CheckLikedTracks on {}", ["--addr", "--addr-b"][side]))?
                .into_inner();
            ensure!(
                answer.liked == expected,
                "CheckLikedTracks answered wrongly"
            );
            Ok(())
        }
    };
    for i in 0..WARM_UP_CALLS * 2 {
        call(i % 2).await?;
    }
    let mut latencies = [Vec::new(), Vec::new()];
    let started = Instant::now();
    for i in 0..args.check_calls * 2 {
        if started.elapsed() > args.budget() {
            eprintln!("  note: phase budget reached after {i} calls");
            break;
        }
        let t0 = Instant::now();
        call(i % 2).await?;
        latencies[i % 2].push(t0.elapsed());
    }
    let elapsed = started.elapsed();
    let [a, b] = latencies.map(|l| {
        let calls = l.len() as u64;
        Sample::new(l, elapsed, calls)
    });
    let diff = b.p50().as_secs_f64() - a.p50().as_secs_f64();
    report::emit(format!(
        "check-liked-ab   a p50 {:>9} p99 {:>9} | b p50 {:>9} p99 {:>9} | b - a p50 {:+.3} ms | {} calls each of {n} ids, alternating, sequential, {} likes",
        report::ms(a.p50()),
        report::ms(a.p99()),
        report::ms(b.p50()),
        report::ms(b.p99()),
        diff * 1000.0,
        a.calls(),
        args.likes,
    ));
    report.at_most(
        "check-liked",
        "b p50 <= a p50 + 0.2 ms",
        b.p50().saturating_sub(a.p50()),
        AB_P50_GOAL,
    );
    Ok(())
}

/// The query the service runs: `= ANY($2)` on PostgreSQL, `IN (...)` on SQLite.
async fn lookup(db: &Db, user: Uuid, ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT track_id FROM liked_tracks WHERE user_id = $1 AND track_id = ANY($2)",
        )
        .bind(user)
        .bind(ids)
        .fetch_all(pool)
        .await
        .context("looking up likes"),
        Db::Sqlite { reader, .. } => {
            let mut sql =
                QueryBuilder::<Sqlite>::new("SELECT track_id FROM liked_tracks WHERE user_id = ");
            sql.push_bind(user).push(" AND track_id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            sql.push(")");
            sql.build_query_scalar()
                .fetch_all(reader)
                .await
                .context("looking up likes")
        }
    }
}
