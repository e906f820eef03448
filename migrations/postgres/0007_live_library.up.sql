-- The live library (WatchLibrary, now playing).
--
-- Every change to a listener's library appends a row to `library_events` in the transaction
-- that makes it, numbered by the listener's counter in `library_event_heads`. The counter row
-- stays locked until commit, so one listener's events commit in the order of their numbers with
-- no gaps: a watcher that has seen event n has seen every event before it, on any replica. A
-- row of recorded plays holds all the plays one group commit stored for that listener. Rows
-- are kept for a while (--event-retention) so that a watcher can resume from its cursor.
CREATE TABLE library_event_heads (
    user_id uuid   PRIMARY KEY,
    seq     bigint NOT NULL
);

CREATE TABLE library_events (
    user_id uuid        NOT NULL,
    seq     bigint      NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    smallint    NOT NULL,
    body    text        NOT NULL,
    PRIMARY KEY (user_id, seq)
);
-- For trimming by age.
CREATE INDEX library_events_at ON library_events (at);

-- What each of a listener's devices is playing. A row past `expires_at` is ignored by reads
-- and deleted by the periodic tidy-up.
CREATE TABLE now_playing (
    user_id                uuid        NOT NULL,
    device_id              text        NOT NULL,
    playback_id            text        NOT NULL,
    track_id               uuid        NOT NULL,
    state                  smallint    NOT NULL,
    position_seconds       integer     NOT NULL,
    track_duration_seconds integer,
    source                 text        NOT NULL,
    started_at             timestamptz NOT NULL,
    reported_at            timestamptz NOT NULL,
    expires_at             timestamptz NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
