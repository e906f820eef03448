DROP INDEX user_track_stats_track;
DROP INDEX liked_tracks_track;
