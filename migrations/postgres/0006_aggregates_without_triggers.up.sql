-- The aggregates are kept by the store's own statements (src/store/postgres/counting.rs), in the
-- same transaction as the plays they count, instead of by triggers: a database distributed by
-- user_id (Citus) runs no ordinary triggers on distributed tables, and a group commit writes many
-- listeners' plays in one statement that names them. library_drop_play_partition stays: it is
-- called by retention, not fired by a write.
DROP TRIGGER plays_count_inserted ON plays;
DROP TRIGGER plays_count_deleted ON plays;
DROP FUNCTION plays_count_inserted();
DROP FUNCTION plays_count_deleted();
