-- Issue #17: a per-user rate limit shared by all of a user's tokens, and alert webhooks.

-- NULL = no per-user limit (each token's own limit still applies).
ALTER TABLE users ADD COLUMN rate_limit_per_hour integer CHECK (rate_limit_per_hour BETWEEN 1 AND 1000000);

-- A receiver of alert events. The secret signs deliveries (HMAC-SHA256), so it is kept as is:
-- unlike a token it must be usable, not only checkable. It is shown to its owner once.
CREATE TABLE webhooks (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    url         text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    secret      text NOT NULL,
    -- Event kinds it receives (`token.revoked`, ...).
    events      text[] NOT NULL,
    -- An admin's webhook for every user's tokens, not only its owner's.
    all_users   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);
CREATE INDEX webhooks_user ON webhooks (user_id) WHERE deleted_at IS NULL;

-- The outbox: every alert event, written in the transaction of the change that caused it
-- where there is one. `dedupe` makes "once" events (expiring 7 d / 1 d, first 429 of an hour,
-- ...) idempotent across scanner runs and replicas.
CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    kind      text NOT NULL,
    token_id  uuid NOT NULL REFERENCES tokens (id),
    user_id   uuid NOT NULL REFERENCES users (id),
    dedupe    text NOT NULL,
    details   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (length(details::text) <= 4096),
    UNIQUE (token_id, kind, dedupe)
);
CREATE INDEX alert_events_token ON alert_events (token_id, id DESC);
CREATE INDEX alert_events_at ON alert_events (at);

-- One row per (webhook, event): what the dispatcher still has to send, and the delivery log.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      uuid NOT NULL REFERENCES webhooks (id),
    event_id        bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_status     integer,
    last_error      text CHECK (length(last_error) <= 500),
    updated_at      timestamptz NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id DESC);

-- Networks (/24 or /48) each token was used from, for `token.new_network`.
CREATE TABLE token_networks (
    token_id   uuid NOT NULL REFERENCES tokens (id),
    network    text NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (token_id, network)
);

-- The expiry scanner looks for tokens expiring within the next days.
CREATE INDEX tokens_expires_at ON tokens (expires_at);
