-- OAuth 2.1 authorization server (issue #13). A grant is an ordinary token row marked with
-- the client it was granted to; its access tokens are JWTs whose jti is the row's id, and the
-- row's token_sha256 is the hash of the grant's *current* access token (replaced at every
-- refresh), so the validator's checks apply to grants unchanged.

-- Clients registered dynamically (RFC 7591); client ids are opaque here, URLs for CIMD.
CREATE TABLE oauth_clients (
    id            text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 2048),
    kind          text NOT NULL CHECK (kind IN ('dynamic', 'metadata_document')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    redirect_uris text[] NOT NULL CHECK (cardinality(redirect_uris) BETWEEN 1 AND 10),
    created_at    timestamptz NOT NULL,
    created_ip    text
);

ALTER TABLE tokens ADD COLUMN oauth_client_id text REFERENCES oauth_clients (id);
CREATE INDEX tokens_oauth_client ON tokens (oauth_client_id) WHERE oauth_client_id IS NOT NULL;

-- Authorization codes: only their hash is kept; single use, short-lived, bound to everything
-- the token request must repeat. `grant_id` names what the code produced, so a replay
-- can revoke it.
CREATE TABLE oauth_codes (
    code_sha256         bytea PRIMARY KEY CHECK (length(code_sha256) = 32),
    client_id           text NOT NULL REFERENCES oauth_clients (id),
    user_id             uuid NOT NULL REFERENCES users (id),
    redirect_uri        text NOT NULL,
    code_challenge      text NOT NULL,
    resource            text NOT NULL,
    scopes              text[] NOT NULL,
    lifetime_days       integer NOT NULL CHECK (lifetime_days BETWEEN 1 AND 365),
    rate_limit_per_hour integer CHECK (rate_limit_per_hour BETWEEN 1 AND 1000000),
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL CHECK (expires_at > created_at),
    used_at             timestamptz,
    grant_id            uuid REFERENCES tokens (id)
);
CREATE INDEX oauth_codes_expires_at ON oauth_codes (expires_at);

-- Refresh tokens: opaque, only their hash kept, rotated on every use. A used one presented
-- again revokes its grant (OAuth 2.1 reuse detection).
CREATE TABLE oauth_refresh_tokens (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    grant_id     uuid NOT NULL REFERENCES tokens (id),
    created_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
