-- As PostgreSQL's 0004: plays say whether they count, the aggregates count them, per-track
-- aggregates know their first and last play, and finished UTC days and months can hold a
-- snapshot of their figures. Existing plays are classified by the default rule without a
-- duration: a play counts when it completed or lasted at least 240 s.
ALTER TABLE plays ADD COLUMN track_duration_seconds INTEGER
    CHECK (track_duration_seconds BETWEEN 1 AND 86400);
ALTER TABLE plays ADD COLUMN counted INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1));
UPDATE plays SET counted = (completed = 1 OR played_for_seconds >= 240);
ALTER TABLE play_requests ADD COLUMN track_duration_seconds INTEGER;
ALTER TABLE play_requests ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
UPDATE play_requests SET counted = (completed = 1 OR played_for_seconds >= 240);

ALTER TABLE user_stats ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
UPDATE user_stats SET counted =
    (SELECT count(*) FROM plays p WHERE p.user_id = user_stats.user_id AND p.counted = 1);

ALTER TABLE user_track_stats ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_track_stats ADD COLUMN first_played_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_track_stats ADD COLUMN last_played_at INTEGER NOT NULL DEFAULT 0;
UPDATE user_track_stats SET
    counted = (SELECT count(*) FROM plays p WHERE p.user_id = user_track_stats.user_id
               AND p.track_id = user_track_stats.track_id AND p.counted = 1),
    first_played_at = (SELECT min(played_at) FROM plays p WHERE p.user_id = user_track_stats.user_id
                       AND p.track_id = user_track_stats.track_id),
    last_played_at = (SELECT max(played_at) FROM plays p WHERE p.user_id = user_track_stats.user_id
                      AND p.track_id = user_track_stats.track_id);
DROP INDEX user_track_stats_top;
CREATE INDEX user_track_stats_top
    ON user_track_stats (user_id, counted DESC, plays DESC, seconds DESC, track_id);

ALTER TABLE user_source_stats ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
UPDATE user_source_stats SET counted =
    (SELECT count(*) FROM plays p WHERE p.user_id = user_source_stats.user_id
     AND p.source = user_source_stats.source AND p.counted = 1);

ALTER TABLE user_quarter_stats ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_quarter_stats ADD COLUMN completed INTEGER NOT NULL DEFAULT 0;
UPDATE user_quarter_stats SET
    counted = (SELECT count(*) FROM plays p WHERE p.user_id = user_quarter_stats.user_id
               AND p.played_at >= user_quarter_stats.quarter_start
               AND p.played_at < user_quarter_stats.quarter_start + 900000000 AND p.counted = 1),
    completed = (SELECT count(*) FROM plays p WHERE p.user_id = user_quarter_stats.user_id
                 AND p.played_at >= user_quarter_stats.quarter_start
                 AND p.played_at < user_quarter_stats.quarter_start + 900000000 AND p.completed = 1);

-- period_kind 1 is a UTC day, 2 a UTC month; period_start is microseconds since the epoch.
CREATE TABLE user_period_stats (
    user_id          BLOB    NOT NULL,
    period_kind      INTEGER NOT NULL CHECK (period_kind IN (1, 2)),
    period_start     INTEGER NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 0,
    built_generation INTEGER,
    tracks           BLOB,
    sources          BLOB,
    quarters         BLOB,
    PRIMARY KEY (user_id, period_kind, period_start)
) WITHOUT ROWID;

DROP TRIGGER plays_count_inserted;
DROP TRIGGER plays_count_deleted;

