-- Where each policy (a consumer of the log that answers events with commands, such as the turnover policy) has got
-- to. Its commands are idempotent, so the position is stored after them, not with them.
CREATE TABLE IF NOT EXISTS policy_state (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL
)
