-- The live library (WatchLibrary, now playing); see migrations/postgres/0007_live_library.up.sql.
-- SQLite has one writer, so a listener's events are numbered and committed in order anyway.
CREATE TABLE library_event_heads (
    user_id BLOB    PRIMARY KEY,
    seq     INTEGER NOT NULL
);

CREATE TABLE library_events (
    user_id BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX library_events_at ON library_events (at);

CREATE TABLE now_playing (
    user_id                BLOB    NOT NULL,
    device_id              TEXT    NOT NULL,
    playback_id            TEXT    NOT NULL,
    track_id               BLOB    NOT NULL,
    state                  INTEGER NOT NULL,
    position_seconds       INTEGER NOT NULL,
    track_duration_seconds INTEGER,
    source                 TEXT    NOT NULL,
    started_at             INTEGER NOT NULL,
    reported_at            INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
