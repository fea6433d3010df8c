-- Tessera's initial schema. Released migrations are never edited: add V2__..., V3__... instead.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    -- argon2id PHC string; NULL means the account cannot sign in with a password.
    password_hash text,
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
-- Emails are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE tokens (
    id                  uuid PRIMARY KEY,          -- the JWT's jti (UUIDv7)
    user_id             uuid NOT NULL REFERENCES users (id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description         text CHECK (length(description) <= 1000),
    scopes              text[] NOT NULL,
    audience            text[] NOT NULL,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL CHECK (expires_at > created_at),
    rate_limit_per_hour integer CHECK (rate_limit_per_hour BETWEEN 1 AND 1000000),
    last_used_at        timestamptz,
    last_used_from      text,
    rotated_from        uuid REFERENCES tokens (id),
    replaced_by         uuid REFERENCES tokens (id),
    -- Only the SHA-256 of the secret is kept; the secret itself is never stored.
    token_sha256        bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    kid                 text NOT NULL
);
-- Keyset pagination walks a user's tokens newest first.
CREATE INDEX tokens_user_page ON tokens (user_id, id DESC);

-- Revocation is a row, never a delete. A rotation is a revocation whose effect waits
-- for the grace period to end.
CREATE TABLE revocations (
    token_id     uuid PRIMARY KEY REFERENCES tokens (id),
    kind         text NOT NULL CHECK (kind IN ('revoked', 'rotated')),
    revoked_at   timestamptz NOT NULL,
    revoked_by   uuid REFERENCES users (id),
    reason       text CHECK (length(reason) <= 500),
    effective_at timestamptz NOT NULL
);

CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    alg         text NOT NULL CHECK (alg = 'EdDSA'),
    -- Private key material lives only here and in the servers' memory.
    private_key bytea NOT NULL,
    public_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    -- A retired key no longer signs but still verifies the tokens it signed.
    retired_at  timestamptz
);
-- Exactly one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE usage_hourly (
    token_id uuid NOT NULL REFERENCES tokens (id),
    hour     timestamptz NOT NULL,
    method   text NOT NULL,     -- MCP method, or the tool's name for tools/call
    outcome  text NOT NULL CHECK (outcome IN ('ok', 'error', '401', '403', '429')),
    count    bigint NOT NULL CHECK (count >= 0),
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (token_id, hour, method, outcome)
);

CREATE TABLE audit_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_user_id  uuid,
    actor_token_id uuid,
    action         text NOT NULL,
    token_id       uuid,
    ip             text,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_token ON audit_events (token_id, id);

-- The audit log is append-only, whoever connects.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
