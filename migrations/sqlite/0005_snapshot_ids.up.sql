-- Each stored period snapshot gets an id, new at every rebuild, so a process can keep snapshots
-- decoded and ask the database only whether the one it holds is still the stored one. A random
-- id (not the generation) because an erased listener's periods start again from generation 0.
--
-- The table is made anew rather than altered: SQLite reads a column by walking the record, so
-- a small column behind a blob costs reading the blob's overflow pages. The small columns come
-- first, then the blobs from the smallest to the largest, and the rows leave the primary-key
-- b-tree (WITHOUT ROWID suits small rows only). Its rows are derived data: snapshots are
-- rebuilt from the plays by the first read that needs them, and a period without a row has
-- had no write since it ended, which holds for every period of an empty table.
DROP TABLE user_period_stats;
CREATE TABLE user_period_stats (
    user_id          BLOB    NOT NULL,
    period_kind      INTEGER NOT NULL CHECK (period_kind IN (1, 2)),
    period_start     INTEGER NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 0,
    built_generation INTEGER,
    snapshot_id      INTEGER,
    sources          BLOB,
    quarters         BLOB,
    tracks           BLOB,
    PRIMARY KEY (user_id, period_kind, period_start)
);
