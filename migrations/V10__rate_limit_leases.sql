-- Scale-out (issue #16): state that every replica must see the same.

-- The shared GCRA state of each rate-limited budget ("token" or "user" and its id). Replicas
-- lease small slices of it (`tat_us` moves forward by the slice's cells); a row whose `tat_us`
-- is in the past is the same as no row, so pruning old rows is always safe.
CREATE TABLE rate_limit_leases (
    scope      text NOT NULL CHECK (scope IN ('token', 'user')),
    key        uuid NOT NULL,
    -- Theoretical arrival time, microseconds since the epoch (database clock).
    tat_us     bigint NOT NULL,
    -- The database clock at the last lease, and how many cells it granted (read back by it).
    seen_us    bigint NOT NULL,
    granted    integer NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Which token opened which upstream session at the gateway, so a replica that did not see the
-- `initialize` still serves the session to its token and refuses it to any other. The session
-- id is stored only as its SHA-256 (it is a bearer-like handle at the upstream).
CREATE TABLE gateway_sessions (
    server_id       uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    session_sha256  bytea NOT NULL CHECK (length(session_sha256) = 32),
    token_id        uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, session_sha256)
);
CREATE INDEX gateway_sessions_created ON gateway_sessions (created_at);
