-- Upstream MCP servers served through the gateway at /mcp/{name} (issue #14).
-- Bounds mirror tessera_core::catalog (name) and tessera_core::values (description).
CREATE TABLE servers (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9-]{1,32}$'),
    url          text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description  text CHECK (description IS NULL OR length(description) <= 1000),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Headers sent to the upstream (its credentials). Values are sealed with XChaCha20-Poly1305
-- (key from TESSERA_SECRET_KEY or the data dir's key file), bound to (server id, name):
-- the database never holds them in plaintext. Names are stored lower-case.
CREATE TABLE server_headers (
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9!#$%&''*+.^_`|~-]{1,100}$'),
    nonce       bytea NOT NULL CHECK (length(nonce) = 24),
    ciphertext  bytea NOT NULL,
    PRIMARY KEY (server_id, name)
);

-- Tools: what discovery last saw (`read_only_hint` from the upstream's annotations) and the
-- admin's class override; the class used is the override, else read when the hint is true,
-- else write.
CREATE TABLE server_tools (
    server_id       uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    description     text,
    read_only_hint  boolean,
    access          text CHECK (access IN ('read', 'write', 'hidden')),
    discovered_at   timestamptz,
    PRIMARY KEY (server_id, name)
);
