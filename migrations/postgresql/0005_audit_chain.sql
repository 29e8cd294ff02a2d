-- The audit chain (projections/audit/chain.py). Not projection tables: a rebuild recomputes what it is given, and
-- the chain's worth is that it was computed when each event was new, so that a later change to the store shows.
-- One row per event: the digest of the stored event and its link, a hash over the previous event of the same
-- entity, the event's position and its digest.
CREATE TABLE IF NOT EXISTS audit_chain (
    position bigint PRIMARY KEY,
    originator_id text NOT NULL,
    version bigint NOT NULL,
    digest bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_chain_entity ON audit_chain (originator_id, version);
-- How far the chain has got, and the running hash over every link in log order up to there.
CREATE TABLE IF NOT EXISTS audit_chain_head (
    id integer PRIMARY KEY,
    position bigint NOT NULL,
    running bytea NOT NULL
);
-- Seals: the running hash at a position, signed (HMAC) with the deployment's audit key.
CREATE TABLE IF NOT EXISTS audit_seals (
    seq bigint PRIMARY KEY,
    up_to bigint NOT NULL,
    events bigint NOT NULL,
    running bytea NOT NULL,
    key_id text NOT NULL,
    signature text NOT NULL,
    sealed_at timestamptz NOT NULL
);
-- Each run of `cosmo audit verify` and what it found.
CREATE TABLE IF NOT EXISTS audit_verifications (
    id bigint PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    since bigint NOT NULL,
    up_to bigint NOT NULL,
    events bigint NOT NULL,
    seals bigint NOT NULL,
    unchained bigint NOT NULL,
    ok boolean NOT NULL,
    problem_kind text,
    problem_position bigint,
    problem text
)
