-- The admin service's track-wide calls (DeleteTrackData, GetMostLikedTracks) look a track up
-- across every listener. These two indexes are the only ones that do not start with user_id:
-- listener queries never use them, and on a database sharded by user they are per-shard
-- indexes, each asked once per call.
CREATE INDEX user_track_stats_track ON user_track_stats (track_id, user_id);
CREATE INDEX liked_tracks_track ON liked_tracks (track_id, user_id);
