-- Teams and allowances (issue #24): a team's allowance bounds what its members may hold; a
-- person's allowance is the union of their teams' (administrators are not bound). Someone in no
-- team is bound by the built-in team `everyone`, whose allowance is NULL (every scope, today's
-- behaviour) until an administrator narrows it.
CREATE TABLE teams (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    allowance  text[],
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE team_members (
    team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- Identity-provider groups mapped to a team (applied at sign-in by the SSO part of #24).
CREATE TABLE team_groups (
    team_id   uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    idp_group text NOT NULL CHECK (length(idp_group) BETWEEN 1 AND 256),
    PRIMARY KEY (team_id, idp_group)
);

INSERT INTO teams (id, name, allowance, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'everyone', NULL, now(), now());
