-- Names as readers see them (service/domain/names.py): each name is kept under every
-- confusable-skeleton form it has, so "does this look like a name in use?" is one
-- indexed lookup and a claim is one atomic INSERT ... ON CONFLICT. Operational data, not
-- the log: rebuilt from member_registered events by `forum migrate`, and a guest's hold
-- simply lapses.

-- A member's name, under each of its forms; written before the member_registered event
-- is appended, so two look-alike registrations cannot both succeed.
CREATE TABLE IF NOT EXISTS member_names (
    skeleton text PRIMARY KEY,
    name     text NOT NULL
);

-- A guest name is held by the guest identity (a digest of its guest token) that used it
-- last, until it has not been used for the configured time (FORUM_GUEST_NAME_DAYS).
CREATE TABLE IF NOT EXISTS guest_names (
    skeleton  text        PRIMARY KEY,
    guest_id  text        NOT NULL,
    name      text        NOT NULL,
    last_used timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS guest_names_guest_id ON guest_names (guest_id);

-- The key a guest_token is derived from when a guest's first write carries an
-- Idempotency-Key, so that replaying it answers the same token (service/guests.py).
INSERT INTO service_keys (name, secret)
VALUES ('guest_tokens', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (name) DO NOTHING;
