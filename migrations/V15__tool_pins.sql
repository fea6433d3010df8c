-- Issue #26: pinned tool definitions. Each gateway tool's definition (name, title,
-- description, input and output schema, annotations; tessera_core::pins::PINNED_FIELDS) is
-- pinned when first listed: its canonical JSON and that JSON's SHA-256. A listing serving
-- another definition holds the tool (hidden, calls refused with `tool_changed`) until an
-- admin approves, which pins the served definition.

-- What a server does with a tool first listed after its first listing: `allow` pins and
-- shows it, `hold` pins it and holds it until approved.
ALTER TABLE servers ADD COLUMN new_tools text NOT NULL DEFAULT 'allow' CHECK (new_tools IN ('allow', 'hold'));

ALTER TABLE server_tools
    ADD COLUMN pinned_sha256 bytea CHECK (length(pinned_sha256) = 32),
    ADD COLUMN pinned_definition jsonb,
    -- Why the tool is held: `changed` (served_* differ from the pin) or `new` (policy hold).
    ADD COLUMN hold text CHECK (hold IN ('changed', 'new')),
    ADD COLUMN served_sha256 bytea CHECK (length(served_sha256) = 32),
    ADD COLUMN served_definition jsonb,
    ADD COLUMN held_at timestamptz,
    ADD CONSTRAINT server_tools_pin_whole CHECK ((pinned_sha256 IS NULL) = (pinned_definition IS NULL)),
    ADD CONSTRAINT server_tools_served_whole CHECK ((served_sha256 IS NULL) = (served_definition IS NULL)),
    ADD CONSTRAINT server_tools_held_pinned CHECK (hold IS NULL OR pinned_sha256 IS NOT NULL);

-- Server events (`server.tool_changed`) concern no token: token and owner are NULL, the
-- server and tool are in `details`. Only admins' `all_users` webhooks receive them.
ALTER TABLE alert_events
    ALTER COLUMN token_id DROP NOT NULL,
    ALTER COLUMN user_id DROP NOT NULL,
    ADD CONSTRAINT alert_events_subject CHECK ((token_id IS NULL) = (user_id IS NULL));
