-- Direct servers (issue #15): MCP servers that check Tessera tokens themselves, by RFC 7662
-- introspection or against the JWKS. Their resource is their own URL, not /mcp/{name}.
ALTER TABLE servers ADD COLUMN direct boolean NOT NULL DEFAULT false;

-- A direct server's introspection credentials. The secret is 256 random bits, so a plain
-- SHA-256 is enough (no password stretching); rotation keeps the old pair until `expires_at`.
CREATE TABLE server_credentials (
    client_id      text PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 100),
    server_id      uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz
);
CREATE INDEX server_credentials_server ON server_credentials (server_id);
