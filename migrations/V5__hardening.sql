-- TRUNCATE fires no row triggers, so V1's guard alone let `TRUNCATE audit_events` empty the
-- log. A statement-level trigger keeps it append-only against that too.
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Facts a running server publishes for other processes on the same database; today the
-- public URL `tessera serve` mints for, so `tessera token issue` uses the same issuer.
CREATE TABLE server_settings (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
