-- Aggregates for GetLibraryStats, as in PostgreSQL's 0002 (which also partitions plays; SQLite has
-- no partitions). Row triggers keep them in the same transaction as every insert and delete.
-- One row per listener with the all-time totals.
CREATE TABLE user_stats (
    user_id   BLOB    NOT NULL PRIMARY KEY,
    plays     INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    seconds   INTEGER NOT NULL,
    tracks    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE user_track_stats (
    user_id  BLOB    NOT NULL,
    track_id BLOB    NOT NULL,
    plays    INTEGER NOT NULL,
    seconds  INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX user_track_stats_top ON user_track_stats (user_id, plays DESC, seconds DESC, track_id);

CREATE TABLE user_source_stats (
    user_id   BLOB    NOT NULL,
    source    TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    seconds   INTEGER NOT NULL,
    PRIMARY KEY (user_id, source)
) WITHOUT ROWID;

-- quarter_start: microseconds since the epoch, a multiple of 15 minutes. SQLite's % truncates
-- toward zero, so the floor is written out to stay right for plays before 1970.
CREATE TABLE user_quarter_stats (
    user_id       BLOB    NOT NULL,
    quarter_start INTEGER NOT NULL,
    plays         INTEGER NOT NULL,
    seconds       INTEGER NOT NULL,
    PRIMARY KEY (user_id, quarter_start)
) WITHOUT ROWID;

CREATE TRIGGER plays_count_inserted AFTER INSERT ON plays
BEGIN
    INSERT INTO user_track_stats (user_id, track_id, plays, seconds)
    VALUES (NEW.user_id, NEW.track_id, 1, NEW.played_for_seconds)
    ON CONFLICT (user_id, track_id) DO UPDATE
        SET plays = plays + 1, seconds = seconds + excluded.seconds;
    -- After the upsert a track with one play is new to the listener.
    INSERT INTO user_stats (user_id, plays, completed, seconds, tracks)
    VALUES (NEW.user_id, 1, NEW.completed, NEW.played_for_seconds,
            (SELECT plays = 1 FROM user_track_stats
             WHERE user_id = NEW.user_id AND track_id = NEW.track_id))
    ON CONFLICT (user_id) DO UPDATE
        SET plays = plays + 1, completed = completed + excluded.completed,
            seconds = seconds + excluded.seconds, tracks = tracks + excluded.tracks;
    INSERT INTO user_source_stats (user_id, source, plays, completed, seconds)
    VALUES (NEW.user_id, NEW.source, 1, NEW.completed, NEW.played_for_seconds)
    ON CONFLICT (user_id, source) DO UPDATE
        SET plays = plays + 1, completed = completed + excluded.completed,
            seconds = seconds + excluded.seconds;
    INSERT INTO user_quarter_stats (user_id, quarter_start, plays, seconds)
    VALUES (NEW.user_id, NEW.played_at - ((NEW.played_at % 900000000) + 900000000) % 900000000, 1, NEW.played_for_seconds)
    ON CONFLICT (user_id, quarter_start) DO UPDATE
        SET plays = plays + 1, seconds = seconds + excluded.seconds;
END;

CREATE TRIGGER plays_count_deleted AFTER DELETE ON plays
BEGIN
    UPDATE user_track_stats SET plays = plays - 1, seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND track_id = OLD.track_id;
    UPDATE user_stats
    SET plays = plays - 1, completed = completed - OLD.completed,
        seconds = seconds - OLD.played_for_seconds,
        tracks = tracks - (SELECT count(*) FROM user_track_stats
                           WHERE user_id = OLD.user_id AND track_id = OLD.track_id AND plays = 0)
    WHERE user_id = OLD.user_id;
    DELETE FROM user_stats WHERE user_id = OLD.user_id AND plays = 0;
    DELETE FROM user_track_stats
    WHERE user_id = OLD.user_id AND track_id = OLD.track_id AND plays = 0;
    UPDATE user_source_stats
    SET plays = plays - 1, completed = completed - OLD.completed,
        seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND source = OLD.source;
    DELETE FROM user_source_stats
    WHERE user_id = OLD.user_id AND source = OLD.source AND plays = 0;
    UPDATE user_quarter_stats SET plays = plays - 1, seconds = seconds - OLD.played_for_seconds
    WHERE user_id = OLD.user_id AND quarter_start = OLD.played_at - ((OLD.played_at % 900000000) + 900000000) % 900000000;
    DELETE FROM user_quarter_stats
    WHERE user_id = OLD.user_id AND quarter_start = OLD.played_at - ((OLD.played_at % 900000000) + 900000000) % 900000000
      AND plays = 0;
END;

INSERT INTO user_stats
SELECT user_id, count(*), sum(completed), sum(played_for_seconds), count(DISTINCT track_id)
FROM plays GROUP BY 1;
INSERT INTO user_track_stats
SELECT user_id, track_id, count(*), sum(played_for_seconds) FROM plays GROUP BY 1, 2;
INSERT INTO user_source_stats
SELECT user_id, source, count(*), sum(completed), sum(played_for_seconds) FROM plays GROUP BY 1, 2;
INSERT INTO user_quarter_stats
SELECT user_id, played_at - ((played_at % 900000000) + 900000000) % 900000000, count(*), sum(played_for_seconds)
FROM plays GROUP BY 1, 2;
