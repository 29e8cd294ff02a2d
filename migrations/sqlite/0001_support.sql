-- Integer ids, allocated when a command runs (see domain/ids.py).
CREATE TABLE IF NOT EXISTS id_sequences (
    name text PRIMARY KEY,
    value bigint NOT NULL
);

-- Where each projection has got to in the event log. Updated in the same transaction as its view rows.
CREATE TABLE IF NOT EXISTS projection_state (
    name text PRIMARY KEY,
    version integer NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);

-- Refresh tokens: rotation and revocation. Session state, not domain history, so not in the event store.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    jti text PRIMARY KEY,
    user_id bigint NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id);
