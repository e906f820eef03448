ALTER TABLE user_period_stats DROP COLUMN snapshot_id;
