-- Back to 0003: the aggregates and triggers without counted plays or first and last plays per
-- track, and no period snapshots.
DROP TABLE user_period_stats;

CREATE OR REPLACE FUNCTION plays_count_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- xmax = 0 marks the rows the upsert inserted: the listener's new tracks.
    WITH upserted AS (
        INSERT INTO user_track_stats AS s (user_id, track_id, plays, seconds)
        SELECT user_id, track_id, count(*), sum(played_for_seconds)
        FROM inserted_plays GROUP BY user_id, track_id ORDER BY user_id, track_id
        ON CONFLICT (user_id, track_id) DO UPDATE
            SET plays = s.plays + EXCLUDED.plays, seconds = s.seconds + EXCLUDED.seconds
        RETURNING s.user_id, (s.xmax = 0) AS created
    ),
    new_tracks AS (
        SELECT user_id, count(*) FILTER (WHERE created) AS tracks FROM upserted GROUP BY user_id
    )
    INSERT INTO user_stats AS u
        (user_id, plays, completed, seconds, tracks, first_played_at, last_played_at)
    SELECT i.user_id, i.plays, i.completed, i.seconds, COALESCE(n.tracks, 0), i.first, i.last
    FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds, min(played_at) AS first, max(played_at) AS last
          FROM inserted_plays GROUP BY user_id) i
    LEFT JOIN new_tracks n USING (user_id)
    ORDER BY i.user_id
    ON CONFLICT (user_id) DO UPDATE
        SET plays = u.plays + EXCLUDED.plays, completed = u.completed + EXCLUDED.completed,
            seconds = u.seconds + EXCLUDED.seconds, tracks = u.tracks + EXCLUDED.tracks,
            first_played_at = LEAST(u.first_played_at, EXCLUDED.first_played_at),
            last_played_at = GREATEST(u.last_played_at, EXCLUDED.last_played_at);

    INSERT INTO user_source_stats AS s (user_id, source, plays, completed, seconds)
    SELECT user_id, source, count(*), count(*) FILTER (WHERE completed), sum(played_for_seconds)
    FROM inserted_plays GROUP BY user_id, source ORDER BY user_id, source
    ON CONFLICT (user_id, source) DO UPDATE
        SET plays = s.plays + EXCLUDED.plays, completed = s.completed + EXCLUDED.completed,
            seconds = s.seconds + EXCLUDED.seconds;

    INSERT INTO user_quarter_stats AS s (user_id, quarter_start, plays, seconds)
    SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q, count(*),
           sum(played_for_seconds)
    FROM inserted_plays GROUP BY user_id, q ORDER BY user_id, q
    ON CONFLICT (user_id, quarter_start) DO UPDATE
        SET plays = s.plays + EXCLUDED.plays, seconds = s.seconds + EXCLUDED.seconds;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION plays_count_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_track_stats s SET plays = s.plays - d.plays, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, track_id, count(*) AS plays, sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY user_id, track_id) d
    WHERE s.user_id = d.user_id AND s.track_id = d.track_id;
    WITH gone AS (
        DELETE FROM user_track_stats s USING (SELECT DISTINCT user_id, track_id FROM deleted_plays) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays = 0
        RETURNING s.user_id
    ),
    gone_tracks AS (SELECT user_id, count(*) AS tracks FROM gone GROUP BY user_id)
    UPDATE user_stats u
    SET plays = u.plays - d.plays, completed = u.completed - d.completed,
        seconds = u.seconds - d.seconds, tracks = u.tracks - COALESCE(g.tracks, 0)
    FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE completed) AS completed,
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
    SET plays = s.plays - d.plays, completed = s.completed - d.completed, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, source, count(*) AS plays, count(*) FILTER (WHERE completed) AS completed,
                 sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY user_id, source) d
    WHERE s.user_id = d.user_id AND s.source = d.source;
    DELETE FROM user_source_stats s USING (SELECT DISTINCT user_id, source FROM deleted_plays) d
    WHERE s.user_id = d.user_id AND s.source = d.source AND s.plays = 0;

    UPDATE user_quarter_stats s SET plays = s.plays - d.plays, seconds = s.seconds - d.seconds
    FROM (SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q,
                 count(*) AS plays, sum(played_for_seconds) AS seconds
          FROM deleted_plays GROUP BY 1, 2) d
    WHERE s.user_id = d.user_id AND s.quarter_start = d.q;
    DELETE FROM user_quarter_stats s
    USING (SELECT DISTINCT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS q
           FROM deleted_plays) d
    WHERE s.user_id = d.user_id AND s.quarter_start = d.q AND s.plays = 0;
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
        UPDATE user_track_stats s SET plays = s.plays - d.plays, seconds = s.seconds - d.seconds
        FROM (SELECT user_id, track_id, count(*) AS plays, sum(played_for_seconds) AS seconds
              FROM %s GROUP BY user_id, track_id) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id$sql$, part);
    EXECUTE format($sql$
        DELETE FROM user_track_stats s USING (SELECT DISTINCT user_id, track_id FROM %s) d
        WHERE s.user_id = d.user_id AND s.track_id = d.track_id AND s.plays = 0$sql$, part);
    EXECUTE format($sql$
        UPDATE user_source_stats s
        SET plays = s.plays - d.plays, completed = s.completed - d.completed,
            seconds = s.seconds - d.seconds
        FROM (SELECT user_id, source, count(*) AS plays, count(*) FILTER (WHERE completed) AS completed,
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
        SET plays = u.plays - d.plays, completed = u.completed - d.completed,
            seconds = u.seconds - d.seconds,
            tracks = (SELECT count(*) FROM user_track_stats t WHERE t.user_id = u.user_id)
        FROM (SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE completed) AS completed,
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
    EXECUTE format('DROP TABLE %s', part);
    RETURN dropped;
END
$$;

DROP INDEX user_track_stats_top;
CREATE INDEX user_track_stats_top ON user_track_stats (user_id, plays DESC, seconds DESC, track_id);
ALTER TABLE user_quarter_stats DROP COLUMN counted, DROP COLUMN completed;
ALTER TABLE user_source_stats DROP COLUMN counted;
ALTER TABLE user_track_stats DROP COLUMN counted, DROP COLUMN first_played_at, DROP COLUMN last_played_at;
ALTER TABLE user_stats DROP COLUMN counted;
ALTER TABLE play_requests DROP COLUMN track_duration_seconds, DROP COLUMN counted;
ALTER TABLE plays DROP COLUMN track_duration_seconds, DROP COLUMN counted;
