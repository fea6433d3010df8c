-- The MCP tools' data: tasks, context entries and agents. Every row belongs to one user and
-- is only ever read or written through that user's tokens.

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,               -- UUIDv7
    user_id      uuid NOT NULL REFERENCES users (id),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text CHECK (length(description) <= 10000),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done')),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz
);
-- A user's tasks, newest first.
CREATE INDEX tasks_user_page ON tasks (user_id, id DESC);

CREATE TABLE context_entries (
    user_id    uuid NOT NULL REFERENCES users (id),
    key        text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE agents (
    id          uuid PRIMARY KEY,                -- UUIDv7
    user_id     uuid NOT NULL REFERENCES users (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description text CHECK (length(description) <= 1000),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'retired')),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- Agent names are unique per user.
CREATE UNIQUE INDEX agents_user_name_key ON agents (user_id, name);
