-- Statistics for any period. Plays say whether they count (decided when written, by the
-- server's rule, and stored); every aggregate counts them beside all plays; per-track aggregates
-- know their first and last play; and each listener's finished UTC days and months can hold a
-- snapshot of their figures (per track, per source, per quarter hour), which the service builds
-- when first asked and which every later write into that period marks stale.

-- 1. Plays. Existing plays are classified by the default rule without a duration: a play counts
--    when it completed or lasted at least 240 s.
ALTER TABLE plays
    ADD COLUMN track_duration_seconds integer CHECK (track_duration_seconds BETWEEN 1 AND 86400),
    ADD COLUMN counted boolean NOT NULL DEFAULT false;
UPDATE plays SET counted = completed OR played_for_seconds >= 240;
ALTER TABLE play_requests
    ADD COLUMN track_duration_seconds integer,
    ADD COLUMN counted boolean NOT NULL DEFAULT false;
UPDATE play_requests SET counted = completed OR played_for_seconds >= 240;

-- 2. Aggregates count the plays that count, and per track the first and last play.
ALTER TABLE user_stats ADD COLUMN counted bigint NOT NULL DEFAULT 0;
UPDATE user_stats s SET counted = c.n
FROM (SELECT user_id, count(*) FILTER (WHERE counted) AS n FROM plays GROUP BY user_id) c
WHERE s.user_id = c.user_id;

ALTER TABLE user_track_stats
    ADD COLUMN counted bigint NOT NULL DEFAULT 0,
    ADD COLUMN first_played_at timestamptz,
    ADD COLUMN last_played_at timestamptz;
UPDATE user_track_stats s SET counted = c.n, first_played_at = c.lo, last_played_at = c.hi
FROM (SELECT user_id, track_id, count(*) FILTER (WHERE counted) AS n, min(played_at) AS lo,
             max(played_at) AS hi
      FROM plays GROUP BY user_id, track_id) c
WHERE s.user_id = c.user_id AND s.track_id = c.track_id;
ALTER TABLE user_track_stats
    ALTER COLUMN first_played_at SET NOT NULL,
    ALTER COLUMN last_played_at SET NOT NULL;
-- Top tracks rank by counted plays first.
DROP INDEX user_track_stats_top;
CREATE INDEX user_track_stats_top
    ON user_track_stats (user_id, counted DESC, plays DESC, seconds DESC, track_id);

ALTER TABLE user_source_stats ADD COLUMN counted bigint NOT NULL DEFAULT 0;
UPDATE user_source_stats s SET counted = c.n
FROM (SELECT user_id, source, count(*) FILTER (WHERE counted) AS n FROM plays GROUP BY 1, 2) c
WHERE s.user_id = c.user_id AND s.source = c.source;

ALTER TABLE user_quarter_stats
    ADD COLUMN counted bigint NOT NULL DEFAULT 0,
    ADD COLUMN completed bigint NOT NULL DEFAULT 0;
UPDATE user_quarter_stats s SET counted = c.n, completed = c.done
FROM (SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q,
             count(*) FILTER (WHERE counted) AS n, count(*) FILTER (WHERE completed) AS done
      FROM plays GROUP BY 1, 2) c
WHERE s.user_id = c.user_id AND s.quarter_start = c.q;

-- 3. Snapshots of finished periods. `generation` counts the writes into the period once it was
--    over (the triggers below bump it, so every write path does); a snapshot is valid while
--    `built_generation` equals it. kind 1 is a UTC day, 2 a UTC
--    month. The blobs are the service's own format (src/store/snapshot.rs); they are stored
--    uncompressed (EXTERNAL): they are read far more often than written and barely compress.
CREATE TABLE user_period_stats (
    user_id          uuid        NOT NULL,
    period_kind      smallint    NOT NULL CHECK (period_kind IN (1, 2)),
    period_start     timestamptz NOT NULL,
    generation       bigint      NOT NULL DEFAULT 0,
    built_generation bigint,
    tracks           bytea,
    sources          bytea,
    quarters         bytea,
    CONSTRAINT user_period_stats_pkey PRIMARY KEY (user_id, period_kind, period_start)
);
ALTER TABLE user_period_stats
    ALTER COLUMN tracks SET STORAGE EXTERNAL,
    ALTER COLUMN sources SET STORAGE EXTERNAL,
    ALTER COLUMN quarters SET STORAGE EXTERNAL;

-- 4. The triggers of 0002, counting the new columns.
CREATE OR REPLACE FUNCTION plays_count_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- xmax = 0 marks the rows the upsert inserted: the listener's new tracks.
    WITH upserted AS (
        INSERT INTO user_track_stats AS s
            (user_id, track_id, plays, counted, seconds, first_played_at, last_played_at)
        SELECT user_id, track_id, count(*), count(*) FILTER (WHERE counted),
               sum(played_for_seconds), min(played_at), max(played_at)
        FROM inserted_plays GROUP BY user_id, track_id ORDER BY user_id, track_id
        ON CONFLICT (user_id, track_id) DO UPDATE
            SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
                seconds = s.seconds + EXCLUDED.seconds,
                first_played_at = LEAST(s.first_played_at, EXCLUDED.first_played_at),
                last_played_at = GREATEST(s.last_played_at, EXCLUDED.last_played_at)
        RETURNING s.user_id, (s.xmax = 0) AS created
    ),
    new_tracks AS (
        SELECT user_id, count(*) FILTER (WHERE created) AS tracks FROM upserted GROUP BY user_id
    )
    INSERT INTO user_stats AS u
        (user_id, plays, counted, completed, seconds, tracks, first_played_at, last_played_at)
    SELECT i.user_id, i.plays, i.counted, i.completed, i.seconds, COALESCE(n.tracks, 0), i.first,
           i.last
    FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                 count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds, min(played_at) AS first, max(played_at) AS last
          FROM inserted_plays GROUP BY user_id) i
    LEFT JOIN new_tracks n USING (user_id)
    ORDER BY i.user_id
    ON CONFLICT (user_id) DO UPDATE
        SET plays = u.plays + EXCLUDED.plays, counted = u.counted + EXCLUDED.counted,
            completed = u.completed + EXCLUDED.completed,
            seconds = u.seconds + EXCLUDED.seconds, tracks = u.tracks + EXCLUDED.tracks,
            first_played_at = LEAST(u.first_played_at, EXCLUDED.first_played_at),
            last_played_at = GREATEST(u.last_played_at, EXCLUDED.last_played_at);

    INSERT INTO user_source_stats AS s (user_id, source, plays, counted, completed, seconds)
    SELECT user_id, source, count(*), count(*) FILTER (WHERE counted),
           count(*) FILTER (WHERE completed), sum(played_for_seconds)
    FROM inserted_plays GROUP BY user_id, source ORDER BY user_id, source
    ON CONFLICT (user_id, source) DO UPDATE
        SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
            completed = s.completed + EXCLUDED.completed, seconds = s.seconds + EXCLUDED.seconds;

    INSERT INTO user_quarter_stats AS s (user_id, quarter_start, plays, counted, completed, seconds)
    SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q, count(*),
           count(*) FILTER (WHERE counted), count(*) FILTER (WHERE completed),
           sum(played_for_seconds)
    FROM inserted_plays GROUP BY user_id, q ORDER BY user_id, q
    ON CONFLICT (user_id, quarter_start) DO UPDATE
        SET plays = s.plays + EXCLUDED.plays, counted = s.counted + EXCLUDED.counted,
            completed = s.completed + EXCLUDED.completed, seconds = s.seconds + EXCLUDED.seconds;
    -- The snapshots of finished days and months this statement changes are stale from now on.
    -- Live plays are today's, so the usual statement skips this after one pass over its rows.
    IF NOT EXISTS (SELECT 1 FROM inserted_plays
                   WHERE played_at < date_bin('1 day', now(), timestamptz 'epoch')) THEN
        RETURN NULL;
    END IF;
    WITH days AS (
        SELECT DISTINCT user_id, date_bin('1 day', played_at, timestamptz 'epoch') AS day
        FROM inserted_plays
        WHERE played_at < date_bin('1 day', now(), timestamptz 'epoch')
    ),
    periods AS (
        SELECT user_id, 1::smallint AS kind, day AS start FROM days
        UNION
        SELECT user_id, 2::smallint, date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM days
    )
    INSERT INTO user_period_stats AS s (user_id, period_kind, period_start, generation)
    SELECT user_id, kind, start, 1::bigint FROM periods
    WHERE kind = 1 OR (start AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC' <= now()
    ORDER BY 1, 2, 3
    ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
    SET generation = s.generation + 1, built_generation = NULL,
        tracks = NULL, sources = NULL, quarters = NULL;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION plays_count_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_track_stats s
    SET plays = s.plays - d.plays, counted = s.counted - d.counted, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, track_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                 sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY user_id, track_id) d
    WHERE s.user_id = d.user_id AND s.track_id = d.track_id;
    -- A track's first or last play went: find its new ends (index probes, only those tracks).
    UPDATE user_track_stats s
    SET first_played_at = (SELECT played_at FROM plays p
                           WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                           ORDER BY played_at ASC LIMIT 1),
        last_played_at = (SELECT played_at FROM plays p
                          WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                          ORDER BY played_at DESC LIMIT 1)
    FROM (SELECT user_id, track_id, min(played_at) AS lo, max(played_at) AS hi
          FROM deleted_plays GROUP BY user_id, track_id) d
    WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays > 0
      AND (d.lo <= s.first_played_at OR d.hi >= s.last_played_at);
    WITH gone AS (
        DELETE FROM user_track_stats s USING (SELECT DISTINCT user_id, track_id FROM deleted_plays) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays = 0
        RETURNING s.user_id
    ),
    gone_tracks AS (SELECT user_id, count(*) AS tracks FROM gone GROUP BY user_id)
    UPDATE user_stats u
    SET plays = u.plays - d.plays, counted = u.counted - d.counted,
        completed = u.completed - d.completed,
        seconds = u.seconds - d.seconds, tracks = u.tracks - COALESCE(g.tracks, 0)
    FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                 count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY user_id) d
    LEFT JOIN gone_tracks g USING (user_id)
    WHERE u.user_id = d.user_id;
    DELETE FROM user_stats u USING (SELECT DISTINCT user_id FROM deleted_plays) d
    WHERE u.user_id = d.user_id AND u.plays = 0;
    -- The first or last play went: find the new ends (index probes, only for those listeners).
    UPDATE user_stats u
    SET first_played_at = (SELECT played_at FROM plays p WHERE p.user_id = u.user_id
                           ORDER BY played_at ASC LIMIT 1),
        last_played_at = (SELECT played_at FROM plays p WHERE p.user_id = u.user_id
                          ORDER BY played_at DESC LIMIT 1)
    FROM (SELECT user_id, min(played_at) AS lo, max(played_at) AS hi
          FROM deleted_plays GROUP BY user_id) d
    WHERE u.user_id = d.user_id AND (d.lo <= u.first_played_at OR d.hi >= u.last_played_at);

    UPDATE user_source_stats s
    SET plays = s.plays - d.plays, counted = s.counted - d.counted,
        completed = s.completed - d.completed, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, source, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                 count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY user_id, source) d
    WHERE s.user_id = d.user_id AND s.source = d.source;
    DELETE FROM user_source_stats s USING (SELECT DISTINCT user_id, source FROM deleted_plays) d
    WHERE s.user_id = d.user_id AND s.source = d.source AND s.plays = 0;

    UPDATE user_quarter_stats s
    SET plays = s.plays - d.plays, counted = s.counted - d.counted,
        completed = s.completed - d.completed, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q,
                 count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                 count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY 1, 2) d
    WHERE s.user_id = d.user_id AND s.quarter_start = d.q;
    DELETE FROM user_quarter_stats s
    USING (SELECT DISTINCT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q
           FROM deleted_plays) d
    WHERE s.user_id = d.user_id AND s.quarter_start = d.q AND s.plays = 0;
    -- The snapshots of finished days and months this statement changes are stale from now on.
    WITH days AS (
        SELECT DISTINCT user_id, date_bin('1 day', played_at, timestamptz 'epoch') AS day
        FROM deleted_plays
        WHERE played_at < date_bin('1 day', now(), timestamptz 'epoch')
    ),
    periods AS (
        SELECT user_id, 1::smallint AS kind, day AS start FROM days
        UNION
        SELECT user_id, 2::smallint, date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM days
    )
    INSERT INTO user_period_stats AS s (user_id, period_kind, period_start, generation)
    SELECT user_id, kind, start, 1::bigint FROM periods
    WHERE kind = 1 OR (start AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC' <= now()
    ORDER BY 1, 2, 3
    ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
    SET generation = s.generation + 1, built_generation = NULL,
        tracks = NULL, sources = NULL, quarters = NULL;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION library_drop_play_partition(part regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    dropped bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', part) INTO dropped;
    EXECUTE format($sql$
        UPDATE user_track_stats s
        SET plays = s.plays - d.plays, counted = s.counted - d.counted,
            seconds = s.seconds - d.seconds
        FROM (SELECT user_id, track_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                     sum(played_for_seconds) AS seconds
              FROM %s GROUP BY user_id, track_id) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id$sql$, part);
    EXECUTE format($sql$
        UPDATE user_track_stats s
        SET first_played_at = (SELECT played_at FROM plays p
                               WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                                 AND p.tableoid <> %1$L::regclass
                               ORDER BY played_at ASC LIMIT 1),
            last_played_at = (SELECT played_at FROM plays p
                              WHERE p.user_id = s.user_id AND p.track_id = s.track_id
                                AND p.tableoid <> %1$L::regclass
                              ORDER BY played_at DESC LIMIT 1)
        FROM (SELECT DISTINCT user_id, track_id FROM %1$s) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays > 0$sql$, part);
    EXECUTE format($sql$
        DELETE FROM user_track_stats s USING (SELECT DISTINCT user_id, track_id FROM %s) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays = 0$sql$, part);
    EXECUTE format($sql$
        UPDATE user_source_stats s
        SET plays = s.plays - d.plays, counted = s.counted - d.counted,
            completed = s.completed - d.completed, seconds = s.seconds - d.seconds
        FROM (SELECT user_id, source, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                     count(*) FILTER (WHERE completed) AS completed,
                     sum(played_for_seconds) AS seconds
              FROM %s GROUP BY user_id, source) d
        WHERE s.user_id = d.user_id AND s.source = d.source$sql$, part);
    EXECUTE format($sql$
        DELETE FROM user_source_stats s USING (SELECT DISTINCT user_id, source FROM %s) d
        WHERE s.user_id = d.user_id AND s.source = d.source AND s.plays = 0$sql$, part);
    -- A month is whole quarter hours: its quarter-hour rows go entirely.
    EXECUTE format($sql$
        DELETE FROM user_quarter_stats s
        USING (SELECT DISTINCT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q
               FROM %s) d
        WHERE s.user_id = d.user_id AND s.quarter_start = d.q$sql$, part);
    EXECUTE format($sql$
        UPDATE user_stats u
        SET plays = u.plays - d.plays, counted = u.counted - d.counted,
            completed = u.completed - d.completed, seconds = u.seconds - d.seconds,
            tracks = (SELECT count(*) FROM user_track_stats t WHERE t.user_id = u.user_id)
        FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                     count(*) FILTER (WHERE completed) AS completed,
                     sum(played_for_seconds) AS seconds
              FROM %s GROUP BY user_id) d
        WHERE u.user_id = d.user_id$sql$, part);
    EXECUTE format($sql$
        DELETE FROM user_stats u USING (SELECT DISTINCT user_id FROM %s) d
        WHERE u.user_id = d.user_id AND u.plays = 0$sql$, part);
    EXECUTE format($sql$
        UPDATE user_stats u
        SET first_played_at = (SELECT played_at FROM plays p
                               WHERE p.user_id = u.user_id AND p.tableoid <> %1$L::regclass
                               ORDER BY played_at ASC LIMIT 1),
            last_played_at = (SELECT played_at FROM plays p
                              WHERE p.user_id = u.user_id AND p.tableoid <> %1$L::regclass
                              ORDER BY played_at DESC LIMIT 1)
        FROM (SELECT DISTINCT user_id FROM %1$s) d
        WHERE u.user_id = d.user_id$sql$, part);
    -- Every day and month the partition held is stale, and no snapshot of its plays is kept.
    EXECUTE format($sql$
        UPDATE user_period_stats s
        SET generation = s.generation + 1, built_generation = NULL,
            tracks = NULL, sources = NULL, quarters = NULL
        FROM (SELECT user_id, min(played_at) AS lo, max(played_at) AS hi FROM %s GROUP BY user_id) d
        WHERE s.user_id = d.user_id
          AND s.period_start >= date_trunc('month', d.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
          AND s.period_start <= d.hi$sql$, part);
    EXECUTE format('DROP TABLE %s', part);
    RETURN dropped;
END
$$;
