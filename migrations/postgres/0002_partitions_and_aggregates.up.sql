-- Scale: plays become range-partitioned by played_at, one partition per UTC month, and the
-- figures GetLibraryStats reports for all time are kept in aggregate tables that triggers update
-- in the same transaction as every insert and delete of plays.

-- 1. Partitioned plays. Keys keep user_id first (ready for sharding by user); played_at is in the
--    primary key because a partitioned table's unique keys must contain the partition key.
ALTER TABLE plays RENAME TO plays_unpartitioned;
ALTER TABLE plays_unpartitioned RENAME CONSTRAINT plays_pkey TO plays_unpartitioned_pkey;
ALTER INDEX plays_user_id_id RENAME TO plays_unpartitioned_user_id_id;
ALTER INDEX plays_user_track_played_at RENAME TO plays_unpartitioned_user_track_played_at;

CREATE TABLE plays (
    user_id            uuid        NOT NULL,
    played_at          timestamptz NOT NULL,
    id                 uuid        NOT NULL,
    track_id           uuid        NOT NULL,
    played_for_seconds integer     NOT NULL CHECK (played_for_seconds BETWEEN 0 AND 86400),
    completed          boolean     NOT NULL,
    source             text        NOT NULL DEFAULT '' CHECK (char_length(source) <= 50),
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plays_pkey PRIMARY KEY (user_id, played_at, id)
) PARTITION BY RANGE (played_at);
CREATE INDEX plays_user_id_id ON plays (user_id, id);
CREATE INDEX plays_user_track_played_at ON plays (user_id, track_id, played_at, id);

-- Creates the partition holding `at` (plays_YYYY_MM, UTC months) unless it exists; true when it
-- created it. The service calls it ahead of time for the coming months and before writing plays
-- into a month it has not seen (imports reach far back). Concurrent callers queue on the advisory
-- lock; the one that comes second may still not see the first one's table in its catalog cache
-- (an advisory lock does not refresh it), so a duplicate name means "already there".
CREATE FUNCTION library_ensure_play_partition(at timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := 'plays_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('library_ensure_play_partition'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF plays FOR VALUES FROM (%L) TO (%L)',
                       name, month_start, month_start + interval '1 month');
    EXCEPTION WHEN duplicate_table THEN
        RETURN false;
    END;
    RETURN true;
END
$$;

SELECT library_ensure_play_partition(month)
FROM (SELECT DISTINCT date_trunc('month', played_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month
      FROM plays_unpartitioned
      UNION
      SELECT now() + m * interval '1 month' FROM generate_series(0, 2) AS m) AS months;

INSERT INTO plays SELECT * FROM plays_unpartitioned;
DROP TABLE plays_unpartitioned;

-- 2. Aggregates, one row per (user, track), (user, source) and (user, UTC quarter hour): the
--    quarter hour is the coarsest bucket from which days in every time zone (Asia/Kathmandu is
--    +05:45) can be assembled. A row whose plays reach zero is deleted.
CREATE TABLE user_track_stats (
    user_id  uuid   NOT NULL,
    track_id uuid   NOT NULL,
    plays    bigint NOT NULL,
    seconds  bigint NOT NULL,
    CONSTRAINT user_track_stats_pkey PRIMARY KEY (user_id, track_id)
);
-- Top tracks: the first rows of this index, no sort.
CREATE INDEX user_track_stats_top ON user_track_stats (user_id, plays DESC, seconds DESC, track_id);

CREATE TABLE user_source_stats (
    user_id   uuid   NOT NULL,
    source    text   NOT NULL,
    plays     bigint NOT NULL,
    completed bigint NOT NULL,
    seconds   bigint NOT NULL,
    CONSTRAINT user_source_stats_pkey PRIMARY KEY (user_id, source)
);

CREATE TABLE user_quarter_stats (
    user_id       uuid        NOT NULL,
    quarter_start timestamptz NOT NULL,
    plays         bigint      NOT NULL,
    seconds       bigint      NOT NULL,
    CONSTRAINT user_quarter_stats_pkey PRIMARY KEY (user_id, quarter_start)
);

-- One row per listener with the all-time totals, so that GetLibraryStats reads them in one probe
-- however many tracks and monthly partitions the listener's history spans.
CREATE TABLE user_stats (
    user_id         uuid        NOT NULL,
    plays           bigint      NOT NULL,
    completed       bigint      NOT NULL,
    seconds         bigint      NOT NULL,
    tracks          bigint      NOT NULL,
    first_played_at timestamptz NOT NULL,
    last_played_at  timestamptz NOT NULL,
    CONSTRAINT user_stats_pkey PRIMARY KEY (user_id)
);

-- Statement-level triggers see all rows of a bulk insert or delete at once (transition tables),
-- so a batch of 1000 plays costs three grouped upserts, not 3000 single-row ones. ORDER BY gives
-- concurrent writers one lock order.
CREATE FUNCTION plays_count_inserted() RETURNS trigger
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

CREATE FUNCTION plays_count_deleted() RETURNS trigger
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

CREATE TRIGGER plays_count_inserted AFTER INSERT ON plays
    REFERENCING NEW TABLE AS inserted_plays FOR EACH STATEMENT EXECUTE FUNCTION plays_count_inserted();
CREATE TRIGGER plays_count_deleted AFTER DELETE ON plays
    REFERENCING OLD TABLE AS deleted_plays FOR EACH STATEMENT EXECUTE FUNCTION plays_count_deleted();

-- 3. Aggregates for the plays already stored.
INSERT INTO user_stats
SELECT user_id, count(*), count(*) FILTER (WHERE completed), sum(played_for_seconds),
       count(DISTINCT track_id), min(played_at), max(played_at)
FROM plays GROUP BY 1;
INSERT INTO user_track_stats
SELECT user_id, track_id, count(*), sum(played_for_seconds) FROM plays GROUP BY 1, 2;
INSERT INTO user_source_stats
SELECT user_id, source, count(*), count(*) FILTER (WHERE completed), sum(played_for_seconds)
FROM plays GROUP BY 1, 2;
INSERT INTO user_quarter_stats
SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch'), count(*), sum(played_for_seconds)
FROM plays GROUP BY 1, 2;

-- 4. Retention by whole months: drops one partition after taking its plays out of the aggregates
--    (dropping fires no delete trigger). Returns the number of plays dropped. The service calls it
--    only for partitions that end at or before the retention cutoff.
CREATE FUNCTION library_drop_play_partition(part regclass) RETURNS bigint
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

-- The partitions of plays with their upper bounds, for retention.
CREATE VIEW library_play_partitions AS
SELECT c.oid::regclass AS part,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz AS upper_bound
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'plays'::regclass;

