-- Back to the triggers of 0004 (the aggregates are right either way: the store's statements
-- and the triggers count the same plays the same way).
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

CREATE TRIGGER plays_count_inserted AFTER INSERT ON plays
    REFERENCING NEW TABLE AS inserted_plays FOR EACH STATEMENT EXECUTE FUNCTION plays_count_inserted();
CREATE TRIGGER plays_count_deleted AFTER DELETE ON plays
    REFERENCING OLD TABLE AS deleted_plays FOR EACH STATEMENT EXECUTE FUNCTION plays_count_deleted();
