-- Browser sign-in sessions. Only the SHA-256 of the session id is kept, so a copy of this
-- table cannot be replayed as cookies.
CREATE TABLE sessions (
    id_sha256  bytea PRIMARY KEY CHECK (length(id_sha256) = 32),
    user_id    uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
    ip         text
);
-- Expired sessions are swept by expiry.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
