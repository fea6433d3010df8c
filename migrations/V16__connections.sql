-- Connected accounts (issue #25): a server whose users each bring their own credential, and
-- each person's credential for it. Values are sealed like upstream headers, bound to
-- (server, user): the database never holds them in plaintext. (V14 and V15 are SCIM's and
-- tool pinning's.)
CREATE TABLE server_user_auth (
    server_id   uuid PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('header')),
    header_name text NOT NULL CHECK (header_name ~ '^[a-z0-9!#$%&''*+.^_`|~-]{1,100}$'),
    prefix      text NOT NULL DEFAULT '' CHECK (length(prefix) <= 32)
);

CREATE TABLE connections (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id    uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('header')),
    nonce        bytea NOT NULL CHECK (length(nonce) = 24),
    ciphertext   bytea NOT NULL,
    connected_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, server_id)
);
CREATE INDEX connections_server ON connections (server_id);
