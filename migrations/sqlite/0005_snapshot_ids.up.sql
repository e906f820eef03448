-- Each stored period snapshot gets an id, new at every rebuild, so a process can keep snapshots
-- decoded and ask the database only whether the one it holds is still the stored one. A random
-- id (not the generation) because an erased listener's periods start again from generation 0.
ALTER TABLE user_period_stats ADD COLUMN snapshot_id bigint;
-- Snapshots stored before keep being used: give them ids.
UPDATE user_period_stats SET snapshot_id = random() WHERE built_generation IS NOT NULL;
