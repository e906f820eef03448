-- Back to the table of 0004; its rows are derived data, rebuilt on demand.
DROP TABLE user_period_stats;
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
