-- SCIM 2.0 provisioning (issue #24, docs/scim.md). An account's SCIM `userName` is its own
-- `user_name`, or its email when it has none (accounts made on the CLI or by SSO), unique
-- regardless of case among the accounts not deleted. `name` and `emails` keep what the
-- provisioning client sent, as sent (the primary email also becomes `email`).
ALTER TABLE users
    ADD COLUMN user_name    text CHECK (length(user_name) BETWEEN 1 AND 320),
    ADD COLUMN external_id  text CHECK (length(external_id) BETWEEN 1 AND 320),
    ADD COLUMN display_name text CHECK (length(display_name) <= 320),
    ADD COLUMN scim_name    jsonb,
    ADD COLUMN scim_emails  jsonb,
    ADD COLUMN updated_at   timestamptz,
    -- A deleted account keeps its row (its tokens, grants and audit rows name it), is
    -- deactivated, loses its password and teams, and is invisible to SCIM.
    ADD COLUMN deleted_at   timestamptz;

CREATE UNIQUE INDEX users_user_name_lower_key ON users (lower(COALESCE(user_name, email))) WHERE deleted_at IS NULL;
CREATE INDEX users_external_id ON users (external_id) WHERE external_id IS NOT NULL;

-- A SCIM Group is a team; its client may give it an external id too.
ALTER TABLE teams ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 320);
