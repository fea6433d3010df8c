-- Connected accounts through OAuth (issue #25, `--user-auth oauth`): the upstream's
-- authorization server as discovered, Tessera's client there (an administrator's, or one it
-- registered), and per connection the access token's life and who refreshes it. Tokens stay
-- sealed in `connections.ciphertext` (a JSON object of access and refresh token). V17 is the
-- stdio servers'.
ALTER TABLE server_user_auth DROP CONSTRAINT server_user_auth_kind_check;
ALTER TABLE server_user_auth ADD CONSTRAINT server_user_auth_kind_check CHECK (kind IN ('header', 'oauth'));
ALTER TABLE server_user_auth
    ADD COLUMN scope text CHECK (length(scope) <= 1000),
    ADD COLUMN client_id text CHECK (length(client_id) <= 2000),
    ADD COLUMN client_secret_nonce bytea,
    ADD COLUMN client_secret_ciphertext bytea,
    -- The client was given by an administrator (never re-registered or forgotten).
    ADD COLUMN client_preregistered boolean NOT NULL DEFAULT false,
    ADD COLUMN authorization_server jsonb;

ALTER TABLE connections DROP CONSTRAINT connections_kind_check;
ALTER TABLE connections ADD CONSTRAINT connections_kind_check CHECK (kind IN ('header', 'oauth'));
ALTER TABLE connections
    ADD COLUMN issued_at timestamptz,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN identity text CHECK (length(identity) <= 200),
    -- One refresh at a time per connection across instances: whoever set this refreshes.
    ADD COLUMN refreshing_until timestamptz;
CREATE INDEX connections_expiring ON connections (expires_at) WHERE kind = 'oauth';
