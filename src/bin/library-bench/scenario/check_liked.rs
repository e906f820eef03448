//! `check-liked`: CheckLikedTracks of 100 ids (half liked) for a listener with 10,000 likes, as the
//! heart icons of a track list ask, against the same lookup run directly.
use std::{sync::Arc, time::Duration};

use anyhow::{Context, ensure};
use library_service::pb;
use rand::seq::{IndexedRandom, SliceRandom};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::Ctx;
use crate::{
    db::Db,
    load,
    report::{self, Report},
    seed,
};

const P99_GOAL: Duration = Duration::from_millis(5);
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
