-- Single sign-on (issue #24): an account made or linked by an OpenID provider is found again
-- by the provider's subject, whatever its email becomes.
ALTER TABLE users
    ADD COLUMN oidc_issuer  text,
    ADD COLUMN oidc_subject text,
    -- Administrator because an identity-provider group said so at the last sign-in (and so
    -- no longer one when it stops saying so); `tessera user admin` makes a lasting one.
    ADD COLUMN admin_from_idp boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX users_oidc_key ON users (oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;

-- A membership that came from an identity-provider group at sign-in; the next sign-in takes
-- it away when the group is gone. Members added directly (CLI, API, SCIM) are not touched.
ALTER TABLE team_members ADD COLUMN via_group boolean NOT NULL DEFAULT false;
