DROP TRIGGER plays_count_inserted;
DROP TRIGGER plays_count_deleted;
DROP TABLE user_stats;
DROP TABLE user_track_stats;
DROP TABLE user_source_stats;
DROP TABLE user_quarter_stats;
