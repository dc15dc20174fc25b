-- Credentials are operational data, not facts: a member's password hash changes, must be
-- erasable, and must not be copied into every backup of an append-only log forever. Like
-- sessions (0003), it lives in a mutable table keyed by the member's stream id
-- (`member-<folded name>`). Registration writes its row in the same statement as the
-- member_registered event (events/postgres.py), so neither exists without the other.
CREATE TABLE IF NOT EXISTS credentials (
    member        text        PRIMARY KEY,
    password_hash text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The one-time rewrite of the log (docs/design.md, "No secrets in the log"): events
-- written before this migration carry the member's argon2 hash in their payload. Each is
-- moved into the table and then removed from the event's JSON; nothing else about the
-- event changes (position, stream, version, type, metadata, time). One transaction with
-- the rest of this migration: either every hash has moved or none has.
INSERT INTO credentials (member, password_hash, updated_at)
SELECT stream_id, data->>'password_hash', recorded_at
FROM events
WHERE type = 'member_registered' AND data ? 'password_hash'
ON CONFLICT (member) DO NOTHING;

UPDATE events SET data = data - 'password_hash'
WHERE type = 'member_registered' AND data ? 'password_hash';
