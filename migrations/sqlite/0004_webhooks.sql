-- Webhook deliveries: one row per message per endpoint (and per redelivery or replay). The webhooks projection
-- inserts them (ids derived from the log, so inserting twice is harmless), and the delivery worker records their
-- progress here. Not a projection table: a rebuild must not forget what was delivered.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id text PRIMARY KEY,
    webhook_id bigint NOT NULL,
    message_id text NOT NULL,
    event_type text NOT NULL,
    entity text NOT NULL,
    source_position bigint NOT NULL,
    seq bigint NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamptz,
    first_attempt_at timestamptz,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    response_status integer,
    response_ms integer,
    last_error text
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (webhook_id, created_at, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_open ON webhook_deliveries (webhook_id, entity, source_position, seq)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX IF NOT EXISTS webhook_deliveries_request ON webhook_deliveries (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_source ON webhook_deliveries (source_position);
-- Each endpoint's health as the delivery worker sees it: failing since when, or healthy since when.
CREATE TABLE IF NOT EXISTS webhook_health (
    webhook_id bigint PRIMARY KEY,
    failing_since timestamptz,
    healthy_since timestamptz
);
-- Work that one process at a time may do (delivering webhooks), held for a while and renewed.
CREATE TABLE IF NOT EXISTS worker_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
)
