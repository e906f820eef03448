-- Same shape as the PostgreSQL schema. UUIDs are 16-byte BLOBs (so they sort like PostgreSQL's
-- uuid), times are INTEGER microseconds since the Unix epoch (PostgreSQL's precision), booleans
-- are 0/1.

CREATE TABLE plays (
    user_id            BLOB    NOT NULL,
    played_at          INTEGER NOT NULL,
    id                 BLOB    NOT NULL,
    track_id           BLOB    NOT NULL,
    played_for_seconds INTEGER NOT NULL CHECK (played_for_seconds BETWEEN 0 AND 86400),
    completed          INTEGER NOT NULL CHECK (completed IN (0, 1)),
    source             TEXT    NOT NULL DEFAULT '' CHECK (length(source) <= 50),
    recorded_at        INTEGER NOT NULL,
    PRIMARY KEY (user_id, played_at, id)
) WITHOUT ROWID;
CREATE INDEX plays_user_id_id ON plays (user_id, id);
CREATE INDEX plays_user_track_played_at ON plays (user_id, track_id, played_at, id);

CREATE TABLE play_requests (
    user_id            BLOB    NOT NULL,
    request_id         TEXT    NOT NULL,
    play_id            BLOB    NOT NULL,
    track_id           BLOB    NOT NULL,
    played_at          INTEGER NOT NULL,
    played_for_seconds INTEGER NOT NULL,
    completed          INTEGER NOT NULL,
    source             TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (user_id, request_id)
) WITHOUT ROWID;

CREATE TABLE liked_tracks (
    user_id    BLOB    NOT NULL,
    track_id   BLOB    NOT NULL,
    notes      TEXT    NOT NULL DEFAULT '' CHECK (length(notes) <= 1000),
    liked_at   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX liked_tracks_user_liked_at ON liked_tracks (user_id, liked_at, track_id);