CREATE TRIGGER plays_count_inserted AFTER INSERT ON plays
BEGIN
    INSERT INTO user_track_stats
        (user_id, track_id, plays, counted, seconds, first_played_at, last_played_at)
    VALUES (NEW.user_id, NEW.track_id, 1, NEW.counted, NEW.played_for_seconds, NEW.played_at,
            NEW.played_at)
    ON CONFLICT (user_id, track_id) DO UPDATE
        SET plays = plays + 1, counted = counted + excluded.counted,
            seconds = seconds + excluded.seconds,
            first_played_at = min(first_played_at, excluded.first_played_at),
            last_played_at = max(last_played_at, excluded.last_played_at);
    -- After the upsert a track with one play is new to the listener.
    INSERT INTO user_stats (user_id, plays, counted, completed, seconds, tracks)
    VALUES (NEW.user_id, 1, NEW.counted, NEW.completed, NEW.played_for_seconds,
            (SELECT plays = 1 FROM user_track_stats
             WHERE user_id = NEW.user_id AND track_id = NEW.track_id))
    ON CONFLICT (user_id) DO UPDATE
        SET plays = plays + 1, counted = counted + excluded.counted,
            completed = completed + excluded.completed,
            seconds = seconds + excluded.seconds, tracks = tracks + excluded.tracks;
    INSERT INTO user_source_stats (user_id, source, plays, counted, completed, seconds)
    VALUES (NEW.user_id, NEW.source, 1, NEW.counted, NEW.completed, NEW.played_for_seconds)
    ON CONFLICT (user_id, source) DO UPDATE
        SET plays = plays + 1, counted = counted + excluded.counted,
            completed = completed + excluded.completed, seconds = seconds + excluded.seconds;
    INSERT INTO user_quarter_stats (user_id, quarter_start, plays, counted, completed, seconds)
    VALUES (NEW.user_id, NEW.played_at - ((NEW.played_at % 900000000) + 900000000) % 900000000, 1,
            NEW.counted, NEW.completed, NEW.played_for_seconds)
    ON CONFLICT (user_id, quarter_start) DO UPDATE
        SET plays = plays + 1, counted = counted + excluded.counted,
            completed = completed + excluded.completed, seconds = seconds + excluded.seconds;
    -- The snapshots of the finished days and months a write adds plays to are marked stale by
    -- the store's insert (SqliteStore::record_plays, the only one), once per period and
    -- statement: a row trigger would do it once per play.
END;

CREATE TRIGGER plays_count_deleted AFTER DELETE ON plays
BEGIN
    UPDATE user_track_stats
    SET plays = plays - 1, counted = counted - OLD.counted, seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND track_id = OLD.track_id;
    -- The track's first or last play went: find its new ends (index probes).
    UPDATE user_track_stats
    SET first_played_at = (SELECT min(played_at) FROM plays
                           WHERE user_id = OLD.user_id AND track_id = OLD.track_id),
        last_played_at = (SELECT max(played_at) FROM plays
                          WHERE user_id = OLD.user_id AND track_id = OLD.track_id)
    WHERE user_id = OLD.user_id AND track_id = OLD.track_id AND plays > 0
      AND (OLD.played_at <= first_played_at OR OLD.played_at >= last_played_at);
    UPDATE user_stats
    SET plays = plays - 1, counted = counted - OLD.counted, completed = completed - OLD.completed,
        seconds = seconds - OLD.played_for_seconds,
        tracks = tracks - (SELECT count(*) FROM user_track_stats
                           WHERE user_id = OLD.user_id AND track_id = OLD.track_id AND plays = 0)
    WHERE user_id = OLD.user_id;
    DELETE FROM user_stats WHERE user_id = OLD.user_id AND plays = 0;
    DELETE FROM user_track_stats
    WHERE user_id = OLD.user_id AND track_id = OLD.track_id AND plays = 0;
    UPDATE user_source_stats
    SET plays = plays - 1, counted = counted - OLD.counted, completed = completed - OLD.completed,
        seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND source = OLD.source;
    DELETE FROM user_source_stats
    WHERE user_id = OLD.user_id AND source = OLD.source AND plays = 0;
    UPDATE user_quarter_stats
    SET plays = plays - 1, counted = counted - OLD.counted, completed = completed - OLD.completed,
        seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND quarter_start = OLD.played_at - ((OLD.played_at % 900000000) + 900000000) % 900000000;
    DELETE FROM user_quarter_stats
    WHERE user_id = OLD.user_id AND quarter_start = OLD.played_at - ((OLD.played_at % 900000000) + 900000000) % 900000000
      AND plays = 0;
    -- The snapshots of the finished day and month this play belongs to are stale from now on.
    INSERT INTO user_period_stats (user_id, period_kind, period_start, generation)
    SELECT OLD.user_id, 1, OLD.played_at - ((OLD.played_at % 86400000000) + 86400000000) % 86400000000, 1
    WHERE OLD.played_at - ((OLD.played_at % 86400000000) + 86400000000) % 86400000000 + 86400000000 <= CAST(strftime('%s', 'now') AS INTEGER) * 1000000
    ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
    SET generation = generation + 1, built_generation = NULL,
        tracks = NULL, sources = NULL, quarters = NULL;
    INSERT INTO user_period_stats (user_id, period_kind, period_start, generation)
    SELECT OLD.user_id, 2, CAST(strftime('%s', OLD.played_at / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000, 1
    WHERE CAST(strftime('%s', OLD.played_at / 1000000, 'unixepoch', 'start of month', '+1 month') AS INTEGER) * 1000000 <= CAST(strftime('%s', 'now') AS INTEGER) * 1000000
    ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
    SET generation = generation + 1, built_generation = NULL,
        tracks = NULL, sources = NULL, quarters = NULL;
END;
