-- Every key and index starts with user_id: every listener query is scoped to one user, and it
-- keeps the schema ready to be sharded by user. Users and tracks belong to other services, so
-- there are no foreign keys to them.

CREATE TABLE plays (
    user_id            uuid        NOT NULL,
    played_at          timestamptz NOT NULL,
    id                 uuid        NOT NULL,
    track_id           uuid        NOT NULL,
    played_for_seconds integer     NOT NULL CHECK (played_for_seconds BETWEEN 0 AND 86400),
    completed          boolean     NOT NULL,
    source             text        NOT NULL DEFAULT '' CHECK (char_length(source) <= 50),
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    -- played_at is in the key so that the table can be range-partitioned by it later.
    CONSTRAINT plays_pkey PRIMARY KEY (user_id, played_at, id)
);
-- DeletePlay finds a play by id alone.
CREATE INDEX plays_user_id_id ON plays (user_id, id);
-- ListHistory filtered by track.
CREATE INDEX plays_user_track_played_at ON plays (user_id, track_id, played_at, id);

-- Idempotency records (AIP-155), with a copy of the first play so that a retry returns it even
-- after the play itself was deleted.
CREATE TABLE play_requests (
    user_id            uuid        NOT NULL,
    request_id         text        NOT NULL CHECK (char_length(request_id) BETWEEN 1 AND 64),
    play_id            uuid        NOT NULL,
    track_id           uuid        NOT NULL,
    played_at          timestamptz NOT NULL,
    played_for_seconds integer     NOT NULL,
    completed          boolean     NOT NULL,
    source             text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT play_requests_pkey PRIMARY KEY (user_id, request_id)
);

CREATE TABLE liked_tracks (
    user_id    uuid        NOT NULL,
    track_id   uuid        NOT NULL,
    notes      text        NOT NULL DEFAULT '' CHECK (char_length(notes) <= 1000),
    liked_at   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT liked_tracks_pkey PRIMARY KEY (user_id, track_id)
);
-- ListLikedTracks: newest first.
CREATE INDEX liked_tracks_user_liked_at ON liked_tracks (user_id, liked_at, track_id);
