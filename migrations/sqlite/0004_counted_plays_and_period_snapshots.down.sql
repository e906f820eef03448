-- Back to 0003: the aggregates and triggers of 0002, no period snapshots.
DROP TABLE user_period_stats;
DROP TRIGGER plays_count_inserted;
DROP TRIGGER plays_count_deleted;
DROP INDEX user_track_stats_top;
CREATE INDEX user_track_stats_top ON user_track_stats (user_id, plays DESC, seconds DESC, track_id);
ALTER TABLE user_quarter_stats DROP COLUMN counted;
ALTER TABLE user_quarter_stats DROP COLUMN completed;
ALTER TABLE user_source_stats DROP COLUMN counted;
ALTER TABLE user_track_stats DROP COLUMN counted;
ALTER TABLE user_track_stats DROP COLUMN first_played_at;
ALTER TABLE user_track_stats DROP COLUMN last_played_at;
ALTER TABLE user_stats DROP COLUMN counted;
ALTER TABLE play_requests DROP COLUMN track_duration_seconds;
ALTER TABLE play_requests DROP COLUMN counted;
ALTER TABLE plays DROP COLUMN track_duration_seconds;
ALTER TABLE plays DROP COLUMN counted;

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
