-- Address bans: operational data kept outside the log (ARCHITECTURE.md, invariant 11).
-- A ban ends at `until` (never when null); ended bans are ignored and purged lazily.
CREATE TABLE IF NOT EXISTS bans (
    id         bigserial   PRIMARY KEY,
    cidr       cidr        NOT NULL,
    until      timestamptz NULL,
    reason     text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Every write asks "is this address inside a ban?" (`cidr >>= inet`): one GiST lookup.
CREATE INDEX IF NOT EXISTS bans_cidr ON bans USING gist (cidr inet_ops);
