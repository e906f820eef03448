//! Test data. Everything is written under fresh random user ids, so the bench can run again on
//! the same database without meeting its earlier data.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use library_service::pb;
use rand::Rng;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::{
    client::Api,
    db::{Db, PlayRow},
    load,
    report::rate,
};

const SOURCES: [&str; 5] = ["album", "playlist", "radio", "search", ""];
const DAY_MICROS: i64 = 86_400_000_000;
/// Distinct tracks a seeded history draws from.
const TRACK_POOL: usize = 5_000;

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

pub fn track_pool(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::new_v4()).collect()
}

/// A plausible play: the pool's popularity is Zipf-like (track `k` is drawn about `1/k` as
/// often as the first: a few tracks very often, most rarely), mostly completed, from one of a
/// few sources.
pub fn random_row(
    rng: &mut impl Rng,
    tracks: &[Uuid],
    played_at_micros: i64,
    request_id: Option<String>,
) -> PlayRow {
    let u: f64 = rng.random();
    let rank = (tracks.len() as f64).powf(u) as usize;
    let track = tracks[rank.saturating_sub(1).min(tracks.len() - 1)];
    PlayRow {
        track_id: track,
        played_at_micros,
        seconds: rng.random_range(0..400),
        completed: rng.random_bool(0.7),
        source: SOURCES[rng.random_range(0..SOURCES.len())].to_string(),
        request_id,
        duration: rng.random_bool(0.8).then(|| rng.random_range(90..420)),
    }
}

pub fn to_new_play(row: &PlayRow, with_time: bool) -> pb::NewPlay {
    pb::NewPlay {
        track_id: row.track_id.to_string(),
        played_for_seconds: row.seconds as u32,
        completed: row.completed,
        source: row.source.clone(),
        played_at: with_time.then(|| timestamp(row.played_at_micros)),
        request_id: row.request_id.clone().unwrap_or_default(),
        track_duration_seconds: row.duration,
    }
}

/// The user whose big history `stream` and `stats` read.
#[derive(Clone, Copy)]
pub struct BigUser {
    pub id: Uuid,
    pub plays: u64,
}

/// Reuses `--stream-user`, or seeds a new user with `plays` plays spread evenly over the past
/// 365 days, through RecordPlays batches of 1000 as an import would send them (oldest first, so
/// each batch lands in one or two monthly partitions).
pub async fn big_user(
    api: &Api,
    db: &Db,
    reuse: Option<Uuid>,
    plays: usize,
    concurrency: usize,
    budget: Duration,
) -> anyhow::Result<BigUser> {
    if let Some(id) = reuse {
        let plays = db.count_plays(id).await?;
        ensure!(plays > 0, "--stream-user {id} has no plays");
        eprintln!("stream user {id}: reusing its {plays} plays");
        return Ok(BigUser { id, plays });
    }
    let id = Uuid::new_v4();
    let tracks = std::sync::Arc::new(track_pool(TRACK_POOL));
    let start = now_micros() - 365 * DAY_MICROS;
    let step = (365 * DAY_MICROS / plays.max(1) as i64).max(1);
    let batches = plays.div_ceil(1000);
    eprintln!("seeding {plays} plays for stream user {id} ({batches} RecordPlays calls)...");
    let api2 = api.clone();
    let sample = load::run(batches, concurrency, 1000, budget, move |b| {
        let (api, tracks) = (api2.clone(), tracks.clone());
        async move {
            let batch: Vec<pb::NewPlay> = {
                let mut rng = rand::rng();
                (b * 1000..((b + 1) * 1000).min(plays))
                    .map(|j| {
                        let at = start + j as i64 * step + rng.random_range(0..step);
                        to_new_play(&random_row(&mut rng, &tracks, at, None), true)
                    })
                    .collect()
            };
            let n = batch.len() as u32;
            let request = api.service.request(pb::RecordPlaysRequest {
                user_id: id.to_string(),
                plays: batch,
            });
            let done = api
                .client(b)
                .record_plays(request)
                .await
                .context("RecordPlays (seeding)")?
                .into_inner();
            ensure!(
                done.recorded_count == n,
                "seeding batch {b}: {} of {n} recorded, {} rejected",
                done.recorded_count,
                done.rejected_count
            );
            Ok(())
        }
    })
    .await?;
    let stored = db.count_plays(id).await?;
    db.analyze().await?;
    ensure!(
        stored == plays as u64,
        "seeded {stored} plays instead of {plays}"
    );
    println!(
        "seed             {} plays in {:.1} s = {} plays/s (RecordPlays x1000, {concurrency} in flight, no request_id); stream user {id} (reuse with --stream-user {id})",
        stored,
        sample.elapsed.as_secs_f64(),
        rate(stored as f64 / sample.elapsed.as_secs_f64()),
    );
    Ok(BigUser { id, plays: stored })
}

/// Likes `n` fresh tracks for `user` directly in the database (`liked_tracks` has no partitions
/// and no triggers, so this is what LikeTrack would have left behind). Returns the liked tracks.
pub async fn likes(db: &Db, user: Uuid, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let tracks = track_pool(n);
    let now = now_micros();
    match db {
        Db::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at)
                 SELECT $1, t, '', $3 - make_interval(secs => o), $3 - make_interval(secs => o)
                 FROM UNNEST($2::uuid[]) WITH ORDINALITY AS u(t, o)",
            )
            .bind(user)
            .bind(&tracks)
            .bind(crate::db::pg_time(now)?)
            .execute(pool)
            .await
            .context("seeding liked_tracks")?;
        }
        Db::Sqlite { writer, .. } => {
            let mut tx = writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .context("seeding liked_tracks")?;
            // 500 rows x 5 values stays far below SQLite's bound-parameter limit.
            for (c, chunk) in tracks.chunks(500).enumerate() {
                let mut sql = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at) ",
                );
                sql.push_values(chunk.iter().enumerate(), |mut b, (i, t)| {
                    let at = now - ((c * 500 + i) as i64) * 1_000_000;
                    b.push_bind(user)
                        .push_bind(*t)
                        .push_bind("")
                        .push_bind(at)
                        .push_bind(at);
                });
                sql.build()
                    .execute(&mut *tx)
                    .await
                    .context("seeding liked_tracks")?;
            }
            tx.commit().await.context("seeding liked_tracks")?;
        }
    }
    Ok(tracks)
}
