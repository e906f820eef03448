//! The statements that keep the aggregates (`user_stats`, `user_track_stats`,
//! `user_source_stats`, `user_quarter_stats`, and the staleness of `user_period_stats`) in step
//! with `plays`, in the same transaction as the plays they count. There are no triggers on
//! PostgreSQL: a database distributed by `user_id` (Citus) does not run them on distributed
//! tables, and every statement here names the listeners it touches, so that it can be routed to
//! the shards that hold them. SQLite keeps its triggers (migrations/sqlite).
use std::collections::HashSet;

use sqlx::PgConnection;

use crate::{
    domain::{Timestamp, TrackId, UserId},
    store::{StoreError, StoreResult, rows::count},
};

/// The part of a statement that marks stale the snapshots of the periods the plays of the CTE
/// `$plays` fall in: their UTC days that are over, and their UTC months that are over (a day
/// or month still running has no snapshot).
macro_rules! stale_periods {
    ($plays:literal) => {
        concat!(
            "periods AS (
         INSERT INTO user_period_stats AS s (user_id, period_kind, period_start, generation)
         SELECT user_id, kind, start, 1::bigint FROM (
             SELECT user_id, 1::smallint AS kind,
                    date_bin('1 day', played_at, timestamptz 'epoch') AS start
             FROM ",
            $plays,
            " WHERE played_at < date_bin('1 day', now(), timestamptz 'epoch')
             UNION
             SELECT user_id, 2::smallint,
                    date_trunc('month', played_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
             FROM ",
            $plays,
            " WHERE played_at < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
         ) p
         ORDER BY 1, 2, 3
         ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
             SET generation = s.generation + 1, built_generation = NULL,
                 tracks = NULL, sources = NULL, quarters = NULL
     )"
        )
    };
}

