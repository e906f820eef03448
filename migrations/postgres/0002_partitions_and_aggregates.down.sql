-- Back to one unpartitioned plays table without aggregates. Every play is kept.
DROP TRIGGER plays_count_inserted ON plays;
DROP TRIGGER plays_count_deleted ON plays;
DROP FUNCTION plays_count_inserted();
DROP FUNCTION plays_count_deleted();
DROP FUNCTION library_drop_play_partition(regclass);
DROP VIEW library_play_partitions;
DROP TABLE user_stats;
DROP TABLE user_track_stats;
DROP TABLE user_source_stats;
DROP TABLE user_quarter_stats;

ALTER TABLE plays RENAME TO plays_partitioned;
ALTER TABLE plays_partitioned RENAME CONSTRAINT plays_pkey TO plays_partitioned_pkey;
ALTER INDEX plays_user_id_id RENAME TO plays_partitioned_user_id_id;
ALTER INDEX plays_user_track_played_at RENAME TO plays_partitioned_user_track_played_at;

CREATE TABLE plays (
    user_id            uuid        NOT NULL,
    played_at          timestamptz NOT NULL,
    id                 uuid        NOT NULL,
    track_id           uuid        NOT NULL,
    played_for_seconds integer     NOT NULL CHECK (played_for_seconds BETWEEN 0 AND 86400),
    completed          boolean     NOT NULL,
    source             text        NOT NULL DEFAULT '' CHECK (char_length(source) <= 50),
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plays_pkey PRIMARY KEY (user_id, played_at, id)
);
CREATE INDEX plays_user_id_id ON plays (user_id, id);
CREATE INDEX plays_user_track_played_at ON plays (user_id, track_id, played_at, id);

INSERT INTO plays SELECT * FROM plays_partitioned;
-- Dropping the partitioned table drops its partitions.
DROP TABLE plays_partitioned;
DROP FUNCTION library_ensure_play_partition(timestamptz);
