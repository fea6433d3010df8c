-- stdio servers (issue #26): MCP servers Tessera runs as child processes. A stdio server is a
-- `servers` row (url `stdio:NAME`, never dialled) plus its command here; the gateway reaches
-- it through an in-process bridge.
CREATE TABLE server_commands (
    server_id     uuid PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    program       text NOT NULL CHECK (length(program) BETWEEN 1 AND 4096),
    args          text[] NOT NULL DEFAULT '{}',
    cwd           text CHECK (cwd IS NULL OR (length(cwd) <= 1024 AND cwd LIKE '/%')),
    per_user      boolean NOT NULL DEFAULT false,
    idle_seconds  integer NOT NULL DEFAULT 600 CHECK (idle_seconds BETWEEN 60 AND 86400)
);

-- Declared environment values (`--env KEY=VALUE`), sealed like upstream headers (bound to
-- server id and name): the database never holds them in plaintext.
CREATE TABLE server_env (
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    nonce       bytea NOT NULL CHECK (length(nonce) = 24),
    ciphertext  bytea NOT NULL,
    PRIMARY KEY (server_id, name)
);