/// Stores plays of any listeners from arrays (`UNNEST`), claims their idempotency keys, and
/// counts what it stored into every aggregate: one statement, so one round trip and one commit
/// for a whole group. A play whose key was already claimed (by an earlier call, or a concurrent
/// one, which `ON CONFLICT` waits for) is not inserted. Each upsert takes its rows in key order,
/// so concurrent groups lock in one order instead of deadlocking. The data-modifying parts all
/// read `stored`, the plays this statement inserted, so nothing counts a play twice or misses
/// one. The rows a listener's plays share (totals, sources, quarter hours, periods) are locked
/// last: they read `settled`, which is `stored` once `tracks` has run, so two groups writing
/// one listener at once (the parts of one large call) do their disjoint work (plays, keys,
/// tracks) side by side and wait for each other only for those few rows. Last, it appends the
/// listeners' events (`events::Entry`'s bodies, built here from `stored`): one row per listener
/// of the plays recorded live, and one counting the plays imported. The `record`
/// baseline of the benchmark does not run this: it measures the database without it.
pub const INSERT_PLAYS: &str = concat!(
    "WITH input AS (
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::int4[],
                              $6::bool[], $7::text[], $8::text[], $9::int4[], $10::bool[],
                              $12::bool[])
             AS t(user_id, id, track_id, played_at, played_for_seconds, completed, source,
                  request_id, track_duration_seconds, counted, imported)
         WHERE user_id = ANY($11)
     ),
     claimed AS (
         INSERT INTO play_requests
             (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed,
              source, track_duration_seconds, counted)
         SELECT user_id, request_id, id, track_id, played_at, played_for_seconds, completed, source,
                track_duration_seconds, counted
         FROM input WHERE request_id IS NOT NULL
         ORDER BY user_id, request_id
         ON CONFLICT (user_id, request_id) DO NOTHING
         RETURNING user_id, play_id
     ),
     stored AS (
         INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source,
                            track_duration_seconds, counted)
         SELECT user_id, played_at, id, track_id, played_for_seconds, completed, source,
                track_duration_seconds, counted
         FROM input
         WHERE request_id IS NULL OR (user_id, id) IN (SELECT user_id, play_id FROM claimed)
         RETURNING user_id, id, track_id, played_at, played_for_seconds, completed, source,
                   track_duration_seconds, counted
     ),
     tracks AS (
         INSERT INTO user_track_stats AS s
             (user_id, track_id, plays, counted, seconds, first_played_at, last_played_at)
         SELECT user_id, track_id, count(*), count(*) FILTER (WHERE counted),
                sum(played_for_seconds), min(played_at), max(played_at)
         FROM stored GROUP BY user_id, track_id ORDER BY user_id, track_id
         ON CONFLICT (user_id, track_id) DO UPDATE
             SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
                 seconds = s.seconds + EXCLUDED.seconds,
                 first_played_at = LEAST(s.first_played_at, EXCLUDED.first_played_at),
                 last_played_at = GREATEST(s.last_played_at, EXCLUDED.last_played_at)
         -- xmax = 0 marks the rows the upsert inserted: the listener's new tracks.
         RETURNING s.user_id, (s.xmax = 0) AS created
     ),
     settled AS MATERIALIZED (
         SELECT * FROM stored WHERE (SELECT count(*) FROM tracks) >= 0
     ),
     totals AS (
         INSERT INTO user_stats AS u
             (user_id, plays, counted, completed, seconds, tracks, first_played_at, last_played_at)
         SELECT i.user_id, i.plays, i.counted, i.completed, i.seconds, COALESCE(n.tracks, 0),
                i.first, i.last
         FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                      count(*) FILTER (WHERE completed) AS completed,
                      sum(played_for_seconds) AS seconds, min(played_at) AS first,
                      max(played_at) AS last
               FROM settled GROUP BY user_id) i
         LEFT JOIN (SELECT user_id, count(*) FILTER (WHERE created) AS tracks
                    FROM tracks GROUP BY user_id) n USING (user_id)
         ORDER BY i.user_id
         ON CONFLICT (user_id) DO UPDATE
             SET plays = u.plays + EXCLUDED.plays, counted = u.counted + EXCLUDED.counted,
                 completed = u.completed + EXCLUDED.completed,
                 seconds = u.seconds + EXCLUDED.seconds, tracks = u.tracks + EXCLUDED.tracks,
                 first_played_at = LEAST(u.first_played_at, EXCLUDED.first_played_at),
                 last_played_at = GREATEST(u.last_played_at, EXCLUDED.last_played_at)
     ),
     sources AS (
         INSERT INTO user_source_stats AS s (user_id, source, plays, counted, completed, seconds)
         SELECT user_id, source, count(*), count(*) FILTER (WHERE counted),
                count(*) FILTER (WHERE completed), sum(played_for_seconds)
         FROM settled GROUP BY user_id, source ORDER BY user_id, source
         ON CONFLICT (user_id, source) DO UPDATE
             SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
                 completed = s.completed + EXCLUDED.completed,
                 seconds = s.seconds + EXCLUDED.seconds
     ),
     quarters AS (
         INSERT INTO user_quarter_stats AS s
             (user_id, quarter_start, plays, counted, completed, seconds)
         SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q, count(*),
                count(*) FILTER (WHERE counted), count(*) FILTER (WHERE completed),
                sum(played_for_seconds)
         FROM settled GROUP BY user_id, q ORDER BY user_id, q
         ON CONFLICT (user_id, quarter_start) DO UPDATE
             SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
                 completed = s.completed + EXCLUDED.completed,
                 seconds = s.seconds + EXCLUDED.seconds
     ),
     ",
    stale_periods!("settled"),
    ",
     changes AS (
         SELECT s.user_id, i.imported,
                CASE WHEN i.imported THEN json_build_object('imported', count(*))::text
                     ELSE json_agg(json_build_array(
                              s.id, s.track_id, (extract(epoch FROM s.played_at) * 1000000)::int8,
                              s.played_for_seconds, s.completed, s.source,
                              s.track_duration_seconds, s.counted)
                          ORDER BY s.played_at, s.id)::text
                END AS body
         FROM settled s JOIN input i ON i.user_id = s.user_id AND i.id = s.id
         GROUP BY s.user_id, i.imported
     ),
     heads AS (
         INSERT INTO library_event_heads AS h (user_id, seq)
         SELECT user_id, count(*) FROM changes GROUP BY user_id ORDER BY user_id
         ON CONFLICT (user_id) DO UPDATE SET seq = h.seq + EXCLUDED.seq
         RETURNING h.user_id, h.seq
     ),
     logged AS (
         INSERT INTO library_events (user_id, seq, kind, body)
         SELECT c.user_id,
                h.seq + 1 - row_number() OVER (PARTITION BY c.user_id ORDER BY c.imported),
                CASE WHEN c.imported THEN 4 ELSE 1 END, c.body
         FROM changes c JOIN heads h USING (user_id)
     )
     SELECT id FROM stored"
);

/// A delete of plays (`$delete`, without `RETURNING`) that takes what it deleted out of every
/// aggregate, in one statement. What one statement cannot do is left to [`tidy`]: deleting the
/// rows that reached zero and finding new first and last plays, which must see the delete. Its
/// rows: `part` 0 says how many plays went, 1 a track to tidy, 2 a source, 3 a quarter hour,
/// 4 a listener's totals.
macro_rules! counted_delete {
    // Tokens rather than a literal, so that the delete may itself be a `concat!`.
    ($($delete:tt)+) => {
        concat!(
            "WITH gone AS (",
            $($delete)+,
            " RETURNING user_id, track_id, source, played_at, played_for_seconds, completed,
                        counted
     ),
     tracks AS (
         UPDATE user_track_stats s
         SET plays = s.plays - d.plays, counted = s.counted - d.counted,
             seconds = s.seconds - d.seconds
         FROM (SELECT user_id, track_id, count(*) AS plays,
                      count(*) FILTER (WHERE counted) AS counted,
                      sum(played_for_seconds) AS seconds, min(played_at) AS lo,
                      max(played_at) AS hi
               FROM gone GROUP BY user_id, track_id) d
         WHERE s.user_id = d.user_id AND s.track_id = d.track_id
         RETURNING s.user_id, s.track_id, s.plays,
                   (d.lo <= s.first_played_at OR d.hi >= s.last_played_at) AS ends
     ),
     totals AS (
         UPDATE user_stats u
         SET plays = u.plays - d.plays, counted = u.counted - d.counted,
             completed = u.completed - d.completed, seconds = u.seconds - d.seconds,
             tracks = u.tracks - COALESCE(z.tracks, 0)
         FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                      count(*) FILTER (WHERE completed) AS completed,
                      sum(played_for_seconds) AS seconds, min(played_at) AS lo,
                      max(played_at) AS hi
               FROM gone GROUP BY user_id) d
         LEFT JOIN (SELECT user_id, count(*) AS tracks FROM tracks WHERE plays = 0
                    GROUP BY user_id) z USING (user_id)
         WHERE u.user_id = d.user_id
         RETURNING u.user_id, u.plays,
                   (d.lo <= u.first_played_at OR d.hi >= u.last_played_at) AS ends
     ),
     sources AS (
         UPDATE user_source_stats s
         SET plays = s.plays - d.plays, counted = s.counted - d.counted,
             completed = s.completed - d.completed, seconds = s.seconds - d.seconds
         FROM (SELECT user_id, source, count(*) AS plays,
                      count(*) FILTER (WHERE counted) AS counted,
                      count(*) FILTER (WHERE completed) AS completed,
                      sum(played_for_seconds) AS seconds
               FROM gone GROUP BY user_id, source) d
         WHERE s.user_id = d.user_id AND s.source = d.source
         RETURNING s.user_id, s.source, s.plays
     ),
     quarters AS (
         UPDATE user_quarter_stats s
         SET plays = s.plays - d.plays, counted = s.counted - d.counted,
             completed = s.completed - d.completed, seconds = s.seconds - d.seconds
         FROM (SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q,
                      count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                      count(*) FILTER (WHERE completed) AS completed,
                      sum(played_for_seconds) AS seconds
               FROM gone GROUP BY 1, 2) d
         WHERE s.user_id = d.user_id AND s.quarter_start = d.q
         RETURNING s.user_id, s.quarter_start, s.plays
     ),
     ",
            $crate::store::postgres::counting::stale_periods!("gone"),
            "
     SELECT 0 AS part, NULL::uuid AS user_id, NULL::uuid AS track_id, NULL::text AS source,
            NULL::timestamptz AS quarter, (SELECT count(*) FROM gone) AS deleted
     UNION ALL
     SELECT 1, user_id, track_id, NULL, NULL, NULL FROM tracks WHERE plays = 0 OR ends
     UNION ALL
     SELECT 2, user_id, NULL, source, NULL, NULL FROM sources WHERE plays = 0
     UNION ALL
     SELECT 3, user_id, NULL, NULL, quarter_start, NULL FROM quarters WHERE plays = 0
     UNION ALL
     SELECT 4, user_id, NULL, NULL, NULL, NULL FROM totals WHERE plays = 0 OR ends"
        )
    };
}
pub(super) use {counted_delete, stale_periods};

/// A row of a [`counted_delete!`].
#[derive(sqlx::FromRow)]
pub struct Leftover {
    part: i32,
    user_id: Option<UserId>,
    track_id: Option<TrackId>,
    source: Option<String>,
    quarter: Option<Timestamp>,
    deleted: Option<i64>,
}

/// Deletes the aggregate rows a counted delete brought to zero and finds the new first and last
/// plays where the delete took them (index probes, only for those rows); returns how many plays
/// the delete removed. Runs in the delete's transaction, after it, so the probes see it.
pub async fn tidy(conn: &mut PgConnection, rows: Vec<Leftover>) -> StoreResult<u64> {
    let mut deleted = 0;
    let (mut track_users, mut tracks) = (Vec::new(), Vec::new());
    let (mut source_users, mut sources) = (Vec::new(), Vec::new());
    let (mut quarter_users, mut quarters) = (Vec::new(), Vec::new());
    let mut totals = Vec::new();
    for row in rows {
        match (row.part, row.user_id, row.track_id, row.source, row.quarter) {
            (0, ..) => deleted = count(row.deleted.unwrap_or(0))?,
            (1, Some(user), Some(track), _, _) => {
                track_users.push(user);
                tracks.push(track);
            }
            (2, Some(user), _, Some(source), _) => {
                source_users.push(user);
                sources.push(source);
            }
            (3, Some(user), _, _, Some(quarter)) => {
                quarter_users.push(user);
                quarters.push(quarter);
            }
            (4, Some(user), ..) => totals.push(user),
            (part, ..) => {
                return Err(StoreError::Corrupt(format!("counted delete part {part}")));
            }
        }
    }
    let users: HashSet<UserId> = track_users
        .iter()
        .chain(&source_users)
        .chain(&quarter_users)
        .chain(&totals)
        .copied()
        .collect();
    if users.is_empty() {
        return Ok(deleted);
    }
    let users: Vec<UserId> = users.into_iter().collect();
    sqlx::query(TIDY)
        .bind(&track_users)
        .bind(&tracks)
        .bind(&source_users)
        .bind(&sources)
        .bind(&quarter_users)
        .bind(&quarters)
        .bind(&users)
        .bind(&totals)
        .execute(conn)
        .await?;
    Ok(deleted)
}

/// The second half of a counted delete (see [`tidy`]). `$7` names every listener it touches,
/// `$8` those whose totals need it.
const TIDY: &str = "WITH tracks_gone AS (
         DELETE FROM user_track_stats s
         USING UNNEST($1::uuid[], $2::uuid[]) AS k(user_id, track_id)
         WHERE s.user_id = ANY($7) AND s.user_id = k.user_id AND s.track_id = k.track_id
           AND s.plays = 0
     ),
     track_ends AS (
         UPDATE user_track_stats s
         SET first_played_at = (SELECT p.played_at FROM plays p
                                WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                                ORDER BY p.played_at ASC LIMIT 1),
             last_played_at = (SELECT p.played_at FROM plays p
                               WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                               ORDER BY p.played_at DESC LIMIT 1)
         FROM UNNEST($1::uuid[], $2::uuid[]) AS k(user_id, track_id)
         WHERE s.user_id = ANY($7) AND s.user_id = k.user_id AND s.track_id = k.track_id
           AND s.plays > 0
     ),
     sources_gone AS (
         DELETE FROM user_source_stats s
         USING UNNEST($3::uuid[], $4::text[]) AS k(user_id, source)
         WHERE s.user_id = ANY($7) AND s.user_id = k.user_id AND s.source = k.source
           AND s.plays = 0
     ),
     quarters_gone AS (
         DELETE FROM user_quarter_stats s
         USING UNNEST($5::uuid[], $6::timestamptz[]) AS k(user_id, quarter_start)
         WHERE s.user_id = ANY($7) AND s.user_id = k.user_id
           AND s.quarter_start = k.quarter_start AND s.plays = 0
     ),
     totals_gone AS (
         DELETE FROM user_stats u WHERE u.user_id = ANY($8) AND u.plays = 0
     )
     UPDATE user_stats u
     SET first_played_at = (SELECT p.played_at FROM plays p WHERE p.user_id = u.user_id
                            ORDER BY p.played_at ASC LIMIT 1),
         last_played_at = (SELECT p.played_at FROM plays p WHERE p.user_id = u.user_id
                           ORDER BY p.played_at DESC LIMIT 1)
     WHERE u.user_id = ANY($8) AND u.plays > 0";
